// Package devserver runs a real Temporal server (go.temporal.io/server) and, optionally,
// the Temporal Web UI inside the current process. It backs `chatrabridge dev` and the
// integration tests. Persistence is SQLite: in a file when a data directory is given, so
// workflows survive a restart, or in memory for tests. It can also keep its data in
// PostgreSQL, which the devserver benchmark measures against SQLite.
//
// It is for development and tests only; production runs against a Temporal cluster or
// Temporal Cloud.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Options configure an embedded server. The zero value of every optional field is usable.
type Options struct {
	// Host is the IP every service binds to. Default 127.0.0.1.
	Host string
	// Port is the frontend gRPC port (what clients dial). 0 picks a free port.
	Port int
	// UIPort is the Web UI's port; 0 runs no UI.
	UIPort int
	// CodecEndpoint, when set, is the codec server the Web UI decodes payloads with.
	CodecEndpoint string
	// DataDir holds the SQLite file (temporal.db). Empty keeps everything in memory.
	DataDir string
	// Postgres, when set, keeps Temporal's data in PostgreSQL instead: the URL of the
	// database for its workflows, and the same name with "_visibility" appended for its
	// visibility store; both are created when missing and their schemas set up or
	// updated at start. DataDir is then unused.
	Postgres string
	// Namespace is created at start when missing. Default "default".
	Namespace string
	// SearchAttributes are registered on the namespace (created when missing).
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's log lines at LogLevel and above. Default: discard.
	Logger   *slog.Logger
	LogLevel slog.Level
}

// Server is a running embedded Temporal server.
type Server struct {
	srv       temporal.Server
	ui        *uiserver.Server
	addr      string
	uiAddr    string
	namespace string
	logLevel  *slog.LevelVar
}

// startAttempts is how many times Start tries when a port it picked itself was taken
// between the pick and the server's bind.
const startAttempts = 5

// Start starts the server and waits until its frontend answers and the search attributes
// are registered. A taken port that the caller chose is reported as an error naming the
// port. The ports Start picks itself (the frontend's when Port is 0, and the internal
// services') are chosen outside the kernel's ephemeral range, where no outgoing
// connection or port-0 listener is given one; if one is taken all the same between the
// check and the server's bind, the whole start is retried with other ports.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Port != 0 {
		if err := checkPort(o.Host, o.Port); err != nil {
			return nil, err
		}
	}
	if o.UIPort != 0 {
		if err := checkPort(o.Host, o.UIPort); err != nil {
			return nil, err
		}
	}
	var err error
	for range startAttempts {
		var s *Server
		s, err = start(ctx, o)
		var taken *bindError
		if err == nil || !errors.As(err, &taken) {
			return s, err
		}
		if o.Port != 0 && taken.addr == net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) {
			return nil, fmt.Errorf("%w: %s is taken by another process (stop it, or choose another port)", ErrPortInUse, taken.addr)
		}
		o.Logger.Warn("embedded temporal: a port was taken before the server bound it; starting again on other ports", "error", err)
	}
	return nil, fmt.Errorf("embedded temporal did not start in %d attempts: %w", startAttempts, err)
}

// start is one attempt of Start, on ports picked now.
func start(ctx context.Context, o Options) (*Server, error) {
	var err error
	if o.Port == 0 {
		if o.Port, err = freePort(o.Host); err != nil {
			return nil, err
		}
	}
	store, visibility, err := stores(ctx, o)
	if err != nil {
		return nil, err
	}
	conf, err := serverConfig(o, store, visibility)
	if err != nil {
		return nil, err
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range conf.Services {
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(o.Host, strconv.Itoa(svc.RPC.GRPCPort)))
	}
	dyn := dynamicconfig.StaticClient{
		// Search attributes added at run time are usable at once (the dev server's choice too).
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      true,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}
	level := new(slog.LevelVar)
	level.Set(o.LogLevel)
	srv, err := newServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(newLogger(o.Logger, level)),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, err
	}
	s := &Server{srv: srv, logLevel: level, addr: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), namespace: o.Namespace}

	if o.UIPort != 0 {
		s.uiAddr = net.JoinHostPort(o.Host, strconv.Itoa(o.UIPort))
		s.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
			Host:                o.Host,
			Port:                o.UIPort,
			TemporalGRPCAddress: s.addr,
			EnableUI:            true,
			DefaultNamespace:    o.Namespace,
			CORS:                uiconfig.CORS{CookieInsecure: true},
			HideLogs:            true,
			Codec:               uiconfig.Codec{Endpoint: o.CodecEndpoint},
			DisableNewsFetch:    true,
		}))
		go func() {
			if err := s.ui.Start(); err != nil && !errors.Is(err, net.ErrClosed) {
				o.Logger.Error("temporal web ui stopped", "error", err)
			}
		}()
	}

	if err := s.ensureSearchAttributes(ctx, o.SearchAttributes); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// newServer builds and starts the server. The server reports a failed bind through its
