package devserver_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// childDirEnv, when set, makes the test binary serve an embedded server on that data
// directory instead of running tests (TestMain): the process a test kills.
const childDirEnv = "DEVSERVER_TEST_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		srv, err := devserver.Start(context.Background(), devserver.Options{DataDir: dir, SearchAttributes: workflows.SearchAttributes()})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child server:", err)
			os.Exit(1)
		}
		fmt.Println(srv.Address())
		select {} // until killed
	}
	os.Exit(m.Run())
}

// dev killed with SIGKILL (no clean stop: what a crash or kill -9 does) right after a
// workflow started and was signalled keeps both: started again on the same data
// directory, the server hands the workflow its signal. With synchronous=normal the
// commits are in the operating system's hands when the process dies, and the log not
// yet checkpointed is read again at the next start.
func TestDataDirSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childDirEnv+"="+dir)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the child server said no address: %v", err)
	}
	c, err := client.Dial(client.Options{HostPort: strings.TrimSpace(addr)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "survivor", TaskQueue: "kill-test"}, waitForSignal); err != nil {
		t.Fatal(err)
	}
	if err := c.SignalWorkflow(ctx, "survivor", "", "go", "before the kill"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	srv, c := start(t, devserver.Options{DataDir: dir, SearchAttributes: workflows.SearchAttributes()})
	defer srv.Stop()
	defer c.Close()
	w := worker.New(c, "kill-test", worker.Options{})
	w.RegisterWorkflow(waitForSignal)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var got string
	if err := c.GetWorkflow(ctx, "survivor", "").Get(ctx, &got); err != nil || got != "before the kill" {
		t.Fatalf("after the kill: result %q, %v (want the signal sent before it)", got, err)
	}
}
