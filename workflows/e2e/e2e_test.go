// Package e2e runs whole conversations on the embedded Temporal server, with the real
// activities on PostgreSQL and the Chatra and Planfix stand-ins, and asserts the exact
// calls made to both. Each test is one behaviour of a conversation; with -record it
// also writes its workflow's history to workflows/testdata/<release>/, which the replay
// test in package workflows replays against every later version of the code (the
// histories are append-only; record_test.go says how):
//
//	make histories RELEASE=v0.1.0
//
// Without -record the tests write nothing.
package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/worker"
	"github.com/chatrabridge/chatrabridge/workflows"
)

const (
	taskQueue    = "e2e"
	planfixToken = "pf-token-0123456789"
	chatraPublic = "pub-key"
	chatraSecret = "secret-key-0123"
	clientID     = "V1"
	sealKey      = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// stack is one embedded Temporal server, with a worker of the bridge on a fresh
// PostgreSQL schema and the two stand-ins.
type stack struct {
	t            *testing.T
	temporal     client.Client
	db           *postgres.DB
	integrations *postgres.IntegrationStore
	planfix      *sandbox.Planfix
	chatra       *sandbox.Chatra
	integ        *chatrabridge.Integration
	queue        string
	payloads     converter.DataConverter // the client's: decodes what the workers encrypted

	mu            sync.Mutex
	onTaskCreated func(taskID int64) // see afterTaskCreated
}

// server is shared by the tests of this package: it takes seconds to start.
var server *devserver.Server

func TestMain(m *testing.M) {
	flag.Parse()
	if *record {
		if err := checkRelease(); err != nil {
			fmt.Fprintln(os.Stderr, "record the histories:", err)
			os.Exit(2)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the embedded Temporal server:", err)
		os.Exit(1)
	}
	server = srv
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

func newStack(t *testing.T, options chatrabridge.Options) *stack {
	t.Helper()
	ctx := context.Background()
	db, _ := postgrestest.New(t)
	sealer, err := secrets.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewIntegrationStore(db, sealer)
	s := &stack{t: t, db: db, integrations: store}

	pf := sandbox.NewPlanfix(planfixToken)
	pf.SetRateInterval(0) // the limiter below spaces the requests; exact request logs need no 429s
	pfSrv := httptest.NewServer(s.planfixHandler(pf))
	t.Cleanup(pfSrv.Close)
	ch := sandbox.NewChatra(chatraPublic, chatraSecret)
	chSrv := httptest.NewServer(ch)
	t.Cleanup(chSrv.Close)
	if err := ch.PutClient(chatra.ClientCard{ID: clientID, Name: "Ivan", Notes: "VIP"}); err != nil {
		t.Fatal(err)
	}

	integ := &chatrabridge.Integration{
		ID: "shop" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36), Name: "Example shop",
		Chatra: chatrabridge.ChatraSettings{APIURL: chSrv.URL, PublicKey: chatraPublic, SecretKey: secrets.String(chatraSecret),
			HasSecretKey: true, AgentID: "AGENT-BRIDGE"},
		Planfix: chatrabridge.PlanfixSettings{AccountURL: pfSrv.URL, Token: secrets.String(planfixToken), HasToken: true,
			TaskTemplateID: sandbox.PlanfixTaskTemplateID, ContactTemplateID: sandbox.PlanfixContactTemplateID,
			CompletedStatusID: sandbox.PlanfixStatusCompleted, AssigneeUserIDs: []int64{6}, EmployeeUserIDs: []int64{5}},
		Options: options,
	}
	integ.Normalize()
	if err := integ.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateIntegration(ctx, integ); err != nil {
		t.Fatal(err)
	}

	// Encrypted as in production, under the test key the recorded histories replay with.
	opts := client.Options{HostPort: server.Address(), Namespace: server.Namespace(), Logger: slog.New(slog.DiscardHandler)}
	codec.Apply(&opts, codec.New(recordedKeys(t), true))
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	acts := activities.New(db, store, postgres.NewRateLimiter(db, 20*time.Millisecond), nil)
	queue := taskQueue + "-" + integ.ID
	w := worker.New(c, worker.TaskQueue(queue), acts, sdkworker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	s.temporal, s.planfix, s.chatra, s.integ, s.queue, s.payloads = c, pf, ch, integ, queue, opts.DataConverter
	return s
}

// planfixHandler serves the Planfix stand-in, and calls the afterTaskCreated hook once
// it has created a task, before the bridge has its answer.
func (s *stack) planfixHandler(pf *sandbox.Planfix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hook := s.onTaskCreated
		s.mu.Unlock()
		if hook == nil || r.Method != http.MethodPost || r.URL.Path != "/rest/task/" {
			pf.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		pf.ServeHTTP(rec, r)
		var created struct {
			ID int64 `json:"id"`
		}
		if rec.Code/100 == 2 && json.Unmarshal(rec.Body.Bytes(), &created) == nil && created.ID > 0 {
			hook(created.ID)
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// afterTaskCreated makes f run each time Planfix has created a task: after the task
// exists in Planfix, before the bridge knows its id (so before any conversation has it).
func (s *stack) afterTaskCreated(f func(taskID int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onTaskCreated = f
}

// signal sends a signal of the visitor V1 the way the API does: SignalWithStart.
func (s *stack) signal(chatID, name string, arg any) {
	s.t.Helper()
	s.signalFrom(clientID, chatID, name, arg)
}

// signalFrom sends a signal of the Chatra visitor the way the API does.
func (s *stack) signalFrom(visitor, chatID, name string, arg any) {
	s.t.Helper()
	id := workflows.ConversationWorkflowID(s.integ.ID, chatID)
	_, err := s.temporal.SignalWithStartWorkflow(context.Background(), id, name, arg, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.queue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Chat with Ivan on Example shop",
		// What the API sets at the start (the workflow does not upsert it again).
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAIntegration.ValueSet(s.integ.ID), workflows.SAChatID.ValueSet(chatID),
			workflows.SAStatus.ValueSet(string(workflows.StatusOpen)), workflows.SAClientID.ValueSet(visitor)),
	}, workflows.ConversationWorkflowName, workflows.ConversationInput{IntegrationID: s.integ.ID, ChatID: chatID, ClientID: visitor})
	if err != nil {
		s.t.Fatalf("signal %s: %v", name, err)
	}
}

// waitState polls the conversation's state until ok holds.
func (s *stack) waitState(chatID, what string, ok func(workflows.State) bool) workflows.State {
	s.t.Helper()
	id := workflows.ConversationWorkflowID(s.integ.ID, chatID)
	var st workflows.State
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		v, err := s.temporal.QueryWorkflow(context.Background(), id, "", workflows.QueryState)
		st = workflows.State{} // a field the answer leaves out (omitzero) is zero, not the last answer's
		if err == nil && v.Get(&st) == nil && ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.dumpRuns(id)
	s.t.Fatalf("%s: timed out; last state %+v", what, st)
	return st
}

// wait polls cond.
func (s *stack) wait(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: timed out", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// planfixCalls lists the Planfix requests as "METHOD /path", with the number after
// /task/, /contact/ and /comment/ replaced by a name when it is the one given.
func (s *stack) planfixCalls(task, contact, comment int64) []string {
	names := map[string]int64{"task": task, "contact": contact, "comment": comment}
	var out []string
	for _, r := range s.planfix.RequestLog() {
		parts := strings.Split(strings.TrimPrefix(r.Path, "/rest"), "/")
		for i := 1; i < len(parts); i++ {
			if id, ok := names[parts[i-1]]; ok && parts[i] == strconv.FormatInt(id, 10) {
				parts[i] = "{" + parts[i-1] + "}"
			}
		}
		out = append(out, r.Method+" "+strings.Join(parts, "/"))
	}
	return out
}

// A whole chat: first message to completed task (its fragments out of order), a reply,
// its echo, the transcript with a lost message, the late-reply window, the end. Every
// Planfix and Chatra call is asserted.
func TestWholeChat(t *testing.T) {
	s := newStack(t, chatrabridge.Options{SendAsEmployee: true, LateReplyWindow: chatrabridge.Duration(3 * time.Second)})
	chat := "CHAT1"
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	ivan := workflows.VisitorInfo{Name: "Ivan", Email: "ivan@example.com", City: "Riga", Country: "Latvia", OS: "macOS", Browser: "Safari", IP: "203.0.113.5",
		Pages: []string{"https://shop.example/cart"}}
	s.signal(chat, workflows.SignalVisitorInfo, workflows.VisitorInfoSignal{Key: "start-1", ClientID: clientID, Started: true, Visitor: ivan})
	// Once the task exists, the chat's two fragments arrive out of order, a few hundred
	// milliseconds apart (CHATRA.md): they still land in the chat's order, in one comment.
	s.waitState(chat, "task created", func(st workflows.State) bool { return st.TaskID != 0 })
	s.signal(chat, workflows.SignalMessage, workflows.MessageSignal{Key: "frag-2", ClientID: clientID, Messages: []workflows.Message{
		{ID: "M2", Type: "client", Text: "It's #1234", Time: t0.Add(10 * time.Second)},
	}})
	time.Sleep(300 * time.Millisecond)
	s.signal(chat, workflows.SignalMessage, workflows.MessageSignal{Key: "frag-1", ClientID: clientID, Messages: []workflows.Message{
		{ID: "M1", Type: "client", Text: "Hi, where is my order?", Time: t0},
	}})
	s.signal(chat, workflows.SignalMessage, workflows.MessageSignal{Key: "frag-1", ClientID: clientID, Messages: []workflows.Message{
		{ID: "M1", Type: "client", Text: "Hi, where is my order?", Time: t0},
	}}) // a repeated delivery
	st := s.waitState(chat, "messages added", func(st workflows.State) bool { return st.MessagesAdded == 2 })
	task, contact := st.TaskID, st.ContactID

	// An employee answers in Planfix; the scenario's request becomes a reply signal.
	commentID, err := s.planfix.AddComment(sandbox.PlanfixComment{TaskID: task, Owner: "user:5", Description: "<p>It ships <b>today</b>.</p>"})
	if err != nil {
		t.Fatal(err)
	}
	reply := workflows.ReplySignal{Key: "planfix-comment:" + strconv.FormatInt(commentID, 10), CommentID: commentID, TaskID: task}
	s.signal(chat, workflows.SignalReply, reply)
	s.signal(chat, workflows.SignalReply, reply) // Planfix retried
	s.wait("the reply in the chat", func() bool { return len(s.chatra.Messages()) == 1 })
	sent := s.chatra.Messages()[0]
	s.waitState(chat, "reply sent", func(st workflows.State) bool { return st.RepliesSent == 1 })

	// The transcript: M3's fragment was lost; the reply is in it with the bridge's tag.
	s.signal(chat, workflows.SignalChatClosed, workflows.ChatClosedSignal{Key: "close-1", ClientID: clientID, Transcript: []workflows.Message{
		{ID: "M1", Type: "client", Text: "Hi, where is my order?", Time: t0},
		{ID: "M2", Type: "client", Text: "It's #1234", Time: t0.Add(10 * time.Second)},
		{ID: sent.ID, Type: "agent", Text: sent.Text, AgentName: "Anna Petrova", ReceivedFrom: workflows.ReceivedFromTag, Time: t0.Add(time.Minute)},
		{ID: "M3", Type: "client", Text: "Great, thanks!", Time: t0.Add(2 * time.Minute)},
	}})
	id := workflows.ConversationWorkflowID(s.integ.ID, chat)
	run := s.temporal.GetWorkflow(context.Background(), id, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("the conversation ended with %v", err)
	}
	s.saveHistories("whole_chat", id)

	// Planfix: exactly these calls.
	got := s.planfixCalls(task, contact, commentID)
	want := []string{
		"POST /contact/list",                // the contact by email: none
		"POST /contact/",                    // created from the template
		"POST /task/",                       // the task
		"GET /task/{task}",                  // read back once per integration: is the contact its assigner?
		"POST /contact/{contact}/comments/", // the action on the contact
		"POST /task/{task}/comments/",       // M1 and M2, one comment
		"GET /comment/{comment}",            // the reply
		"GET /user/5",                       // send as employee
		"POST /task/{task}/comments/",       // M3 from the transcript
		"GET /task/{task}",                  // complete: still active?
		"POST /task/{task}",                 // completed
	}
	sortedGot, sortedWant := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(sortedGot, sortedWant) {
		t.Errorf("planfix calls =\n  %s\nwant (in any order of the concurrent ones)\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, before := range [][2]string{{"POST /contact/", "POST /task/"}, {"GET /comment/{comment}", "GET /user/5"}, {"GET /task/{task}", "POST /task/{task}"}} {
		if i, j := slices.Index(got, before[0]), slices.Index(got, before[1]); i < 0 || j < 0 || i > j {
			t.Errorf("%s came after %s: %q", before[0], before[1], got)
		}
	}
	if i := slices.Index(got, "POST /task/") + 1; got[i] != "GET /task/{task}" {
		t.Errorf("the task was not read back right after it was created: %q", got)
	}
	lastGet := -1
	for i, c := range got {
		if c == "GET /task/{task}" {
			lastGet = i
		}
	}
	if lastGet < len(got)-2 {
		t.Errorf("the task was completed before the last comment: %q", got)
	}

	// Planfix: what it now holds.
	contacts := s.planfix.Contacts()
	if len(contacts) != 1 || contacts[0].Email != "ivan@example.com" || contacts[0].TemplateID != sandbox.PlanfixContactTemplateID {
		t.Errorf("contacts = %+v", contacts)
	}
	tk, _ := s.planfix.Task(task)
	if tk.Name != "Chat with Ivan on Example shop" || tk.Assigner != "contact:"+strconv.FormatInt(contact, 10) ||
		!slices.Equal(tk.Assignees, []string{"user:6"}) || tk.StatusID != sandbox.PlanfixStatusCompleted {
		t.Errorf("task = %+v", tk)
	}
	for _, want := range []string{"Location: Riga, Latvia", "OS: macOS", "Browser: Safari", "https://shop.example/cart"} {
		if !strings.Contains(tk.Description, want) {
			t.Errorf("task description %q lacks %q", tk.Description, want)
		}
	}
	var texts []string
	for _, c := range s.planfix.Comments(task) {
		texts = append(texts, c.Owner+": "+c.Description)
	}
	wantTexts := []string{
		"contact:" + strconv.FormatInt(contact, 10) + ": [10:00 UTC] Hi, where is my order?<br>[10:00 UTC] It&#39;s #1234",
		"user:5: <p>It ships <b>today</b>.</p>",
		"contact:" + strconv.FormatInt(contact, 10) + ": Great, thanks!",
	}
	if !slices.Equal(texts, wantTexts) {
		t.Errorf("task comments =\n  %s\nwant\n  %s", strings.Join(texts, "\n  "), strings.Join(wantTexts, "\n  "))
	}
	actions := s.planfix.ContactComments(contact)
	if len(actions) != 1 || !strings.Contains(actions[0].Description, "Browser: Safari") || !strings.Contains(actions[0].Description, "IP: 203.0.113.5") {
		t.Errorf("contact actions = %+v", actions)
	}

	// Chatra: the notes (GET, PUT) and the one reply (POST), nothing else.
	if n := s.chatra.RequestCount(); n != 3 {
		t.Errorf("chatra requests = %d, want 3 (read the card, write its notes, send the reply)", n)
	}
	if sent.Text != "It ships today." || sent.ReceivedFrom != workflows.ReceivedFromTag || sent.AgentName != "Anna Petrova" || sent.ClientID != clientID {
		t.Errorf("chatra message = %+v", sent)
	}
	card, _ := s.chatra.Client(clientID)
	if want := "VIP\nPlanfix task #" + strconv.FormatInt(task, 10) + ": " + s.integ.Planfix.AccountURL + "/task/" + strconv.FormatInt(task, 10); card.Notes != want {
		t.Errorf("visitor notes = %q, want %q", card.Notes, want)
	}

	// The store: the conversation ended, findable by its task.
	c, err := s.db.FindConversationByTask(context.Background(), s.integ.ID, task)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != postgres.StatusEnded || c.WorkflowID != id || c.CustomerEmail != "ivan@example.com" || *c.PlanfixContactID != contact {
		t.Errorf("conversation row = %+v", c)
	}

	// The Web UI's view: search attributes.
	desc, err := s.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	for k, p := range desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields() {
		var v any
		_ = json.Unmarshal(p.GetData(), &v)
		attrs[k] = fmt.Sprint(v)
	}
	for k, want := range map[string]string{"ChatraIntegration": s.integ.ID, "ChatraChatId": chat, "ChatraClientId": clientID,
		"CustomerEmail": "ivan@example.com", "CustomerName": "Ivan", "PlanfixTaskId": strconv.FormatInt(task, 10), "ConversationStatus": "ended"} {
		if attrs[k] != want {
			t.Errorf("search attribute %s = %q, want %q", k, attrs[k], want)
		}
	}
}

// A long conversation continues as new (here after a few events) and keeps its
// de-duplication: a message delivered again after the switch is not added twice.
func TestContinueAsNew(t *testing.T) {
	s := newStack(t, chatrabridge.Options{LateReplyWindow: chatrabridge.Duration(2 * time.Second)})
	chat := "CHAT-CAN"
	id := workflows.ConversationWorkflowID(s.integ.ID, chat)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	_, err := s.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: s.queue},
		workflows.ConversationWorkflowName, workflows.ConversationInput{IntegrationID: s.integ.ID, ChatID: chat, ClientID: clientID, ContinueAsNewAfterEvents: 40})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	firstRun := first.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	for i := range 6 {
		s.signal(chat, workflows.SignalMessage, workflows.MessageSignal{Key: "frag-" + strconv.Itoa(i), ClientID: clientID,
			Messages: []workflows.Message{{ID: "M" + strconv.Itoa(i), Type: "client", Text: "message " + strconv.Itoa(i), Time: t0.Add(time.Duration(i) * time.Second)}}})
		s.waitState(chat, "message "+strconv.Itoa(i), func(st workflows.State) bool { return st.MessagesAdded == i+1 })
	}
	s.wait("continue-as-new", func() bool {
		d, err := s.temporal.DescribeWorkflowExecution(context.Background(), id, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != firstRun
	})
	// Every message again, as a transcript: none is added twice.
	var transcript []workflows.Message
	for i := range 6 {
		transcript = append(transcript, workflows.Message{ID: "M" + strconv.Itoa(i), Type: "client", Text: "message " + strconv.Itoa(i), Time: t0.Add(time.Duration(i) * time.Second)})
	}
	s.signal(chat, workflows.SignalChatClosed, workflows.ChatClosedSignal{Key: "close-1", ClientID: clientID, Transcript: transcript})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.temporal.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		s.dumpRuns(id)
		t.Fatalf("the conversation ended with %v", err)
	}
	s.saveHistories("continue_as_new", id)
	// The first run ended quietly: no activity scheduled with the continue-as-new (its
	// result would have been lost to the next run).
	var types []enums.EventType
	it := s.temporal.GetWorkflowHistory(context.Background(), id, firstRun, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.GetEventType())
	}
	completed := -1
	for i, et := range types {
		if et == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			completed = i
		}
	}
	if completed < 0 || types[len(types)-1] != enums.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW ||
		slices.Contains(types[completed:], enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
		t.Errorf("the first run's last workflow task: %v", types[max(completed, 0):])
	}

	st, err := s.db.GetConversation(context.Background(), s.integ.ID, chat)
	if err != nil {
		t.Fatal(err)
	}
	comments := s.planfix.Comments(*st.PlanfixTaskID)
	if len(comments) != 6 {
		t.Errorf("task has %d comments, want 6 (each message once)", len(comments))
	}
	if n := len(s.planfix.Tasks()); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

// Cancelling from the CLI: a note in the task, the store marked cancelled, the task left
// open.
func TestCancel(t *testing.T) {
	s := newStack(t, chatrabridge.Options{})
	chat := "CHAT-CANCEL"
	id := workflows.ConversationWorkflowID(s.integ.ID, chat)
	s.signal(chat, workflows.SignalMessage, workflows.MessageSignal{Key: "frag-1", ClientID: clientID,
		Messages: []workflows.Message{{ID: "M1", Type: "client", Text: "hello", Time: time.Now()}}})
	st := s.waitState(chat, "message added", func(st workflows.State) bool { return st.MessagesAdded == 1 })
	if err := s.temporal.CancelWorkflow(context.Background(), id, ""); err != nil {
		t.Fatal(err)
	}
	run := s.temporal.GetWorkflow(context.Background(), id, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run.Get(ctx, nil)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("the conversation ended with %v, want cancelled", err)
	}
	s.saveHistories("cancelled", id)
	if since, ok := s.waitingSince(id); ok {
		t.Errorf("CustomerWaitingSince = %s after the cancel, want it unset (the customer waits no more in this conversation)", since)
	}
	comments := s.planfix.Comments(st.TaskID)
	if len(comments) != 2 || !strings.Contains(comments[1].Description, "stopped by an administrator") {
		t.Errorf("task comments = %+v", comments)
	}
	tk, _ := s.planfix.Task(st.TaskID)
	if tk.StatusID == sandbox.PlanfixStatusCompleted {
		t.Error("the task was completed")
	}
	c, err := s.db.GetConversation(context.Background(), s.integ.ID, chat)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != postgres.StatusCancelled {
		t.Errorf("store status = %q, want cancelled", c.Status)
	}
}

// dumpRuns logs the events of every run of a workflow (signals with their payloads,
// activity types, failed workflow tasks), to see what happened when a test times out.
func (s *stack) dumpRuns(id string) {
	d, err := s.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		return
	}
	run := d.GetWorkflowExecutionInfo().GetFirstRunId()
	for run != "" {
		it := s.temporal.GetWorkflowHistory(context.Background(), id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		next := ""
		var lines []string
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				break
			}
			line := e.GetEventType().String()
			if a := e.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
				line += " " + s.payloads.ToString(a.GetInput().GetPayloads()[0])
			}
			if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
				line += " " + a.GetActivityType().GetName()
			}
			if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil && a.GetInput() != nil {
				in := s.payloads.ToString(a.GetInput().GetPayloads()[0])
				line += " " + in
			}
			if a := e.GetWorkflowTaskFailedEventAttributes(); a != nil {
				line += " " + a.GetCause().String()
			}
			if a := e.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
			lines = append(lines, line)
		}
		s.t.Logf("run %s:\n%s", run, strings.Join(lines, "\n"))
		run = next
	}
}

// recordedKeys are the payload keys of testdata/PAYLOAD_KEY, a test key: the histories
// recorded from these tests are encrypted under it, and the replay test reads them with it.
func recordedKeys(t *testing.T) *codec.Keys {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "PAYLOAD_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := codec.ParseKeys(strings.TrimSpace(string(b)), "")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
