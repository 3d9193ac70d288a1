package conversation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/conversation"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/inbox"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The service runs against a real Temporal server (embedded), with no worker: what it
// sends is read back from the workflows' histories.
var (
	temporalClient client.Client
	stoppedClient  client.Client // a client of a server that has stopped
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	srv, err := devserver.Start(context.Background(), devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start temporal:", err)
		return 1
	}
	defer srv.Stop()
	if temporalClient, err = dial(srv.Address()); err != nil {
		fmt.Fprintln(os.Stderr, "dial temporal:", err)
		return 1
	}
	defer temporalClient.Close()
	stopped, err := devserver.Start(context.Background(), devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start temporal:", err)
		return 1
	}
	stoppedClient, err = dial(stopped.Address())
	stopped.Stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial temporal:", err)
		return 1
	}
	defer stoppedClient.Close()
	return m.Run()
}

func dial(addr string) (client.Client, error) {
	return client.Dial(client.Options{HostPort: addr, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
}

// chatraStore admits chats while admit is true and remembers the event keys taken.
type chatraStore struct {
	mu         sync.Mutex
	admit      bool
	retryAfter time.Duration
	seen       map[string]bool
}

func (s *chatraStore) AdmitChat(context.Context, string, string, int) (bool, time.Duration, error) {
	return s.admit, s.retryAfter, nil
}

func (s *chatraStore) SeenChatraEvent(_ context.Context, integrationID, eventKey string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[integrationID+"/"+eventKey], nil
}

func (s *chatraStore) RecordChatraEvent(_ context.Context, integrationID, eventKey string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[integrationID+"/"+eventKey] = true
	return nil
}

// replyStore has the conversations of tasks, and holds replies of other tasks.
type replyStore struct {
	mu    sync.Mutex
	convs map[int64]postgres.Conversation
	held  []int64 // comment ids
}

func (s *replyStore) FindConversationByTask(_ context.Context, _ string, taskID int64) (*postgres.Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[taskID]
	if !ok {
		return nil, chatrabridge.Errorf(chatrabridge.ENOTFOUND, "no conversation")
	}
	return &c, nil
}

func (s *replyStore) HoldReplyAtMost(_ context.Context, _ string, _, commentID int64, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) >= max {
		return chatrabridge.Errorf(chatrabridge.ELIMIT, "too many held")
	}
	s.held = append(s.held, commentID)
	return nil
}

// memInbox keeps what it is given.
type memInbox struct {
	mu   sync.Mutex
	kept [][]byte
}

func (b *memInbox) QueueWebhook(_ context.Context, _, _ string, d []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kept = append(b.kept, d)
	return nil
}

func (b *memInbox) WebhooksQueued(context.Context, string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.kept) > 0, nil
}

func webhook(t *testing.T, event, chatID, messages string) *chatra.Webhook {
	t.Helper()
	if messages == "" {
		messages = "[]"
	}
	hook, err := chatra.ParseWebhook(fmt.Appendf(nil, `{"eventName":%q,"messages":%s,"client":{"id":"V-%s","chatId":%q,"name":"Ivan","email":"ivan@example.com"}}`, event, messages, chatID, chatID))
	if err != nil {
		t.Fatal(err)
	}
	return hook
}

// signalsOf lists the signals in a workflow's history: name and key.
func signalsOf(t *testing.T, workflowID string) []string {
	t.Helper()
	var out []string
	it := temporalClient.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		a := e.GetWorkflowExecutionSignaledEventAttributes()
		if a == nil {
			continue
		}
		var arg struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(a.GetInput().GetPayloads()[0].GetData(), &arg); err != nil {
			t.Fatal(err)
		}
		out = append(out, a.GetSignalName()+" "+arg.Key)
	}
	return out
}

func integrationID(t *testing.T) string {
	return "svc-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + fmt.Sprint(time.Now().UnixNano())
}

// A chatStarted with a message starts the chat's conversation with visitor-info, then
// message, each keyed by the delivery; the same delivery again signals nothing.
func TestDeliverChatra(t *testing.T) {
	ctx := context.Background()
	store := &chatraStore{admit: true}
	s := conversation.New(conversation.Options{Temporal: temporalClient, Chatra: store})
	id := integrationID(t)
	hook := webhook(t, "chatStarted", "C1", `[{"id":"M1","type":"client","text":"Hello"},{"id":"M2","type":"agent","text":"echo","receivedFrom":"chatrabridge"}]`)

	out, err := s.DeliverChatra(ctx, id, hook)
	if err != nil {
		t.Fatal(err)
	}
	if want := workflows.ConversationWorkflowID(id, "C1"); out.WorkflowID != want || out.Queued || out.Duplicate {
		t.Fatalf("outcome %+v, want workflow %q, sent", out, want)
	}
	key := hook.EventKey()
	want := []string{
		workflows.SignalVisitorInfo + " " + workflows.DeliveryKey(key, workflows.SignalVisitorInfo),
		workflows.SignalMessage + " " + workflows.DeliveryKey(key, workflows.SignalMessage),
	}
	if got := signalsOf(t, out.WorkflowID); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("signals %q, want %q", got, want)
	}

	again, err := s.DeliverChatra(ctx, id, hook)
	if err != nil || !again.Duplicate || again.WorkflowID != out.WorkflowID {
		t.Fatalf("the same delivery again: %+v, %v; want a duplicate", again, err)
	}
	if got := signalsOf(t, out.WorkflowID); len(got) != 2 {
		t.Fatalf("a duplicate was signalled: %q", got)
	}
}

