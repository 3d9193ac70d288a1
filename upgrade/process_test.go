package upgrade_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// freshDatabase creates a database of its own on the test server (TEST_DATABASE_URL's),
// dropped when the test ends, and returns its URL.
func freshDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	base := postgrestest.URL()
	if err := postgres.EnsureDatabase(ctx, base); err != nil {
		t.Fatalf("test database (TEST_DATABASE_URL): %v", err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "upgrade_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	// CREATE DATABASE copies template1, and fails while another session is connected
	// to it (another package's test making its database): try again a few times.
	for attempt := 1; ; attempt++ {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+name)
		if err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(err.Error(), "55006") {
			t.Fatalf("create database %s: %v", name, err)
		}
		time.Sleep(time.Second)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("database %s not dropped: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("database %s not dropped: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// procEnv is the environment of the bridge's processes: the test's own, without anything
// of the bridge's or Temporal's that the test process may have set, plus vars.
func procEnv(vars map[string]string) []string {
	own := []string{"DATABASE_URL", "TEMPORAL_", "SECRETS_KEY", "ADMIN_TOKEN", "TASK_QUEUE", "LOG_LEVEL", "LOG_FORMAT", "HTTP_ADDR", "PUBLIC_URL", "PAYLOAD_", "CODEC_", "CUSTOMER_SEARCH"}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, p := range own {
			if strings.HasPrefix(name, p) {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// run runs a command of the bridge to its end.
func run(t *testing.T, bin string, env map[string]string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = procEnv(env)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
}

// workerProc is a `chatrabridge worker` process.
type workerProc struct {
	t    *testing.T
	name string // old-1, old-2, new
	cmd  *exec.Cmd
	log  string // its stderr and stdout
	done chan struct{}
	err  error // how it exited, once done is closed

	started   time.Time
	namespace string
}

// spawnWorker starts `bin worker`; waitPolling then waits until it serves. The process is
// killed when the test ends, and its output logged if the test failed.
func spawnWorker(t *testing.T, name, bin string, env map[string]string) *workerProc {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "worker")
	cmd.Env = procEnv(env)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s worker: %v", name, err)
	}
	w := &workerProc{t: t, name: name, cmd: cmd, log: logFile.Name(), done: make(chan struct{}), started: time.Now(),
		namespace: env["TEMPORAL_NAMESPACE"]}
	go func() {
		w.err = cmd.Wait()
		logFile.Close()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			if b, err := os.ReadFile(w.log); err == nil && len(b) > 0 {
				t.Logf("%s worker (pid %d) output:\n%s", name, w.pid(), tail(string(b), 4000))
			}
		}
	})
	return w
}

// waitPolling waits until the worker polls both the workflow and the activity tasks of
// queue (the worker prints nothing at LOG_LEVEL=warn: Temporal tells), and returns how
// long it took from the process's start.
func (w *workerProc) waitPolling(c client.Client, queue string) time.Duration {
	t := w.t
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !w.polling(c, queue) {
		select {
		case <-w.done:
			b, _ := os.ReadFile(w.log)
			t.Fatalf("%s worker exited before it polled: %v\n%s", w.name, w.err, tail(string(b), 4000))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s worker (pid %d) not polling the task queue after 2 minutes", w.name, w.pid())
		}
	}
	return time.Since(w.started)
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

// identityPrefix starts the Temporal identity of the worker's pollers (the SDK's default
// identity is "<pid>@<host>@...").
func (w *workerProc) identityPrefix() string { return strconv.Itoa(w.pid()) + "@" }

// polling reports whether the worker polls both kinds of task of queue. It asks in
// Temporal's enhanced mode, which gathers the pollers of every partition of the queue
// (the legacy mode lists the root partition's only, where a worker's pollers may not
// show for a minute); the server caches that answer for 5 s. The enhanced mode is
// deprecated in favour of worker deployments, which the bridge does not use.
func (w *workerProc) polling(c client.Client, queue string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace: w.namespace, TaskQueue: &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		ApiMode:        enumspb.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
		TaskQueueTypes: []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY},
		ReportPollers:  true,
	})
	if err != nil {
		return false
	}
	found := map[int32]bool{}
	for _, v := range resp.GetVersionsInfo() {
		for typ, info := range v.GetTypesInfo() {
			for _, p := range info.GetPollers() {
				if strings.HasPrefix(p.GetIdentity(), w.identityPrefix()) {
					found[typ] = true
				}
			}
		}
	}
	return found[int32(enumspb.TASK_QUEUE_TYPE_WORKFLOW)] && found[int32(enumspb.TASK_QUEUE_TYPE_ACTIVITY)]
}

// stop sends SIGTERM, as a deploy does, and waits until the process has exited.
func (w *workerProc) stop() {
	w.t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		if w.err != nil {
			w.t.Errorf("%s worker exited with %v after SIGTERM", w.name, w.err)
		}
	case <-time.After(time.Minute):
		w.t.Errorf("%s worker did not stop within a minute of SIGTERM: killed", w.name)
		w.kill()
	}
}

// kill sends SIGKILL (kill -9) and waits until the process is gone.
func (w *workerProc) kill() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Kill()
	<-w.done
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
