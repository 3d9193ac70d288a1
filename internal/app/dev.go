//go:build !nodev

package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// DevOptions configure `chatrabridge dev`.
type DevOptions struct {
	DataDir      string    // Temporal's SQLite file and the generated keys live here
	TemporalPort int       // frontend gRPC, 7233 as the temporal CLI expects
	UIPort       int       // Web UI, 8233
	SandboxPort  int       // the sandbox on 127.0.0.1, 8090
	NoSandbox    bool      // run without the sandbox (and without the demo integration)
	Out          io.Writer // where the banner goes once everything runs; nil means os.Stdout
}

// DevHTTPAddr is where `dev` serves the API when HTTP_ADDR keeps its default: the
// loopback interface only, so that a laptop's bridge, its sandbox wired in, is not open
// to the network it is on (HTTP_ADDR=0.0.0.0:8080 opens it).
const DevHTTPAddr = "127.0.0.1:8080"

// DevConfig fills what a laptop run lacks: the secrets key and the admin token are
// generated once and kept in the data directory, so a restart can still open what it
// sealed and the admin token stays the same. The API listens on DevHTTPAddr unless
// HTTP_ADDR says otherwise, and integrations may call private addresses (the sandbox is
// on 127.0.0.1).
func DevConfig(cfg config.Config, dataDir string) (config.Config, error) {
	if cfg.HTTPAddr == config.Default("HTTP_ADDR") {
		cfg.HTTPAddr = DevHTTPAddr
	}
	cfg.AllowPrivateURLs = true
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return cfg, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	if cfg.SecretsKey == "" {
		k, err := keepRandom(filepath.Join(dataDir, "secrets.key"), 32, base64.StdEncoding.EncodeToString)
		if err != nil {
			return cfg, err
		}
		cfg.SecretsKey = secrets.String(k)
	}
	if cfg.AdminToken == "" {
		t, err := keepRandom(filepath.Join(dataDir, "admin-token"), 24, base64.RawURLEncoding.EncodeToString)
		if err != nil {
			return cfg, err
		}
		cfg.AdminToken = secrets.String(t)
	}
	// The embedded Web UI's settings hold the codec token (it has no single sign-on to
	// send one): a token of its own, so that they never hold the admin token.
	if cfg.CodecToken == "" {
		t, err := keepRandom(filepath.Join(dataDir, "codec-token"), 24, base64.RawURLEncoding.EncodeToString)
		if err != nil {
			return cfg, err
		}
		cfg.CodecToken = secrets.String(t)
	}
	return cfg, nil
}

// keepRandom returns the content of file, first writing n random bytes (encoded) to it
// when it does not exist.
func keepRandom(file string, n int, encode func([]byte) string) (string, error) {
	if b, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", file, err)
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	v := encode(b)
	if err := os.WriteFile(file, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	return v, nil
}

// DevPreflight checks, before anything starts, what most often stops `dev`: a taken port
// or an unreachable PostgreSQL. It creates the database when it is missing. Each error
// is one line naming the problem and the fix.
func DevPreflight(ctx context.Context, cfg config.Config, o DevOptions) error {
	ports := []struct {
		addr, what, fix string
	}{
		{net.JoinHostPort("127.0.0.1", strconv.Itoa(o.TemporalPort)), "Temporal", "--temporal-port"},
		{net.JoinHostPort("127.0.0.1", strconv.Itoa(o.UIPort)), "the Temporal Web UI", "--ui-port"},
		{cfg.HTTPAddr, "the HTTP API", "HTTP_ADDR"},
	}
	if !o.NoSandbox {
		ports = append(ports, struct{ addr, what, fix string }{sandboxAddr(o), "the sandbox", "--sandbox-port (or run with --no-sandbox)"})
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("port %s for %s is in use (another `chatrabridge dev` or `temporal server start-dev`?): stop that process or set %s", p.addr, p.what, p.fix)
		}
		_ = l.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return postgres.EnsureDatabase(ctx, cfg.DatabaseURL.Reveal())
}

// Dev is the whole system in one process: the embedded Temporal server and Web UI, the
// store, the sandbox (unless o.NoSandbox) with the demo integration wired to it, the
// worker and the API. Once all of it runs it prints the banner (WriteDevBanner) to o.Out.
func Dev(cfg config.Config, logger *slog.Logger, o DevOptions) fx.Option {
	if o.UIPort != 0 {
		// The embedded Web UI decodes through the API's codec server.
		port := strconv.Itoa(o.UIPort)
		cfg.CodecCORSOrigins = append(cfg.CodecCORSOrigins, "http://127.0.0.1:"+port, "http://localhost:"+port)
	}
	opts := []fx.Option{
		Base(cfg, logger, true),
		fx.Supply(o),
		fx.Provide(startDevServer, func(s *devserver.Server) client.Options {
			return client.Options{HostPort: s.Address(), Namespace: s.Namespace()}
		}),
	}
	if !o.NoSandbox {
		// Before the worker and the API, so that it starts before them and stops after.
		opts = append(opts, sandboxModule)
	}
	return fx.Options(append(opts,
		Roles(Role{API: true, Worker: true}),
		fx.Invoke(printDevBanner),
	)...)
}

// DevCodecEndpoint is the codec endpoint the embedded Web UI decodes with: the API's
// codec server, reached on the loopback interface, the codec token in the path.
func DevCodecEndpoint(cfg config.Config) string {
	_, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil || cfg.CodecToken == "" {
		return ""
	}
	return "http://127.0.0.1:" + port + "/codec/k/" + cfg.CodecToken.Reveal()
}

func startDevServer(lc fx.Lifecycle, o DevOptions, cfg config.Config, logger *slog.Logger) (*devserver.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := devserver.Start(ctx, devserver.Options{
		Port:             o.TemporalPort,
		UIPort:           o.UIPort,
		DataDir:          filepath.Join(o.DataDir, "temporal"),
		SearchAttributes: workflows.SearchAttributes(),
		CodecEndpoint:    DevCodecEndpoint(cfg),
		Logger:           logger,
		LogLevel:         slog.LevelWarn,
	})
	if err != nil {
		return nil, err
	}
	// Stopped last: its hook is appended before the client's and the worker's.
	lc.Append(fx.StopHook(s.Stop))
	return s, nil
}
