package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The package's embedded Temporal server, its client, and a worker on recorderQueue that
// runs recordingWorkflow under the name ConversationWorkflow: the webhook tests check what
// the API sends, not what the real workflow does with it.
var (
	temporalClient client.Client
	temporalAddr   string
)

const (
	recorderQueue = "webhook-test"
	queryRecorded = "recorded"
	signalTestEnd = "test-end"
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx := context.Background()
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start temporal:", err)
		return 1
	}
	defer srv.Stop()
	temporalAddr = srv.Address()
	temporalClient, err = dialTemporal(temporalAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial temporal:", err)
		return 1
	}
	defer temporalClient.Close()
	w := worker.New(temporalClient, recorderQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(recordingWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	if err := w.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start worker:", err)
		return 1
	}
	defer w.Stop()
	return m.Run()
}

func dialTemporal(addr string) (client.Client, error) {
	return client.Dial(client.Options{HostPort: addr, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
}

// recording is what recordingWorkflow answers to the "recorded" query.
type recording struct {
	Input   workflows.ConversationInput `json:"input"`
	Signals []recordedSignal            `json:"signals"`
}

type recordedSignal struct {
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
}

// recordingWorkflow records its input and every contract signal it receives; it ends on
// the "test-end" signal.
func recordingWorkflow(ctx workflow.Context, in workflows.ConversationInput) error {
	rec := recording{Input: in}
	if err := workflow.SetQueryHandler(ctx, queryRecorded, func() (recording, error) { return rec, nil }); err != nil {
		return err
	}
	ended := false
	sel := workflow.NewSelector(ctx)
	for _, name := range []string{workflows.SignalVisitorInfo, workflows.SignalMessage, workflows.SignalChatClosed, workflows.SignalReply} {
		sel.AddReceive(workflow.GetSignalChannel(ctx, name), func(ch workflow.ReceiveChannel, _ bool) {
			var payload json.RawMessage
			ch.Receive(ctx, &payload)
			rec.Signals = append(rec.Signals, recordedSignal{Name: name, Payload: payload})
		})
	}
	sel.AddReceive(workflow.GetSignalChannel(ctx, signalTestEnd), func(ch workflow.ReceiveChannel, _ bool) {
		ch.Receive(ctx, nil)
		ended = true
	})
	for !ended {
		sel.Select(ctx)
	}
	return nil
}

// waitRecorded queries the workflow's current run until it has recorded at least n
// signals.
func waitRecorded(t *testing.T, workflowID string, n int) recording {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rec recording
		v, err := temporalClient.QueryWorkflow(context.Background(), workflowID, "", queryRecorded)
		if err == nil {
			err = v.Get(&rec)
		}
		if err == nil && len(rec.Signals) >= n {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow %s recorded %d signals, want %d (last error: %v)", workflowID, len(rec.Signals), n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// historySignals lists the names of the signals in a run's history, in the order
// Temporal accepted them.
func historySignals(t *testing.T, workflowID, runID string) []string {
	t.Helper()
	iter := temporalClient.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var names []string
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			names = append(names, a.GetSignalName())
		}
	}
	return names
}

// signalsNamed decodes the recorded signals of one name into T, in recorded order.
func signalsNamed[T any](t *testing.T, rec recording, name string) []T {
	t.Helper()
	var out []T
	for _, s := range rec.Signals {
		if s.Name != name {
			continue
		}
		var v T
		if err := json.Unmarshal(s.Payload, &v); err != nil {
			t.Fatalf("decode %s payload %s: %v", name, s.Payload, err)
		}
		out = append(out, v)
	}
	return out
}

// integration is a test integration with its webhook tokens.
type integration struct {
	ID, Name, ChatraToken, PlanfixToken string
}

func testSealer(t *testing.T) *secrets.Sealer {
	t.Helper()
	sealer, err := secrets.NewSealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}

func newIntegration(t *testing.T, db *postgres.DB) integration {
	t.Helper()
	sealer := testSealer(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	i := &chatrabridge.Integration{
		ID: "shop-" + hex.EncodeToString(b[:]), Name: "Shop",
		Chatra:  chatrabridge.ChatraSettings{APIURL: "https://app.chatra.io", PublicKey: "pk", SecretKey: "sk", HasSecretKey: true},
		Planfix: chatrabridge.PlanfixSettings{AccountURL: "https://example.planfix.com", Token: "pt", HasToken: true, TaskTemplateID: 1, ContactTemplateID: 2},
	}
	tokens, err := postgres.NewIntegrationStore(db, sealer).CreateIntegration(context.Background(), i)
	if err != nil {
		t.Fatal(err)
	}
	return integration{ID: i.ID, Name: i.Name, ChatraToken: tokens.Chatra.Reveal(), PlanfixToken: tokens.Planfix.Reveal()}
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is an API server on the test Temporal and a test schema.
type harness struct {
	db   *postgres.DB
	url  string
	logs *syncBuffer
}

type harnessOptions struct {
	db          *postgres.DB  // default: a new test schema
	temporal    client.Client // default: the package's server
	tokens      api.WebhookTokens
	timeout     time.Duration
	maxInFlight int
	// customerSearch is CUSTOMER_SEARCH (default clear), hashing with codec's key.
	customerSearch string
	codec          *codec.Codec
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	if o.db == nil {
		o.db, _ = postgrestest.New(t)
	}
	if o.temporal == nil {
		o.temporal = temporalClient
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := metrics.New(logger)
	t.Cleanup(func() { _ = reg.Close() })
	s := api.New(api.Params{
		DB: o.db, Temporal: o.temporal, Metrics: reg, Logger: logger,
		Integrations: postgres.NewIntegrationStore(o.db, testSealer(t)),
		Config:       config.Config{TaskQueue: recorderQueue, CustomerSearch: o.customerSearch},
		Webhooks:     api.WebhookOptions{Tokens: o.tokens, Timeout: o.timeout, MaxInFlight: o.maxInFlight},
		Codec:        o.codec,
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &harness{db: o.db, url: ts.URL, logs: logs}
}

type answer struct {
	status int
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

func (h *harness) post(t *testing.T, path, contentType string, body []byte, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, b}
}

func (h *harness) chatra(t *testing.T, in integration, body string) answer {
	t.Helper()
	return h.post(t, "/webhooks/chatra/"+in.ID+"/"+in.ChatraToken, "application/json", []byte(body))
}

// okAnswer checks a 200 {"ok":true,"workflowId":...} answer and returns the workflow id.
func okAnswer(t *testing.T, a answer) (workflowID string, restarted bool) {
	t.Helper()
	var ok struct {
		OK         bool   `json:"ok"`
		WorkflowID string `json:"workflowId"`
		Restarted  bool   `json:"restarted"`
	}
	if a.status != http.StatusOK || json.Unmarshal(a.body, &ok) != nil || !ok.OK || ok.WorkflowID == "" {
		t.Fatalf("answer = %s, want 200 ok", a)
	}
	return ok.WorkflowID, ok.Restarted
}

// errorAnswer checks an error answer's status and JSON body and returns its detail.
func errorAnswer(t *testing.T, a answer, status int, code string) api.ErrorDetail {
	t.Helper()
	var e api.ErrorBody
	if a.status != status || json.Unmarshal(a.body, &e) != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("answer = %s, want %d with error code %q", a, status, code)
	}
	return e.Error
}

// started reports whether any run of the workflow exists.
func started(workflowID string) bool {
	_, err := temporalClient.DescribeWorkflow(context.Background(), workflowID, "")
	return err == nil
}

func metricValue(t *testing.T, h *harness, series string) float64 {
	t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func chatraBody(event, chatID, clientID, messages string, extraClient string) string {
	if messages == "" {
		messages = "[]"
	}
	return fmt.Sprintf(`{"eventName":%q,"messages":%s,"client":{"id":%q,"chatId":%q%s}}`, event, messages, clientID, chatID, extraClient)
}

// A chat's three events reach its workflow, started on first contact with the contract's
// type, task queue, input, search attributes and summary, as the contract's signals in
// the order visitor-info, message, chat-closed; the bridge's own messages produce no
// message signal; the token works in the URL and in the X-Webhook-Token header.
func TestChatraWebhookSignalsTheConversation(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	const card = `,"name":"Ivan","email":"ivan@example.com","info":{"city":"Berlin","browser":"Firefox"}`

	a := h.chatra(t, in, chatraBody("chatStarted", "CHAT1", "V1", "", card))
	workflowID, _ := okAnswer(t, a)
	if want := workflows.ConversationWorkflowID(in.ID, "CHAT1"); workflowID != want {
		t.Fatalf("workflowId = %q, want %q", workflowID, want)
	}

	fragment := chatraBody("chatFragment", "CHAT1", "V1", `[
		{"id":"M1","type":"client","text":"Hello, where is my order?","createdAt":1665578322700},
		{"id":"M2","type":"agent","text":"Echo of a reply","receivedFrom":"`+workflows.ReceivedFromTag+`","agentName":"Anna"},
		{"id":"M3","type":"agent","message":"Checking now","agentId":"A1","agentName":"Julia"}]`, card)
	a = h.post(t, "/webhooks/chatra/"+in.ID, "application/json", []byte(fragment), api.WebhookTokenHeader, in.ChatraToken)
	if id, _ := okAnswer(t, a); id != workflowID {
		t.Fatalf("fragment went to %q, want %q", id, workflowID)
	}
	transcript := chatraBody("chatTranscript", "CHAT1", "V1", `[
		{"id":"M1","type":"client","text":"Hello, where is my order?"},
		{"id":"M2","type":"agent","text":"Echo of a reply","receivedFrom":"`+workflows.ReceivedFromTag+`"},
		{"id":"M3","type":"agent","text":"Checking now"},
		{"id":"M4","type":"client","text":"Thanks!"}]`, card)
	okAnswer(t, h.chatra(t, in, transcript))

	rec := waitRecorded(t, workflowID, 3)
	if want := (workflows.ConversationInput{IntegrationID: in.ID, ChatID: "CHAT1", ClientID: "V1"}); rec.Input.IntegrationID != want.IntegrationID || rec.Input.ChatID != want.ChatID || rec.Input.ClientID != want.ClientID {
		t.Errorf("input = %+v, want %+v", rec.Input, want)
	}
	if len(rec.Signals) != 3 {
		t.Fatalf("recorded %d signals, want 3: %+v", len(rec.Signals), rec.Signals)
	}
	want := []string{workflows.SignalVisitorInfo, workflows.SignalMessage, workflows.SignalChatClosed}
	if got := historySignals(t, workflowID, ""); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("signal order in history = %v, want %v", got, want)
	}

	infos := signalsNamed[workflows.VisitorInfoSignal](t, rec, workflows.SignalVisitorInfo)
	if len(infos) != 1 || !infos[0].Started || !strings.HasPrefix(infos[0].Key, "chatStarted:") {
		t.Fatalf("visitor-info = %+v, want one, started, keyed by the chatStarted delivery", infos)
	}
	wantCard := func(what string, v workflows.VisitorInfo) {
		if v.Name != "Ivan" || v.Email != "ivan@example.com" || v.City != "Berlin" || v.Browser != "Firefox" {
			t.Errorf("%s card = %+v", what, v)
		}
	}
	wantCard("visitor-info", infos[0].Visitor)
	if infos[0].ClientID != "V1" {
		t.Errorf("visitor-info clientId = %q", infos[0].ClientID)
	}

	// The fragment is one message signal carrying the card, without the bridge's own M2.
	msgs := signalsNamed[workflows.MessageSignal](t, rec, workflows.SignalMessage)
	if len(msgs) != 1 || len(msgs[0].Messages) != 2 || msgs[0].Visitor == nil {
		t.Fatalf("message signals = %+v, want one with M1, M3 and the card", msgs)
	}
	wantCard("message", *msgs[0].Visitor)
	m1, m3 := msgs[0].Messages[0], msgs[0].Messages[1]
	if m1.ID != "M1" || m1.Type != "client" || m1.Text != "Hello, where is my order?" || !m1.Time.Equal(time.UnixMilli(1665578322700)) {
		t.Errorf("M1 = %+v", m1)
	}
	if m3.ID != "M3" || m3.Type != "agent" || m3.Text != "Checking now" || m3.AgentID != "A1" || m3.AgentName != "Julia" {
		t.Errorf("M3 = %+v", m3)
	}
	if msgs[0].ClientID != "V1" || !strings.HasPrefix(msgs[0].Key, "chatFragment:") {
		t.Errorf("message signal key %q, clientId %q", msgs[0].Key, msgs[0].ClientID)
	}

	closed := signalsNamed[workflows.ChatClosedSignal](t, rec, workflows.SignalChatClosed)
	if len(closed) != 1 || len(closed[0].Transcript) != 4 || closed[0].Visitor.Name != "Ivan" || closed[0].ClientID != "V1" || !strings.HasPrefix(closed[0].Key, "chatTranscript:") {
		t.Fatalf("chat-closed = %+v", closed)
	}
	if tr := closed[0].Transcript; tr[1].ID != "M2" || tr[1].ReceivedFrom != workflows.ReceivedFromTag || tr[3].Text != "Thanks!" {
		t.Errorf("transcript = %+v", tr)
	}

	desc, err := temporalClient.DescribeWorkflow(context.Background(), workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.WorkflowType.Name != workflows.ConversationWorkflowName || desc.TaskQueueName != recorderQueue {
		t.Errorf("type %q on queue %q", desc.WorkflowType.Name, desc.TaskQueueName)
	}
	for _, attr := range []struct {
		key  temporal.SearchAttributeKeyKeyword
		want string
	}{{workflows.SAIntegration, in.ID}, {workflows.SAChatID, "CHAT1"}, {workflows.SAClientID, "V1"}, {workflows.SAStatus, string(workflows.StatusOpen)}} {
		if got, ok := desc.TypedSearchAttributes.GetKeyword(attr.key); !ok || got != attr.want {
			t.Errorf("search attribute %s = %q (set %v), want %q", attr.key.GetName(), got, ok, attr.want)
		}
	}
	if s, err := desc.GetStaticSummary(); err != nil || s != "Chat with Ivan on "+in.Name {
		t.Errorf("static summary = %q, %v", s, err)
	}

	if strings.Contains(h.logs.String(), in.ChatraToken) {
		t.Errorf("the token was logged:\n%s", h.logs)
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="accepted",source="chatra"}`); v != 3 {
		t.Errorf("accepted chatra webhooks = %v, want 3", v)
	}
}

// A chatStarted that carries messages sends visitor-info, then message.
func TestChatraWebhookChatStartedWithMessages(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	body := chatraBody("chatStarted", "CHAT2", "V2", `[{"id":"S1","type":"client","text":"Hi"}]`, "")
	workflowID, _ := okAnswer(t, h.chatra(t, in, body))
	rec := waitRecorded(t, workflowID, 2)
	if got := historySignals(t, workflowID, ""); strings.Join(got, ",") != "visitor-info,message" {
		t.Errorf("signals = %v, want visitor-info then message", got)
	}
	info := signalsNamed[workflows.VisitorInfoSignal](t, rec, workflows.SignalVisitorInfo)
	msgs := signalsNamed[workflows.MessageSignal](t, rec, workflows.SignalMessage)
	if len(info) != 1 || !info[0].Started || len(msgs) != 1 || len(msgs[0].Messages) != 1 || msgs[0].Messages[0].ID != "S1" {
		t.Fatalf("visitor-info %+v, message %+v", info, msgs)
	}
	// The visitor has no name yet: the summary names the chat.
	desc, err := temporalClient.DescribeWorkflow(context.Background(), workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := desc.GetStaticSummary(); s != "Chat with visitor CHAT2 on "+in.Name {
		t.Errorf("summary = %q", s)
	}
}

// A repeated delivery is answered 200 "duplicate" and signalled once (the store keeps
// the keys of the deliveries taken); another delivery gets other keys; a fragment with
// only the bridge's own messages sends the card alone; the two signals of one
// chatStarted have distinct keys. While the store cannot answer, a repeat is signalled
// again with the same keys (the conversation ignores it).
func TestChatraWebhookRedeliveryKeepsKeys(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	duplicate := func(a answer) {
		t.Helper()
		var d struct {
			OK, Duplicate bool
		}
		if a.status != http.StatusOK || json.Unmarshal(a.body, &d) != nil || !d.OK || !d.Duplicate {
			t.Fatalf("repeated delivery answered %s, want 200 duplicate", a)
		}
	}
	fragment := chatraBody("chatFragment", "CHAT3", "V3", `[{"id":"F1","type":"client","text":"one"}]`, `,"name":"Olga"`)
	workflowID, _ := okAnswer(t, h.chatra(t, in, fragment))
	duplicate(h.chatra(t, in, fragment))
	okAnswer(t, h.chatra(t, in, chatraBody("chatFragment", "CHAT3", "V3", `[{"id":"F2","type":"client","text":"two"}]`, `,"name":"Olga"`)))
	okAnswer(t, h.chatra(t, in, chatraBody("chatFragment", "CHAT3", "V3", `[{"id":"F3","type":"agent","text":"echo","receivedFrom":"`+workflows.ReceivedFromTag+`"}]`, `,"name":"Olga"`)))
	started := chatraBody("chatStarted", "CHAT3", "V3", `[{"id":"F4","type":"client","text":"again"}]`, `,"name":"Olga"`)
	okAnswer(t, h.chatra(t, in, started))
	duplicate(h.chatra(t, in, started))

	// The store down: the repeat is signalled again, with the same keys.
	down := newHarness(t, harnessOptions{db: closedDB(t), tokens: tokenFunc(func(context.Context, string, string, string) error { return nil })})
	okAnswer(t, down.chatra(t, in, started))

	rec := waitRecorded(t, workflowID, 6)
	msgs := signalsNamed[workflows.MessageSignal](t, rec, workflows.SignalMessage)
	infos := signalsNamed[workflows.VisitorInfoSignal](t, rec, workflows.SignalVisitorInfo)
	if len(msgs) != 4 || len(infos) != 3 {
		t.Fatalf("got %d message and %d visitor-info signals, want 4 and 3", len(msgs), len(infos))
	}
	if msgs[1].Key == msgs[0].Key || msgs[1].Messages[0].ID != "F2" {
		t.Errorf("the second fragment: %+v", msgs[1])
	}
	if msgs[2].Key != msgs[3].Key || !reflect.DeepEqual(msgs[2], msgs[3]) || msgs[2].Messages[0].ID != "F4" || msgs[2].Visitor != nil {
		t.Errorf("the repeated chatStarted's messages: %+v / %+v", msgs[2], msgs[3])
	}
	if infos[0].Started || infos[0].Visitor.Name != "Olga" || !strings.HasPrefix(infos[0].Key, "chatFragment:") {
		t.Errorf("the own-only fragment gave %+v", infos[0])
	}
	if !infos[1].Started || infos[1].Key != infos[2].Key || infos[1].Key == msgs[2].Key {
		t.Errorf("chatStarted keys: visitor-info %q, %q; message %q", infos[1].Key, infos[2].Key, msgs[2].Key)
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="duplicate",source="chatra"}`); v != 2 {
		t.Errorf("duplicate chatra webhooks = %v, want 2", v)
	}
	for _, m := range msgs {
		for _, msg := range m.Messages {
			if msg.ID == "F3" {
				t.Errorf("the bridge's own message was signalled: %+v", m)
			}
		}
	}
}

// Each refusal: its status, a JSON error naming the problem, and no workflow started.
func TestChatraWebhookRefusals(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	path := "/webhooks/chatra/" + in.ID + "/" + in.ChatraToken
	valid := chatraBody("chatStarted", "NEVER", "V", "", "")

	for _, tc := range []struct {
		name, body, field string
	}{
		{"not JSON", `{"eventName":`, ""},
		{"unknown event", `{"eventName":"chatDeleted","client":{"id":"V","chatId":"NEVER"}}`, "eventName"},
		{"missing chatId", `{"eventName":"chatStarted","client":{"id":"V"}}`, "client.chatId"},
		{"missing client id", `{"eventName":"chatStarted","client":{"chatId":"NEVER"}}`, "client.id"},
		{"message without id", `{"eventName":"chatFragment","messages":[{"text":"x"}],"client":{"id":"V","chatId":"NEVER"}}`, "messages[0].id"},
		{"chat id too long", chatraBody("chatStarted", strings.Repeat("x", 1200), "V", "", ""), "client.chatId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := errorAnswer(t, h.post(t, path, "application/json", []byte(tc.body)), http.StatusBadRequest, chatrabridge.EINVALID)
			if d.Field != tc.field {
				t.Errorf("field = %q, want %q", d.Field, tc.field)
			}
		})
	}

	wrongToken := h.post(t, "/webhooks/chatra/"+in.ID+"/"+in.PlanfixToken, "application/json", []byte(valid))
	unknown := h.post(t, "/webhooks/chatra/nope-"+in.ID+"/"+in.ChatraToken, "application/json", []byte(valid))
	noToken := h.post(t, "/webhooks/chatra/"+in.ID, "application/json", []byte(valid))
	badHeader := h.post(t, "/webhooks/chatra/"+in.ID, "application/json", []byte(valid), api.WebhookTokenHeader, "x"+in.ChatraToken)
	errorAnswer(t, wrongToken, http.StatusUnauthorized, chatrabridge.EUNAUTHORIZED)
	for _, a := range []answer{unknown, noToken, badHeader} {
		if a.status != wrongToken.status || !bytes.Equal(a.body, wrongToken.body) {
			t.Errorf("refusal %s differs from the wrong-token one %s", a, wrongToken)
		}
	}

	big := []byte(`{"eventName":"chatStarted","client":{"id":"V","chatId":"NEVER"},"pad":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`)
	errorAnswer(t, h.post(t, path, "application/json", big), http.StatusRequestEntityTooLarge, chatrabridge.ETOOLARGE)
	// Without a Content-Length (chunked), the limit holds while reading.
	req, _ := http.NewRequest(http.MethodPost, h.url+path, io.MultiReader(bytes.NewReader(big)))
	errorAnswer(t, do(t, req), http.StatusRequestEntityTooLarge, chatrabridge.ETOOLARGE)
	// Under 1 MiB, but over Temporal's payload limit once JSON escapes each '<' as \u003c:
	// refused for good rather than retried forever.
	var many []string
	for i := range 250 {
		many = append(many, fmt.Sprintf(`{"id":"BIG%d","type":"client","text":"%s"}`, i, strings.Repeat("<", 4000)))
	}
	escaped := chatraBody("chatFragment", "NEVER", "V", "["+strings.Join(many, ",")+"]", "")
	if len(escaped) > api.MaxBodyBytes {
		t.Fatalf("the escaping case is %d bytes, over the body limit", len(escaped))
	}
	errorAnswer(t, h.post(t, path, "application/json", []byte(escaped)), http.StatusRequestEntityTooLarge, chatrabridge.ETOOLARGE)

	if started(workflows.ConversationWorkflowID(in.ID, "NEVER")) {
		t.Error("a refused webhook started a workflow")
	}
	for _, s := range []string{in.ChatraToken, in.PlanfixToken} {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("a token was logged:\n%s", h.logs)
		}
	}
	for outcome, want := range map[string]float64{"invalid": 6, "unauthorized": 4, "too_large": 3} {
		if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="`+outcome+`",source="chatra"}`); v != want {
			t.Errorf("%s chatra webhooks = %v, want %v", outcome, v, want)
		}
	}
	// Metrics name routes by pattern: neither token nor integration id is a label value.
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `route="/webhooks/chatra/:integrationId/:token"`) || strings.Contains(string(m), in.ChatraToken) || strings.Contains(string(m), in.ID) {
		t.Errorf("metrics leak the URL or lack the route pattern:\n%s", grepLines(string(m), "webhooks"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A conversation with a Planfix task, started by a Chatra webhook as in production.
func startConversation(t *testing.T, h *harness, in integration, chatID string, taskID int64) string {
	t.Helper()
	workflowID, _ := okAnswer(t, h.chatra(t, in, chatraBody("chatStarted", chatID, "V-"+chatID, "", `,"name":"Petr"`)))
	waitRecorded(t, workflowID, 1)
	_, err := h.db.SaveConversation(context.Background(), postgres.Conversation{
		IntegrationID: in.ID, ChatID: chatID, WorkflowID: workflowID, ClientID: "V-" + chatID,
		PlanfixTaskID: &taskID, CustomerName: "Petr",
	})
	if err != nil {
		t.Fatal(err)
	}
	return workflowID
}

// A comment in a chat task reaches the chat's workflow as reply, keyed by the comment id,
// from a JSON body (numbers or numeric strings) or a form, with the token in the URL or
// the header. A reply in a task without a conversation yet (written before the bridge
// saved it) is held, answered 200, and goes to the conversation that saves the task.
func TestPlanfixWebhookSignalsReply(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	workflowID := startConversation(t, h, in, "PCHAT1", 42)
	path := "/webhooks/planfix/" + in.ID + "/" + in.PlanfixToken

	a := h.post(t, path, "application/json", []byte(`{"taskId": "42", "commentId": "777"}`))
	if id, restarted := okAnswer(t, a); id != workflowID || restarted {
		t.Fatalf("reply went to %q (restarted %v), want %q", id, restarted, workflowID)
	}
	okAnswer(t, h.post(t, path, "application/json", []byte(`{"taskId": 42, "commentId": 777}`))) // Planfix retrying
	okAnswer(t, h.post(t, "/webhooks/planfix/"+in.ID, "application/x-www-form-urlencoded", []byte("taskId=42&commentId=778"), api.WebhookTokenHeader, in.PlanfixToken))

	rec := waitRecorded(t, workflowID, 4) // visitor-info + 3 replies
	replies := signalsNamed[workflows.ReplySignal](t, rec, workflows.SignalReply)
	if len(replies) != 3 {
		t.Fatalf("replies = %+v", replies)
	}
	for i, want := range []workflows.ReplySignal{
		{Key: "planfix-comment:777", CommentID: 777, TaskID: 42},
		{Key: "planfix-comment:777", CommentID: 777, TaskID: 42},
		{Key: "planfix-comment:778", CommentID: 778, TaskID: 42},
	} {
		if replies[i] != want {
			t.Errorf("reply %d = %+v, want %+v", i, replies[i], want)
		}
	}

	for range 2 { // the second time, Planfix retrying: still one held reply
		a = h.post(t, path, "application/json", []byte(`{"taskId": 43, "commentId": 9}`))
		var held struct {
			OK   bool   `json:"ok"`
			Held string `json:"held"`
		}
		if a.status != http.StatusOK || json.Unmarshal(a.body, &held) != nil || !held.OK || !strings.HasPrefix(held.Held, "no conversation for task 43 yet: the reply is kept") {
			t.Fatalf("task without a conversation yet: %s", a)
		}
	}
	var rows []string
	r, _ := h.db.Pool.Query(context.Background(), `SELECT integration_id || ' ' || task_id || ' ' || comment_id FROM held_replies`)
	rows, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil || len(rows) != 1 || rows[0] != in.ID+" 43 9" {
		t.Fatalf("held replies = %q, %v; want [%s 43 9]", rows, err, in.ID)
	}
	if !strings.Contains(h.logs.String(), "planfix reply held") || !strings.Contains(h.logs.String(), "task_id=43") {
		t.Errorf("the held reply was not logged:\n%s", h.logs)
	}
	if strings.Contains(h.logs.String(), in.PlanfixToken) {
		t.Errorf("the token was logged:\n%s", h.logs)
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="held",source="planfix"}`); v != 2 {
		t.Errorf("held planfix webhooks = %v, want 2", v)
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="ignored",source="planfix"}`); v != 0 {
		t.Errorf("ignored planfix webhooks = %v, want 0", v)
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="accepted",source="planfix"}`); v != 3 {
		t.Errorf("accepted planfix webhooks = %v, want 3", v)
	}

	// The conversation that saves the task takes the held reply; from then on a reply in
	// the task (the same one again, say) is signalled.
	task := int64(43)
	got, err := h.db.SaveConversation(context.Background(), postgres.Conversation{IntegrationID: in.ID, ChatID: "PCHAT43",
		WorkflowID: workflows.ConversationWorkflowID(in.ID, "PCHAT43"), PlanfixTaskID: &task})
	if err != nil || len(got) != 1 || got[0] != 9 {
		t.Fatalf("the save with task 43 took %v, %v; want [9]", got, err)
	}
	a = h.post(t, path, "application/json", []byte(`{"taskId": 43, "commentId": 9}`))
	if id, restarted := okAnswer(t, a); id != workflows.ConversationWorkflowID(in.ID, "PCHAT43") || !restarted {
		t.Errorf("reply once task 43 has its conversation: %s", a)
	}
}

// A reply after the conversation's workflow ended starts a new run that receives it, with
// the conversation's input; a reply to a cancelled conversation is ignored.
func TestPlanfixWebhookRestartsEndedConversation(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	workflowID := startConversation(t, h, in, "PCHAT2", 50)
	ctx := context.Background()
	if err := temporalClient.SignalWorkflow(ctx, workflowID, "", signalTestEnd, nil); err != nil {
		t.Fatal(err)
	}
	if err := temporalClient.GetWorkflow(ctx, workflowID, "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}

	a := h.post(t, "/webhooks/planfix/"+in.ID+"/"+in.PlanfixToken, "application/json", []byte(`{"taskId":50,"commentId":"9001"}`))
	if id, restarted := okAnswer(t, a); id != workflowID || !restarted {
		t.Fatalf("answer %s: want a restart of %s", a, workflowID)
	}
	rec := waitRecorded(t, workflowID, 1)
	replies := signalsNamed[workflows.ReplySignal](t, rec, workflows.SignalReply)
	if len(rec.Signals) != 1 || len(replies) != 1 || replies[0] != (workflows.ReplySignal{Key: "planfix-comment:9001", CommentID: 9001, TaskID: 50}) {
		t.Fatalf("new run recorded %+v", rec.Signals)
	}
	if rec.Input.IntegrationID != in.ID || rec.Input.ChatID != "PCHAT2" || rec.Input.ClientID != "V-PCHAT2" {
		t.Errorf("new run's input = %+v", rec.Input)
	}
	desc, err := temporalClient.DescribeWorkflow(ctx, workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := desc.GetStaticSummary(); s != "Chat with Petr on "+in.Name {
		t.Errorf("summary = %q", s)
	}

	taskID := int64(51)
	if _, err := h.db.SaveConversation(ctx, postgres.Conversation{IntegrationID: in.ID, ChatID: "PCHAT3", WorkflowID: workflows.ConversationWorkflowID(in.ID, "PCHAT3"), PlanfixTaskID: &taskID, Status: postgres.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	a = h.post(t, "/webhooks/planfix/"+in.ID+"/"+in.PlanfixToken, "application/json", []byte(`{"taskId":51,"commentId":1}`))
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"ignored"`) {
		t.Fatalf("reply to a cancelled conversation: %s", a)
	}
	if started(workflows.ConversationWorkflowID(in.ID, "PCHAT3")) {
		t.Error("a reply restarted a cancelled conversation")
	}
}

// planfixRefusal checks a Planfix answer that takes nothing and is final: 200
// {"ok":false,"refused":...,"code":code}, since Planfix would retry any other status
// and pause the account's requests.
func planfixRefusal(t *testing.T, a answer, code string) refusedBody {
	t.Helper()
	var r refusedBody
	if a.status != http.StatusOK || json.Unmarshal(a.body, &r) != nil || r.OK || r.Refused == "" || r.Code != code {
		t.Fatalf("answer = %s, want 200 refused with code %q", a, code)
	}
	return r
}

type refusedBody struct {
	OK      bool   `json:"ok"`
	Refused string `json:"refused"`
	Code    string `json:"code"`
	Field   string `json:"field"`
}

// Each refusal of the Planfix webhook is a final 200 saying why, logged and counted by
// outcome, never logging the token.
func TestPlanfixWebhookRefusals(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	path := "/webhooks/planfix/" + in.ID + "/" + in.PlanfixToken
	cases := []struct {
		name, contentType, body, field string
	}{
		{"not JSON", "application/json", `{"taskId":`, ""},
		{"JSON array", "application/json", `[1,2]`, ""},
		{"missing taskId", "application/json", `{"commentId":1}`, "taskId"},
		{"taskId not a number", "application/json", `{"taskId":"abc","commentId":1}`, "taskId"},
		{"unfilled variable", "application/json", `{"taskId":"{{Задача.Номер}}","commentId":1}`, "taskId"},
		{"taskId negative", "application/json", `{"taskId":-4,"commentId":1}`, "taskId"},
		{"taskId fractional", "application/json", `{"taskId":4.5,"commentId":1}`, "taskId"},
		{"taskId boolean", "application/json", `{"taskId":true,"commentId":1}`, "taskId"},
		{"taskId null", "application/json", `{"taskId":null,"commentId":1}`, "taskId"},
		{"missing commentId", "application/json", `{"taskId":1}`, "commentId"},
		{"commentId empty", "application/json", `{"taskId":1,"commentId":""}`, "commentId"},
		{"commentId overflows", "application/json", `{"taskId":1,"commentId":99999999999999999999}`, "commentId"},
		{"form commentId bad", "application/x-www-form-urlencoded", `taskId=1&commentId=x`, "commentId"},
		{"empty form", "application/x-www-form-urlencoded", ``, "taskId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := planfixRefusal(t, h.post(t, path, tc.contentType, []byte(tc.body)), chatrabridge.EINVALID)
			if r.Field != tc.field {
				t.Errorf("field = %q, want %q (%s)", r.Field, tc.field, r.Refused)
			}
		})
	}
	body := []byte(`{"taskId":1,"commentId":2}`)
	wrongToken := h.post(t, "/webhooks/planfix/"+in.ID+"/"+in.ChatraToken, "application/json", body) // the Chatra token is not the Planfix one
	planfixRefusal(t, wrongToken, chatrabridge.EUNAUTHORIZED)
	for _, a := range []answer{
		h.post(t, "/webhooks/planfix/nope/"+in.PlanfixToken, "application/json", body),
		h.post(t, "/webhooks/planfix/"+in.ID, "application/json", body),
		h.post(t, "/webhooks/planfix/"+in.ID, "application/json", body, api.WebhookTokenHeader, in.ChatraToken),
	} {
		if a.status != wrongToken.status || !bytes.Equal(a.body, wrongToken.body) {
			t.Errorf("refusal %s differs from the wrong-token one %s", a, wrongToken)
		}
	}
	// Over 1 MiB: refused by the body limit before the handler (Content-Length), and by
	// the handler reading a body of unknown length.
	big := []byte(`{"taskId":1,"commentId":2,"pad":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`)
	planfixRefusal(t, h.post(t, path, "application/json", big), chatrabridge.ETOOLARGE)
	req, err := http.NewRequest(http.MethodPost, h.url+path, io.MultiReader(bytes.NewReader(big))) // no Content-Length
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	planfixRefusal(t, do(t, req), chatrabridge.ETOOLARGE)

	for outcome, want := range map[string]float64{"invalid": float64(len(cases)), "unauthorized": 4, "too_large": 2, "accepted": 0} {
		if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="`+outcome+`",source="planfix"}`); v != want {
			t.Errorf("planfix webhooks %s = %v, want %v", outcome, v, want)
		}
	}
	logs := h.logs.String()
	for _, outcome := range []string{"outcome=invalid", "outcome=unauthorized", "outcome=too_large"} {
		if !strings.Contains(logs, outcome) {
			t.Errorf("no log of %s", outcome)
		}
	}
	if strings.Contains(logs, in.PlanfixToken) || strings.Contains(logs, in.ChatraToken) {
		t.Errorf("a token was logged:\n%s", logs)
	}
}

// When the store cannot answer, the Planfix webhook answers 503 so that Planfix retries:
// a closed pool, and a PostgreSQL that does not answer.
func TestPlanfixWebhookStoreDown(t *testing.T) {
	live, _ := postgrestest.New(t)
	in := newIntegration(t, live)
	tokens := live // the token check passes: the conversation lookup fails

	closed, _ := postgrestest.New(t)
	closed.Close()
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	for name, db := range map[string]*postgres.DB{"closed pool": closed, "unreachable": {Pool: pool}} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{db: db, tokens: tokens})
			a := h.post(t, "/webhooks/planfix/"+in.ID+"/"+in.PlanfixToken, "application/json", []byte(`{"taskId":1,"commentId":2}`))
			errorAnswer(t, a, http.StatusServiceUnavailable, chatrabridge.EUNAVAILABLE)
		})
	}
	// The store also checks tokens: down, it refuses with 503, not 401.
	h := newHarness(t, harnessOptions{db: closed})
	a := h.post(t, "/webhooks/chatra/"+in.ID+"/"+in.ChatraToken, "application/json", []byte(chatraBody("chatStarted", "C", "V", "", "")))
	errorAnswer(t, a, http.StatusServiceUnavailable, chatrabridge.EUNAVAILABLE)
}

// temporalDown is a client of a Temporal server that has stopped.
func temporalDown(t *testing.T) client.Client {
	t.Helper()
	srv, err := devserver.Start(context.Background(), devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialTemporal(srv.Address())
	srv.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// When Temporal is down and the store is too, both webhooks answer 503 so that the
// sender retries: nothing is answered 200 that nothing took. (With the store up, the
// inbox takes them: TestWebhookInbox.)
func TestWebhooksTemporalDown(t *testing.T) {
	ctx := context.Background()
	c := temporalDown(t)
	live, _ := postgrestest.New(t)
	in := newIntegration(t, live)
	taskID := int64(7)
	if _, err := live.SaveConversation(ctx, postgres.Conversation{IntegrationID: in.ID, ChatID: "DOWN", WorkflowID: workflows.ConversationWorkflowID(in.ID, "DOWN"), PlanfixTaskID: &taskID}); err != nil {
		t.Fatal(err)
	}
	// The store answers the token check and the task's conversation, then goes down for
	// the inbox.
	down, _ := postgrestest.New(t)
	down.Close()
	h := newHarness(t, harnessOptions{db: down, tokens: live, temporal: c, timeout: 3 * time.Second})

	a := h.post(t, "/webhooks/chatra/"+in.ID+"/"+in.ChatraToken, "application/json", []byte(chatraBody("chatFragment", "DOWN", "V", `[{"id":"D1","type":"client","text":"hi"}]`, "")))
	errorAnswer(t, a, http.StatusServiceUnavailable, chatrabridge.EUNAVAILABLE)
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="unavailable",source="chatra"}`); v != 1 {
		t.Errorf("unavailable chatra webhooks = %v, want 1", v)
	}
	if !strings.Contains(h.logs.String(), "temporal unavailable") || !strings.Contains(h.logs.String(), "neither Temporal nor the store") || strings.Contains(h.logs.String(), in.PlanfixToken) {
		t.Errorf("logs:\n%s", h.logs)
	}
}

// downTokens is the store's token check, or EUNAVAILABLE while down is set, or a
// failure the store did not classify while broken is set (a connection that broke
// mid-query).
type downTokens struct {
	store        api.WebhookTokens
	down, broken atomic.Bool
}

func (d *downTokens) CheckWebhookToken(ctx context.Context, integrationID, kind, token string) error {
	if d.down.Load() {
		return chatrabridge.Errorf(chatrabridge.EUNAVAILABLE, "the store is down")
	}
	if d.broken.Load() {
		return errors.New("unexpected EOF")
	}
	return d.store.CheckWebhookToken(ctx, integrationID, kind, token)
}

// While the store cannot answer, a Chatra delivery with a token the store accepted
// lately is still taken (Temporal keeps it); a token the store never accepted is
// answered 503, neither 200 nor 401, since nothing can tell it is wrong.
func TestChatraWebhookStoreDownRemembersTokens(t *testing.T) {
	db, _ := postgrestest.New(t)
	tokens := &downTokens{store: db}
	h := newHarness(t, harnessOptions{db: db, tokens: tokens})
	in := newIntegration(t, db)
	other := newIntegration(t, db)

	if a := h.chatra(t, in, chatraBody("chatStarted", "REMEMBER", "V", "", "")); a.status != http.StatusOK {
		t.Fatalf("store up: %v", a)
	}
	tokens.down.Store(true)
	if a := h.chatra(t, in, chatraBody("chatFragment", "REMEMBER", "V", `[{"id":"R1","type":"client","text":"still there?"}]`, "")); a.status != http.StatusOK {
		t.Errorf("store down, token accepted a moment ago: %v, want 200", a)
	}
	tokens.down.Store(false)
	tokens.broken.Store(true) // a failure, not an answer: the same as down
	if a := h.chatra(t, in, chatraBody("chatFragment", "REMEMBER", "V", `[{"id":"R2","type":"client","text":"hello?"}]`, "")); a.status != http.StatusOK {
		t.Errorf("store failing, token accepted before: %v, want 200", a)
	}
	tokens.broken.Store(false)
	tokens.down.Store(true)
	if a := h.chatra(t, in, chatraBody("chatFragment", "REMEMBER", "V", `[{"id":"R3","type":"client","text":"anyone?"}]`, "")); a.status != http.StatusOK {
		t.Errorf("store down after a failure, token accepted before: %v, want 200 (the failure must not forget it)", a)
	}
	a := h.post(t, "/webhooks/chatra/"+in.ID+"/"+in.ChatraToken+"x", "application/json", []byte(chatraBody("chatStarted", "X", "V", "", "")))
	errorAnswer(t, a, http.StatusServiceUnavailable, chatrabridge.EUNAVAILABLE)
	a = h.chatra(t, other, chatraBody("chatStarted", "OTHER", "V", "", ""))
	errorAnswer(t, a, http.StatusServiceUnavailable, chatrabridge.EUNAVAILABLE)

	// Up again, the store decides: a rotated token is refused at once.
	tokens.down.Store(false)
	if _, err := postgres.NewIntegrationStore(db, testSealer(t)).RotateWebhookTokens(context.Background(), in.ID); err != nil {
		t.Fatal(err)
	}
	a = h.chatra(t, in, chatraBody("chatStarted", "REMEMBER", "V", "", ""))
	errorAnswer(t, a, http.StatusUnauthorized, chatrabridge.EUNAUTHORIZED)
	tokens.down.Store(true)
	a = h.chatra(t, in, chatraBody("chatStarted", "REMEMBER", "V", "", ""))
	errorAnswer(t, a, http.StatusServiceUnavailable, chatrabridge.EUNAVAILABLE)
}

// CUSTOMER_SEARCH: the start sets the customer's email and name in clear (by default), as
// the keyed hash `chatrabridge search-key` prints, or not at all; the other search
// attributes stay as they are.
func TestChatraWebhookCustomerSearch(t *testing.T) {
	keys, err := codec.ParseKeys("", testSecretsKeyForSearch)
	if err != nil {
		t.Fatal(err)
	}
	cd := codec.New(keys, true)
	for _, c := range []struct{ mode, email, name string }{
		{"clear", "Ivan@Example.com", "Ivan"},
		{"hash", codec.SearchHash(keys.SearchKey(), "ivan@example.com"), codec.SearchHash(keys.SearchKey(), "ivan")},
		{"off", "", ""},
	} {
		t.Run(c.mode, func(t *testing.T) {
			h := newHarness(t, harnessOptions{customerSearch: c.mode, codec: cd})
			in := newIntegration(t, h.db)
			workflowID, _ := okAnswer(t, h.chatra(t, in, chatraBody("chatStarted", "CS-"+c.mode, "V1", "", `,"name":"Ivan","email":"Ivan@Example.com"`)))
			desc, err := temporalClient.DescribeWorkflow(context.Background(), workflowID, "")
			if err != nil {
				t.Fatal(err)
			}
			sa := desc.TypedSearchAttributes
			email, _ := sa.GetKeyword(workflows.SAEmail)
			name, _ := sa.GetKeyword(workflows.SAName)
			chat, _ := sa.GetKeyword(workflows.SAChatID)
			if email != c.email || name != c.name || chat != "CS-"+c.mode {
				t.Errorf("CustomerEmail %q, CustomerName %q, ChatraChatId %q; want %q, %q", email, name, chat, c.email, c.name)
			}
		})
	}
}

const testSecretsKeyForSearch = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
