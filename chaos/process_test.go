package chaos_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/testkit"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The fault tests that kill or restart a process run it as a child: the test binary
// itself, started again with CHAOS_ROLE set (TestMain runs the role instead of the
// tests). A child prints "ready" on stdout once it serves.
const (
	envRole  = "CHAOS_ROLE"
	envChild = "CHAOS_CHILD"

	roleWorker   = "worker"   // the worker side of `chatrabridge worker`
	roleTemporal = "temporal" // a file-backed embedded Temporal server
)

// childConfig is what a child needs, passed as JSON in CHAOS_CHILD.
type childConfig struct {
	DatabaseURL string `json:"databaseUrl,omitempty"`
	Temporal    string `json:"temporal,omitempty"` // worker: the server's address
	Namespace   string `json:"namespace,omitempty"`
	Port        int    `json:"port,omitempty"`    // temporal: the frontend port
	DataDir     string `json:"dataDir,omitempty"` // temporal: where temporal.db lives
}

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		if err := runChild(role); err != nil {
			fmt.Fprintf(os.Stderr, "chaos child %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild serves role until SIGTERM or SIGINT.
func runChild(role string) error {
	var c childConfig
	if err := json.Unmarshal([]byte(os.Getenv(envChild)), &c); err != nil {
		return fmt.Errorf("%s: %w", envChild, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch role {
	case roleTemporal:
		srv, err := devserver.Start(ctx, devserver.Options{Port: c.Port, DataDir: c.DataDir, SearchAttributes: workflows.SearchAttributes()})
		if err != nil {
			return err
		}
		fmt.Println("ready")
		<-ctx.Done()
		srv.Stop()
		return nil
	case roleWorker:
		cfg, err := stackConfig(c.DatabaseURL)
		if err != nil {
			return err
		}
		a := fx.New(
			app.Base(cfg, logger, false),
			app.TemporalOptions(client.Options{HostPort: c.Temporal, Namespace: c.Namespace, Logger: slog.New(slog.DiscardHandler)}),
			app.Roles(app.Role{Worker: true}),
			fastLimiter,
		)
		startCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Start(startCtx); err != nil {
			return err
		}
		fmt.Println("ready")
		<-ctx.Done()
		stopCtx, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel2()
		return a.Stop(stopCtx)
	}
	return fmt.Errorf("unknown role %q", role)
}

// child is a child process, started again by restart.
type child struct {
	t    *testing.T
	role string
	conf childConfig
	cmd  *exec.Cmd
	log  string // its stderr
	done chan struct{}
}

// startChild starts role and waits until it is ready. A child still running when the
// test ends is killed; the test logs the stderr of every child when it fails.
func startChild(t *testing.T, role string, c childConfig) *child {
	t.Helper()
	ch := &child{t: t, role: role, conf: c}
	t.Cleanup(func() { ch.kill() })
	ch.start()
	return ch
}

// restart starts the role again after the process ended (kill or stop).
func (c *child) restart() {
	c.t.Helper()
	c.start()
}

func (c *child) start() {
	t := c.t
	t.Helper()
	b, _ := json.Marshal(c.conf)
	logFile, err := os.CreateTemp(t.TempDir(), c.role+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+c.role, envChild+"="+string(b))
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", c.role, err)
	}
	done := make(chan struct{})
	c.cmd, c.log, c.done = cmd, logFile.Name(), done
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.TrimSpace(sc.Text()) == "ready" {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil && len(b) > 0 {
				t.Logf("%s (pid %d) stderr:\n%s", c.role, cmd.Process.Pid, testkit.Tail(string(b), 4000))
			}
		}
	})
	select {
	case ok := <-ready:
		if !ok {
			<-done
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("%s exited before it was ready: %s", c.role, testkit.Tail(string(b), 4000))
		}
	case <-time.After(2 * time.Minute):
		c.kill()
		t.Fatalf("%s not ready after 2 minutes", c.role)
	}
}

// pid is the current process's id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// kill sends SIGKILL (kill -9) and waits until the process is gone.
func (c *child) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop sends SIGTERM and waits until the process has exited.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		c.t.Errorf("%s did not stop within a minute of SIGTERM: killed", c.role)
		c.kill()
	}
}

// ---- A PostgreSQL server of the test's own ----

// privatePostgres is a PostgreSQL server that the test starts, and may stop and start
// again, in a directory of its own: the machine's server is shared with every other
// package's tests, which a restart would disturb. Its binaries come from
// CHAOS_PG_BINDIR, else from `pg_config --bindir`, else from /usr/lib/postgresql/*/bin
// (Debian), the newest first. As root, the server runs as the user postgres (PostgreSQL
// refuses to run as root).
type privatePostgres struct {
	t      *testing.T
	bin    string
	dir    string
	port   int
	asUser []string // the command prefix that runs as the server's user
}

func startPostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatalf("fault test (e) needs PostgreSQL's server binaries (initdb, pg_ctl): %v; install Debian's postgresql package or set CHAOS_PG_BINDIR", err)
	}
	dir, err := os.MkdirTemp("", "chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &privatePostgres{t: t, bin: bin, dir: filepath.Join(dir, "data"), port: testkit.FreePort(t)}
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "postgres:", dir).Run(); err != nil {
			t.Fatalf("give %s to the user postgres (PostgreSQL refuses to run as root): %v", dir, err)
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	p.run("initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	p.start()
	t.Cleanup(func() { p.runQuiet("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop") })
	return p
}

func postgresBinDir() (string, error) {
	if d := os.Getenv("CHAOS_PG_BINDIR"); d != "" {
		return d, nil
	}
	var dirs []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(matches) - 1; i >= 0; i-- { // Glob sorts; 15 before 9 is not a concern on one machine
		dirs = append(dirs, matches[i])
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("initdb not found in " + strings.Join(append(dirs, "PATH"), ", "))
}

// URL reaches the server's postgres database.
func (p *privatePostgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

func (p *privatePostgres) start() {
	p.run("pg_ctl", "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), "start")
}

// crash stops the server as a power cut would (immediate shutdown: no checkpoint, open
// transactions lost, crash recovery at the next start).
func (p *privatePostgres) crash() {
	p.run("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop")
}

func (p *privatePostgres) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, p.asUser...), filepath.Join(p.bin, name)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

func (p *privatePostgres) run(name string, args ...string) {
	p.t.Helper()
	if out, err := p.command(name, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (p *privatePostgres) runQuiet(name string, args ...string) {
	_ = p.command(name, args...).Run()
}
