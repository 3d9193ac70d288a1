package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/demo"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDev runs the real `chatrabridge dev` graph (embedded Temporal, worker, API,
// sandbox, demo integration) on free ports and a fresh schema, and returns its data
// directory.
func startDev(t *testing.T) string {
	t.Helper()
	_, dbURL := postgrestest.New(t)
	dir := t.TempDir()
	api := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.HTTPAddr, cfg.PublicURL = secrets.String(dbURL), api, "http://"+api
	if cfg, err = app.DevConfig(cfg, dir); err != nil {
		t.Fatal(err)
	}
	o := app.DevOptions{DataDir: dir, SandboxPort: freePort(t), Out: io.Discard} // Temporal on a free port, no Web UI
	a := fx.New(app.Dev(cfg, slog.New(slog.DiscardHandler), o))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start dev: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop dev: %v", err)
		}
	})
	return dir
}

// The demo against the dev stack: it passes, prints the task, its comments, what the
// visitor received and the link, writes its result, and passes again (new ids).
// Then it fails, naming the step, when the Planfix webhook refuses it, and when dev
// has not run.
func TestDemo(t *testing.T) {
	dir := startDev(t)

	var first *demo.Result
	for run := 1; run <= 2; run++ {
		var out bytes.Buffer
		res, err := demo.Run(context.Background(), demo.Options{DataDir: dir, Timeout: 90 * time.Second, Out: &out})
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out.String())
		}
		text := out.String()
		for _, want := range []string{
			"ok    " + demo.StepTask + `: task #` + strconv.FormatInt(res.TaskID, 10),
			"ok    " + demo.StepComments + ": 3 messages",
			"ok    " + demo.StepReply,
			"ok    " + demo.StepCompleted,
			"status       Completed",
			"Location: Riga, Latvia",
			"https://shop.example/orders/1042",
			"Anna Petrova (employee):",
			"Hi! I ordered a blue kettle last week, order 1042.",
			"Great, thank you!",
			"Planfix contact #",
			res.CustomerEmail,
			"    > Hi Ivan! Your order 1042 left our warehouse today, tracking number LV0001042.",
			demo.DefaultUIURL + "/namespaces/default/workflows/" + strings.ReplaceAll(res.WorkflowID, "/", "%2F"),
			"The demo passed",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("run %d: the output lacks %q:\n%s", run, want, text)
			}
		}
		// The task is named after the customer as known when it is created: the visitor's
		// card, or the name they introduced themselves with if it came first (a race: a
		// new customer's task no longer waits for an active-task search).
		if !regexp.MustCompile(`Planfix task #` + strconv.FormatInt(res.TaskID, 10) + `: Chat with (Ivan Petrov|Visitor \w+) on Demo shop \(sandbox\)`).MatchString(text) {
			t.Errorf("run %d: the output lacks the task's name line:\n%s", run, text)
		}
		if !res.Passed || res.Summary == "" || res.RunID == "" || !strings.Contains(res.ReplyReceived, "LV0001042") ||
			!strings.HasPrefix(res.WorkflowID, "chatra/demo/demo-chat-") || res.CustomerName != "Ivan Petrov" {
			t.Errorf("run %d: result %+v", run, res)
		}
		var saved demo.Result
		data, err := os.ReadFile(filepath.Join(dir, demo.ResultFile))
		if err != nil || json.Unmarshal(data, &saved) != nil || saved != *res {
			t.Errorf("run %d: %s holds %s (%v), want %+v", run, demo.ResultFile, data, err, res)
		}
		if first == nil {
			first = res
		} else if res.ChatID == first.ChatID || res.CustomerEmail == first.CustomerEmail || res.TaskID == first.TaskID {
			t.Errorf("the second run reused the first's ids: %+v, then %+v", first, res)
		}
	}

	// A Planfix webhook that refuses the token: the demo stops at that step, says why, and
	// shows what the conversation reports.
	bad := t.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, app.DemoWebhooksFile))
	if err != nil {
		t.Fatal(err)
	}
	var dev app.DevDemo
	if err := json.Unmarshal(data, &dev); err != nil {
		t.Fatal(err)
	}
	dev.PlanfixWebhookURL = dev.PlanfixWebhookURL[:strings.LastIndexByte(dev.PlanfixWebhookURL, '/')+1] + "wrong-token"
	data, _ = json.Marshal(dev)
	if err := os.WriteFile(filepath.Join(bad, app.DemoWebhooksFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := demo.Run(context.Background(), demo.Options{DataDir: bad, Timeout: 90 * time.Second, Out: &out})
	var se *demo.StepError
	if !errors.As(err, &se) || se.Step != demo.StepEmployee || !strings.Contains(err.Error(), "(unauthorized)") {
		t.Fatalf("with a wrong Planfix token: %v, want a failure at %q naming the refusal\n%s", err, demo.StepEmployee, out.String())
	}
	if res == nil || res.Passed {
		t.Errorf("result of a failed run: %+v", res)
	}
	for _, want := range []string{"FAIL  " + demo.StepEmployee, "What the conversation " + res.WorkflowID + " reports:", `"taskId": `, "workflow status: Running"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the failed run's output lacks %q:\n%s", want, out.String())
		}
	}

	// No dev: one line saying to start it.
	_, err = demo.Run(context.Background(), demo.Options{DataDir: t.TempDir(), Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "chatrabridge dev") || !strings.Contains(err.Error(), app.DemoWebhooksFile) {
		t.Errorf("without dev's file: %v", err)
	}
}