// Over the integration's new conversations a minute, a delivery is refused with the
// store's wait, and no conversation starts.
func TestDeliverChatraRefused(t *testing.T) {
	s := conversation.New(conversation.Options{Temporal: temporalClient, Chatra: &chatraStore{retryAfter: 7 * time.Second}})
	id := integrationID(t)
	_, err := s.DeliverChatra(context.Background(), id, webhook(t, "chatStarted", "C1", ""))
	var r *conversation.Refusal
	if !errors.As(err, &r) || r.Reason != "new_conversations" || r.RetryAfter != 7*time.Second {
		t.Fatalf("err = %v, want a new_conversations refusal after 7s", err)
	}
	if _, err := temporalClient.DescribeWorkflowExecution(context.Background(), workflows.ConversationWorkflowID(id, "C1"), ""); err == nil {
		t.Fatal("a refused delivery started its conversation")
	}
}

// A chat id Temporal cannot take as a workflow id is refused, naming the field.
func TestDeliverChatraBadChatID(t *testing.T) {
	s := conversation.New(conversation.Options{Temporal: temporalClient})
	_, err := s.DeliverChatra(context.Background(), integrationID(t), webhook(t, "chatStarted", strings.Repeat("x", 300), ""))
	if chatrabridge.ErrorCode(err) != chatrabridge.EINVALID || chatrabridge.ErrorField(err) != "client.chatId" {
		t.Fatalf("err = %v, want EINVALID naming client.chatId", err)
	}
}

// With Temporal down, a delivery is kept in the inbox, as it would have been sent, and
// the next one goes behind it. The Temporal call is cut short once Temporal fails its
// health check too, not left to the delivery's deadline.
func TestDeliverChatraQueued(t *testing.T) {
	box := &memInbox{}
	s := conversation.New(conversation.Options{Temporal: stoppedClient, Inbox: box, Timeout: 2 * time.Second})
	id := integrationID(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.DeliverChatra(ctx, id, webhook(t, "chatStarted", "C1", `[{"id":"M1","type":"client","text":"Hello"}]`))
	if err != nil || !out.Queued {
		t.Fatalf("outcome %+v, %v; want queued", out, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the delivery waited for Temporal until its deadline")
	}
	if len(box.kept) != 1 {
		t.Fatalf("the inbox kept %d deliveries, want 1", len(box.kept))
	}
	var d inbox.Delivery
	if err := json.Unmarshal(box.kept[0], &d); err != nil {
		t.Fatal(err)
	}
	if d.WorkflowID != out.WorkflowID || len(d.Signals) != 2 || d.Signals[0].Name != workflows.SignalVisitorInfo || d.Signals[1].Name != workflows.SignalMessage || d.Email != "ivan@example.com" {
		t.Fatalf("kept %+v", d)
	}
	out, err = s.DeliverChatra(context.Background(), id, webhook(t, "chatFragment", "C1", `[{"id":"M2","type":"client","text":"Still there?"}]`))
	if err != nil || !out.Queued || len(box.kept) != 2 {
		t.Fatalf("the next delivery: %+v, %v, %d kept; want it queued behind", out, err, len(box.kept))
	}
}

// A reply goes to its task's conversation under the comment's key; a task with no
// conversation yet gets it held; a cancelled conversation's is ignored; a task whose
// chats joined on an email claim refuses it; beyond the held bound, it is refused.
func TestRouteReply(t *testing.T) {
	ctx := context.Background()
	id := integrationID(t)
	store := &replyStore{convs: map[int64]postgres.Conversation{
		7:  {IntegrationID: id, ChatID: "C7", ReceivesReplies: true, Status: postgres.StatusOpen},
		8:  {IntegrationID: id, ChatID: "C8", ReceivesReplies: true, Status: postgres.StatusCancelled},
		10: {IntegrationID: id, ChatID: "C10", Status: postgres.StatusOpen},
	}}
	lookup := func(context.Context, string) (*chatrabridge.Integration, error) {
		i := &chatrabridge.Integration{Name: "Shop"}
		i.Options.MaxHeldReplies = 1
		return i, nil
	}
	s := conversation.New(conversation.Options{Temporal: temporalClient, Replies: store, Integrations: lookup})

	out, err := s.RouteReply(ctx, id, 7, 5012)
	if err != nil || out.WorkflowID != workflows.ConversationWorkflowID(id, "C7") || out.Held != "" {
		t.Fatalf("reply of task 7: %+v, %v", out, err)
	}
	if got, want := signalsOf(t, out.WorkflowID), []string{workflows.SignalReply + " " + workflows.ReplyKey(5012)}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("signals %q, want %q", got, want)
	}

	if out, err := s.RouteReply(ctx, id, 9, 6001); err != nil || out.Held == "" || len(store.held) != 1 || store.held[0] != 6001 {
		t.Fatalf("reply of task 9 without a conversation: %+v, %v, held %v", out, err, store.held)
	}
	var r *conversation.Refusal
	if _, err := s.RouteReply(ctx, id, 9, 6002); !errors.As(err, &r) || r.Reason != "held_replies" {
		t.Fatalf("a second held reply over maxHeldReplies 1: %v, want a held_replies refusal", err)
	}
	if out, err := s.RouteReply(ctx, id, 8, 6003); err != nil || out.Ignored == "" {
		t.Fatalf("reply of a cancelled conversation: %+v, %v, want ignored", out, err)
	}
	if _, err := s.RouteReply(ctx, id, 10, 6004); !errors.As(err, &r) || r.Reason != "not_verified" {
		t.Fatalf("reply of a task no chat may receive: %v, want a not_verified refusal", err)
	}
}

// The state of a conversation Temporal does not know says so.
func TestStateUnknown(t *testing.T) {
	s := conversation.New(conversation.Options{Temporal: temporalClient})
	_, err := s.State(context.Background(), "chatra/none/none")
	if err == nil || !strings.Contains(err.Error(), "does not exist in Temporal") {
		t.Fatalf("err = %v", err)
	}
}
