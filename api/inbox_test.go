package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/inbox"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// queuedAnswer checks a 200 {"ok":true,"queued":true} answer.
func queuedAnswer(t *testing.T, a answer) {
	t.Helper()
	var q struct {
		OK     bool `json:"ok"`
		Queued bool `json:"queued"`
	}
	if a.status != http.StatusOK || json.Unmarshal(a.body, &q) != nil || !q.OK || !q.Queued {
		t.Fatalf("answer = %s, want 200 queued", a)
	}
}

// signalKeys lists the keys of the recorded signals, in the order received.
func signalKeys(t *testing.T, rec recording) []string {
	t.Helper()
	var keys []string
	for _, s := range rec.Signals {
		var k struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(s.Payload, &k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Name+" "+k.Key)
	}
	return keys
}

// While Temporal cannot be reached, every webhook (Chatra's and Planfix's) is kept in
// the inbox and answered 200; a webhook of a conversation with kept ones is queued
// behind them even once Temporal is back; the forwarder then delivers each once, in
// arrival order, and the inbox is empty. Delivered again after a crash (not deleted),
// a webhook carries the same keys, which the workflow de-duplicates.
func TestWebhookInbox(t *testing.T) {
	ctx := context.Background()
	down := newHarness(t, harnessOptions{temporal: temporalDown(t), timeout: 2 * time.Second})
	in := newIntegration(t, down.db)
	chatID := "INBOX"
	workflowID := workflows.ConversationWorkflowID(in.ID, chatID)
	taskID := int64(70)
	if _, err := down.db.SaveConversation(ctx, postgres.Conversation{IntegrationID: in.ID, ChatID: chatID, WorkflowID: workflowID, PlanfixTaskID: &taskID, ReceivesReplies: true}); err != nil {
		t.Fatal(err)
	}
	planfix := func(h *harness, comment int) answer {
		return h.post(t, "/webhooks/planfix/"+in.ID+"/"+in.PlanfixToken, "application/json", []byte(fmt.Sprintf(`{"taskId":%d,"commentId":%d}`, taskID, comment)))
	}
	message := func(id string) string {
		return chatraBody("chatFragment", chatID, "V", `[{"id":"`+id+`","type":"client","text":"hi `+id+`"}]`, "")
	}

	queuedAnswer(t, down.chatra(t, in, chatraBody("chatStarted", chatID, "V", "", `,"info":{"name":"Ivan"}`)))
	queuedAnswer(t, down.chatra(t, in, message("M1")))
	queuedAnswer(t, planfix(down, 801))
	queuedAnswer(t, down.chatra(t, in, message("M2")))
	queuedAnswer(t, planfix(down, 802))
	// Planfix and Chatra deliver again what they think was not taken: kept again.
	queuedAnswer(t, planfix(down, 802))
	if v := metricValue(t, down, `chatrabridge_webhooks_total{outcome="queued",source="chatra"}`); v != 3 {
		t.Errorf("queued chatra webhooks = %v, want 3", v)
	}
	if v := metricValue(t, down, `chatrabridge_webhooks_total{outcome="queued",source="planfix"}`); v != 3 {
		t.Errorf("queued planfix webhooks = %v, want 3", v)
	}

	// Temporal is back (a server that takes them): the conversation's next webhook waits
	// behind the kept ones.
	up := newHarness(t, harnessOptions{db: down.db})
	queuedAnswer(t, up.chatra(t, in, message("M3")))
	if started(workflowID) {
		t.Fatal("a webhook overtook the kept ones of its conversation")
	}
	// /readyz names a backlog beyond its bound.
	for i := range api.InboxBacklogBound {
		if err := down.db.QueueWebhook(ctx, in.ID, "backlog", []byte(`{"i":`+fmt.Sprint(i)+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(up.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"inbox":"107 webhooks waiting for Temporal`) {
		t.Errorf("readyz with a backlog: %d %s", resp.StatusCode, body)
	}
	if _, err := down.db.Pool.Exec(ctx, `DELETE FROM webhook_inbox WHERE workflow_id = 'backlog'`); err != nil {
		t.Fatal(err)
	}

	// Two forwarders (two processes) race over the inbox.
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	forwarders := []*inbox.Forwarder{inbox.NewForwarder(down.db, temporalClient, reg, logger), inbox.NewForwarder(down.db, temporalClient, prometheus.NewRegistry(), logger)}
	done := make(chan error, len(forwarders))
	for _, f := range forwarders {
		go func() {
			_, err := f.Forward(ctx)
			done <- err
		}()
	}
	for range forwarders {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n, _, err := down.db.InboxBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("inbox after forwarding: %d, %v", n, err)
	}
	want := []string{
		workflows.SignalVisitorInfo + " ", // keys end with the delivery's event key
		workflows.SignalMessage + " ",
		workflows.SignalReply + " planfix-comment:801",
		workflows.SignalMessage + " ",
		workflows.SignalReply + " planfix-comment:802",
		workflows.SignalReply + " planfix-comment:802", // the repeat, same key: the workflow ignores it
		workflows.SignalMessage + " ",
	}
	rec := waitRecorded(t, workflowID, len(want))
	keys := signalKeys(t, rec)
	if len(keys) != len(want) {
		t.Fatalf("recorded %q, want %d signals", keys, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(keys[i], want[i]) {
			t.Errorf("signal %d is %q, want %q…", i, keys[i], want[i])
		}
	}
	msgs := signalsNamed[workflows.MessageSignal](t, rec, workflows.SignalMessage)
	var order []string
	for _, m := range msgs {
		for _, x := range m.Messages {
			order = append(order, x.ID)
		}
	}
	if !slices.Equal(order, []string{"M1", "M2", "M3"}) {
		t.Errorf("messages in the order %q, want M1 M2 M3", order)
	}
	if rec.Input.ChatID != chatID || rec.Input.IntegrationID != in.ID {
		t.Errorf("started with %+v", rec.Input)
	}

	// Nothing is left to send twice; the next webhook goes straight to Temporal.
	for _, f := range forwarders {
		if n, err := f.Forward(ctx); err != nil || n != 0 {
			t.Errorf("forward again: %d, %v", n, err)
		}
	}
	// (Counted at the end of each round: the racing one may have counted the other's.)
	if v := gaugeValue(t, reg, "chatrabridge_webhook_inbox_backlog"); v != 0 {
		t.Errorf("backlog gauge %v after forwarding, want 0", v)
	}
	if id, _ := okAnswer(t, up.chatra(t, in, message("M4"))); id != workflowID {
		t.Errorf("workflow %s", id)
	}

	// A crash after Temporal took a kept webhook, before its deletion: it stays, and is
	// sent again with the same keys.
	d := inbox.Delivery{WorkflowID: workflowID, TaskQueue: recorderQueue, Input: rec.Input, SignalFirst: true,
		Signals: []inbox.Signal{{Name: workflows.SignalReply, Arg: workflows.ReplySignal{Key: "planfix-comment:801", CommentID: 801, TaskID: taskID}}}}
	b, _ := json.Marshal(d)
	if err := down.db.QueueWebhook(ctx, in.ID, workflowID, b); err != nil {
		t.Fatal(err)
	}
	if n, err := forwarders[0].Forward(ctx); err != nil || n != 1 {
		t.Fatalf("forward the repeat: %d, %v", n, err)
	}
	keys = signalKeys(t, waitRecorded(t, workflowID, len(want)+2))
	if last := keys[len(keys)-1]; last != workflows.SignalReply+" planfix-comment:801" {
		t.Errorf("the repeat arrived as %q", last)
	}
}

// gaugeValue is the value of the gauge name in reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// The forwarder's loop (what every api and worker process runs) delivers a webhook kept
// while Temporal was unreachable without being asked.
func TestInboxForwarderRuns(t *testing.T) {
	down := newHarness(t, harnessOptions{temporal: temporalDown(t), timeout: 2 * time.Second})
	in := newIntegration(t, down.db)
	queuedAnswer(t, down.chatra(t, in, chatraBody("chatStarted", "RUN", "V", `[{"id":"R1","type":"client","text":"hi"}]`, "")))

	f := inbox.NewForwarder(down.db, temporalClient, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	f.Interval = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		f.Run(ctx)
	}()
	defer func() { cancel(); <-stopped }()
	rec := waitRecorded(t, workflows.ConversationWorkflowID(in.ID, "RUN"), 2)
	if rec.Signals[0].Name != workflows.SignalVisitorInfo || rec.Signals[1].Name != workflows.SignalMessage {
		t.Errorf("recorded %+v", rec.Signals)
	}
}

// refusingTemporal refuses every signal as an invalid request.
type refusingTemporal struct{ client.Client }

func (refusingTemporal) SignalWorkflow(context.Context, string, string, string, any) error {
	return serviceerror.NewInvalidArgument("the request is refused as it is")
}

// A Planfix reply Temporal refuses as it is cannot succeed on a retry: it is answered
// 200 {"ok":false,...,"code":"invalid"} and not kept in the inbox.
func TestPlanfixWebhookTemporalRefuses(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{temporal: refusingTemporal{temporalClient}})
	in := newIntegration(t, h.db)
	taskID := int64(90)
	if _, err := h.db.SaveConversation(ctx, postgres.Conversation{IntegrationID: in.ID, ChatID: "REFUSED", WorkflowID: workflows.ConversationWorkflowID(in.ID, "REFUSED"), PlanfixTaskID: &taskID, ReceivesReplies: true}); err != nil {
		t.Fatal(err)
	}
	a := h.post(t, "/webhooks/planfix/"+in.ID+"/"+in.PlanfixToken, "application/json", []byte(`{"taskId":90,"commentId":1}`))
	if r := planfixRefusal(t, a, chatrabridge.EINVALID); !strings.Contains(r.Refused, "Temporal refuses") {
		t.Errorf("refused: %s", r.Refused)
	}
	if n, _, err := h.db.InboxBacklog(ctx); err != nil || n != 0 {
		t.Errorf("inbox: %d, %v", n, err)
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="invalid",source="planfix"}`); v != 1 {
		t.Errorf("invalid planfix webhooks = %v, want 1", v)
	}
}
