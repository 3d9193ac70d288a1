package devserver_test

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/workflows"
)

func echoWorkflow(ctx workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

// waitForSignal blocks until it gets a "go" signal, so the test can see it survive a restart.
func waitForSignal(ctx workflow.Context) (string, error) {
	var s string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &s)
	return s, nil
}

func start(t *testing.T, o devserver.Options) (*devserver.Server, client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, o)
	if err != nil {
		t.Fatalf("start dev server: %v", err)
	}
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace()})
	if err != nil {
		srv.Stop()
		t.Fatalf("dial: %v", err)
	}
	return srv, c
}

func TestRunsAWorkflowWithSearchAttributes(t *testing.T) {
	srv, c := start(t, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	defer srv.Stop()
	defer c.Close()
	ctx := context.Background()

	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range workflows.SearchAttributes() {
		if got, ok := sa.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s: got %v (present %v), want %v", name, got, ok, typ)
		}
	}

	w := worker.New(c, "devserver-test", worker.Options{})
	w.RegisterWorkflow(echoWorkflow)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		TaskQueue: "devserver-test",
		// The server refuses unregistered attributes, so this start proves the registration.
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SAIntegration.ValueSet("shop"), workflows.SATaskID.ValueSet(42)),
	}, echoWorkflow, "temporal")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil || out != "hello temporal" {
		t.Fatalf("result %q, %v", out, err)
	}
}

func TestDataDirKeepsWorkflowsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	keepsWorkflowsAcrossRestart(t, devserver.Options{DataDir: dir, SearchAttributes: workflows.SearchAttributes()})

	// The file is in WAL mode (a mode the file keeps): the settings reached SQLite as
	// pragmas, which they did not when they were named _journal_mode and the like.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "temporal.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode of temporal.db = %q, want wal", mode)
	}
}

// The server on PostgreSQL (what the devserver benchmark measures against SQLite): its
// databases are created and their schemas set up at the first start, and a second start
// finds them set up and keeps the workflow.
func TestPostgresKeepsWorkflowsAcrossRestart(t *testing.T) {
	url := scratchDatabase(t)
	keepsWorkflowsAcrossRestart(t, devserver.Options{Postgres: url, SearchAttributes: workflows.SearchAttributes()})
}

// keepsWorkflowsAcrossRestart starts a workflow, stops the server, starts it again on
// the same store and finishes the workflow there.
func keepsWorkflowsAcrossRestart(t *testing.T, o devserver.Options) {
	ctx := context.Background()
	srv, c := start(t, o)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "survivor", TaskQueue: "restart-test"}, waitForSignal)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	srv.Stop()

	srv, c = start(t, o)
	defer srv.Stop()
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(ctx, "survivor", run.GetRunID())
	if err != nil {
		t.Fatalf("workflow started before the restart is gone: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus().String(); st != "Running" {
		t.Fatalf("status after restart = %s, want Running", st)
	}
	w := worker.New(c, "restart-test", worker.Options{})
	w.RegisterWorkflow(waitForSignal)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := c.SignalWorkflow(ctx, "survivor", "", "go", "after restart"); err != nil {
		t.Fatal(err)
	}
	var out string
	if err := c.GetWorkflow(ctx, "survivor", "").Get(ctx, &out); err != nil || out != "after restart" {
		t.Fatalf("result %q, %v", out, err)
	}
}

func TestTakenPortIsOneClearError(t *testing.T) {
	srv, c := start(t, devserver.Options{})
	defer srv.Stop()
	defer c.Close()
	_, port, _ := splitPort(srv.Address())
	_, err := devserver.Start(context.Background(), devserver.Options{Port: port})
	if err == nil {
		t.Fatal("second server on the same port started")
	}
	if got := err.Error(); !contains(got, "taken") || !contains(got, srv.Address()) {
		t.Fatalf("error %q should say the port is taken", got)
	}
}

// The embedded server starts again and again while other sockets come and go (ports
// taken and released as a busy machine does), never panicking on a port.
func TestStartsManyTimesInARow(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go func() { // sockets on ephemeral ports, opened and closed all the time
		for {
			select {
			case <-stop:
				return
			default:
			}
			if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
				time.Sleep(time.Millisecond)
				l.Close()
			}
		}
	}()
	const n = 8
	began := time.Now()
	for range n {
		srv, c := start(t, devserver.Options{})
		c.Close()
		srv.Stop()
	}
	t.Logf("%d starts in %v", n, time.Since(began).Round(time.Millisecond))
}
