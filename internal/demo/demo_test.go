package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.uber.org/fx"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/demo"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/internal/testkit"
)

// startDev runs the real `chatrabridge dev` graph (embedded Temporal, worker, API,
// sandbox, demo integration) on free ports and a fresh schema, and returns its data
// directory.
func startDev(t *testing.T) (string, config.Config) {
	t.Helper()
	_, dbURL := postgrestest.New(t)
	dir := t.TempDir()
	api := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.HTTPAddr, cfg.PublicURL = secrets.String(dbURL), api, "http://"+api
	// The customer's email and name searchable by their hash only: the history holds
	// none of them in clear (checkHistoryEncrypted).
	cfg.CustomerSearch = "hash"
	if cfg, err = app.DevConfig(cfg, dir); err != nil {
		t.Fatal(err)
	}
	o := app.DevOptions{DataDir: dir, SandboxPort: testkit.FreePort(t), Out: io.Discard} // Temporal on a free port, no Web UI
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
	return dir, cfg
}

// The demo against the dev stack: it passes, prints the task, its comments, what the
// visitor received and the link, writes its result, and passes again (new ids).
// Then it fails, naming the step, when the Planfix webhook refuses it, and when dev
// has not run.
func TestDemo(t *testing.T) {
	dir, cfg := startDev(t)

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
			!strings.HasPrefix(res.WorkflowID, "chatra/demo/demo-chat-") || res.CustomerName != "Ivan Petrov" ||
			!strings.Contains(text, res.CustomerMessage) || !strings.Contains(res.CustomerMessage, "blue kettle") {
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

	checkHistoryEncrypted(t, dir, first)
	checkCodecServer(t, app.DevCodecEndpoint(cfg), dir, first)

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
	// The dev stack's key, which the demo decodes the conversation's payloads with.
	key, err := os.ReadFile(filepath.Join(dir, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "secrets.key"), key, 0o600); err != nil {
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

// checkHistoryEncrypted reads a conversation's history straight from the server, as
// whoever reads Temporal's database or its Web UI without the codec does: none of the
// customer's text, email or phone is in it. Through the codec it reads in clear.
func checkHistoryEncrypted(t *testing.T, dir string, res *demo.Result) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, app.DemoWebhooksFile))
	if err != nil {
		t.Fatal(err)
	}
	var dev app.DevDemo
	if err := json.Unmarshal(data, &dev); err != nil {
		t.Fatal(err)
	}
	history := func(opts client.Options) string {
		opts.HostPort, opts.Namespace, opts.Logger = dev.TemporalAddress, dev.Namespace, sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
		c, err := client.Dial(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b strings.Builder
		it := c.GetWorkflowHistory(context.Background(), res.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(protojson.Format(e))
			// Payloads are base64 in protojson: decode them all, through the client's codec.
			var walk func(m protoreflect.Message)
			walk = func(m protoreflect.Message) {
				m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
					if fd.Kind() != protoreflect.MessageKind {
						return true
					}
					visit := func(v protoreflect.Value) {
						if p, ok := v.Message().Interface().(*commonpb.Payload); ok {
							b.WriteString(opts.DataConverter.ToString(p))
							b.Write(p.GetMetadata()["encoding"])
							b.Write(p.GetData())
							return
						}
						walk(v.Message())
					}
					switch {
					case fd.IsList():
						for i := 0; i < v.List().Len(); i++ {
							visit(v.List().Get(i))
						}
					case fd.IsMap():
						if fd.MapValue().Kind() == protoreflect.MessageKind {
							v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool { visit(mv); return true })
						}
					default:
						visit(v)
					}
					return true
				})
			}
			walk(e.ProtoReflect())
		}
		return b.String()
	}
	secret := []string{"blue kettle", res.CustomerEmail, "2000 1042", "LV0001042"}

	plain := history(client.Options{DataConverter: converter.GetDefaultDataConverter()})
	for _, s := range secret {
		if strings.Contains(plain, s) {
			t.Errorf("the history read without the codec holds %q", s)
		}
	}
	if !strings.Contains(plain, codec.EncodingEncrypted) {
		t.Error("the history holds no encrypted payload")
	}
	key, err := os.ReadFile(filepath.Join(dir, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := codec.ParseKeys("", strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	clear := history(client.Options{DataConverter: codec.DataConverter(codec.New(keys, false))})
	for _, s := range secret {
		if !strings.Contains(clear, s) {
			t.Errorf("the history read through the codec lacks %q", s)
		}
	}
}

// checkCodecServer decodes the conversation's summary, encrypted in Temporal, through the
// codec endpoint `dev` gives its Web UI, as the UI does.
func checkCodecServer(t *testing.T, endpoint, dir string, res *demo.Result) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, app.DemoWebhooksFile))
	if err != nil {
		t.Fatal(err)
	}
	var dev app.DevDemo
	if err := json.Unmarshal(data, &dev); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: dev.TemporalAddress, Namespace: dev.Namespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(context.Background(), res.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	summary := desc.GetExecutionConfig().GetUserMetadata().GetSummary()
	if string(summary.GetMetadata()[codec.MetadataEncoding]) != codec.EncodingEncrypted {
		t.Fatalf("the summary is not encrypted: %v", summary.GetMetadata())
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{summary}})
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", dev.Namespace)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var decoded commonpb.Payloads
	if resp.StatusCode != http.StatusOK || protojson.Unmarshal(out, &decoded) != nil || len(decoded.Payloads) != 1 {
		t.Fatalf("the codec endpoint answered %d %s", resp.StatusCode, out)
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(decoded.Payloads[0], &s); err != nil || s != res.Summary {
		t.Fatalf("decoded summary %q (%v), want %q", s, err, res.Summary)
	}
}