// logger's Fatal, which panics with a *fatalError (see slogLogger); newServer turns that
// panic into the error it carries (a *bindError for a taken port), so the start can be
// retried.
func newServer(opts ...temporal.ServerOption) (srv temporal.Server, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		f, ok := r.(*fatalError)
		if !ok {
			panic(r)
		}
		if srv != nil {
			_ = srv.Stop()
		}
		srv, err = nil, f.err()
	}()
	srv, err = temporal.NewServer(opts...)
	if errors.Is(err, syscall.EADDRINUSE) { // the HTTP API's listener says so by an error
		return nil, &bindError{addr: "a port it was given", cause: oneLine(err)}
	}
	if err != nil {
		return nil, fmt.Errorf("temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	return srv, nil
}

// Address is the frontend's host:port, for client.Dial and the temporal CLI.
func (s *Server) Address() string { return s.addr }

// UIAddress is the Web UI's host:port, or "" when no UI runs.
func (s *Server) UIAddress() string { return s.uiAddr }

// Namespace is the namespace the server was started with.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI and the server. Workflows persist when a data directory was given.
func (s *Server) Stop() {
	// Stopping services warn about each other going away; that is expected, not news.
	s.logLevel.Set(slog.LevelError)
	if s.ui != nil {
		s.ui.Stop()
	}
	_ = s.srv.Stop()
}

// ensureSearchAttributes adds the attributes that a namespace created by an older version
// lacks. Attributes given at namespace creation are already there; this only fills gaps.
func (s *Server) ensureSearchAttributes(ctx context.Context, want map[string]enumspb.IndexedValueType) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: s.addr, Namespace: s.namespace, Logger: nopLogger{}})
	if err != nil {
		return fmt.Errorf("connect to embedded temporal: %w", err)
	}
	defer c.Close()
	if len(want) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: s.namespace, SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

// stores returns the server's workflow and visibility stores (one and the same for
// SQLite), with the namespace created in them.
func stores(ctx context.Context, o Options) (store, visibility *config.SQL, err error) {
	if o.Postgres != "" {
		store, visibility, err = postgresStores(ctx, o.Postgres)
	} else {
		store, err = sqliteConfig(o)
		visibility = store
	}
	if err != nil {
		return nil, nil, err
	}
	ns, err := sqliteschema.NewNamespaceConfig("active", o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return nil, nil, fmt.Errorf("namespace config: %w", err)
	}
	// The schema package is SQLite's, but it writes through the SQL plugin of the
	// configuration, so it creates the namespace in PostgreSQL as well.
	if err := sqliteschema.CreateNamespaces(store, ns); err != nil {
		return nil, nil, fmt.Errorf("create namespace %s: %w", o.Namespace, err)
	}
	return store, visibility, nil
}

func sqliteConfig(o Options) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if o.DataDir == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		conf.DatabaseName = "chatrabridge-" + strconv.Itoa(rand.IntN(1<<30))
	} else {
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data directory %s: %w", o.DataDir, err)
		}
		file := filepath.Join(o.DataDir, "temporal.db")
		// The plugin passes every attribute but SQLite's URI parameters (mode, cache, ...)
		// as a pragma named as given: journal_mode, not _journal_mode. With WAL a commit
		// appends to the log, and with synchronous=normal it does not wait for the disk:
		// a power cut may lose the last commits, never corrupt the file, and a crash or
		// kill -9 of dev loses nothing. A checkpoint copies the log into the database and
		// waits for the disk; SQLite's default, every 1000 pages, came every ~800 signals
		// and cost most of the gap to the in-memory server, so the log grows to 10000
		// pages (~40 MiB) first. busy_timeout makes another process (the sqlite3 shell)
		// wait for the lock instead of failing at once. One connection, the plugin's
		// default: with more (8 before), WAL lets readers go on while one writes, but in
		// the devserver benchmark they were slower than one, waiting on each other's
		// locks.
		conf.ConnectAttributes = map[string]string{
			"mode": "rwc", "journal_mode": "wal", "synchronous": "normal",
			"wal_autocheckpoint": "10000", "busy_timeout": "10000",
		}
		conf.DatabaseName = file
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(conf); err != nil {
				return nil, fmt.Errorf("set up temporal schema in %s: %w", file, err)
			}
		}
	}
	return conf, nil
}

func serverConfig(o Options, store, visibility *config.SQL) (*config.Config, error) {
	httpPort, err := pickPort(o.Host)
	if err != nil {
		return nil, err
	}
	frontend := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.Host
	conf.Persistence.DefaultStore = "default"
	conf.Persistence.VisibilityStore = "default"
	conf.Persistence.DataStores = map[string]config.DataStore{"default": {SQL: store}}
	if visibility != store {
		conf.Persistence.VisibilityStore = "visibility"
		conf.Persistence.DataStores["visibility"] = config.DataStore{SQL: visibility}
	}
	conf.Persistence.NumHistoryShards = 1
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort(o.Host, strconv.Itoa(httpPort)),
				ClusterID:              "5b0c8f1e-7e36-4c8f-9a51-3f1c2d6a9b10", // fixed: one dev cluster
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		var svc config.Service
		svc.RPC.BindOnIP = o.Host
		if name == "frontend" {
			svc.RPC.GRPCPort = o.Port
			svc.RPC.HTTPPort = httpPort
		} else if svc.RPC.GRPCPort, err = pickPort(o.Host); err != nil {
			return nil, err
		}
		conf.Services[name] = svc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend
	return &conf, nil
}

// pickPort returns a port for one of the server's services. A variable so that a test
// can make it return a taken port.
var pickPort = freePort

// freePort returns a port of host that nobody listens on now, out of the kernel's
// ephemeral range when the range is known (Linux) and leaves room below it, so that no
// outgoing connection and no port-0 listener of this or another process takes it before
// the server binds it. Another process that picks fixed ports could still; Start retries
// then.
func freePort(host string) (int, error) {
	if lo := ephemeralLow(); lo > 20000 {
		for range 50 {
			p := 10000 + rand.IntN(lo-10000)
			if checkPort(host, p) == nil {
				return p, nil
			}
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, or 0 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	lo, _ := strconv.Atoi(f[0])
	return lo
}

// oneLine is the last line of err's message: the cause at the end of fx's chain.
func oneLine(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": listen "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// ErrPortInUse is returned (wrapped) when a port the server needs is taken.
var ErrPortInUse = errors.New("port in use")

func checkPort(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%w: %s:%d is taken by another process (stop it, or choose another port)", ErrPortInUse, host, port)
	}
	return l.Close()
}
