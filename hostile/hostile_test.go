// Package hostile_test plays an attacker against the whole bridge: the real API and
// worker (the fx graph of `serve`) on an embedded Temporal server, PostgreSQL and the
// sandbox, every request through a real HTTP socket, every conversation the real
// workflow with the real activities. Each test is one class of harm a visitor, a leaked
// webhook URL or a slow client could do, and checks that it does not happen, and that
// the conversations around it go on.
package hostile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// temporalServer is shared by the package's tests (it takes seconds to start); each
// test has its own task queue, schema, sandbox and chat ids.
var temporalServer *devserver.Server

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the embedded Temporal server:", err)
		os.Exit(1)
	}
	temporalServer = srv
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// waitMax bounds every wait: far beyond what a loaded machine needs.
const waitMax = 3 * time.Minute

type stack struct {
	t           *testing.T
	sb          *sandbox.Server
	db          *postgres.DB
	temporal    client.Client
	chatraHook  string
	planfixHook string
	base        string
}

// newStack runs the API and the worker with the sandbox's demo integration, its options
// changed by o.
func newStack(t *testing.T, o chatrabridge.OptionsUpdate) *stack {
	t.Helper()
	ctx := context.Background()
	_, dbURL := postgrestest.New(t)
	sb := sandbox.New(sandbox.Options{PlanfixInterval: -1})
	if err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.HTTPAddr = secrets.String(dbURL), "127.0.0.1:0"
	cfg.TaskQueue = "hostile-" + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	cfg.AdminToken, cfg.SecretsKey = "hostile-admin-token", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	s := &stack{t: t, sb: sb}
	var (
		srv   *api.Server
		store *postgres.IntegrationStore
	)
	a := fxtest.New(t,
		app.Base(cfg, slog.New(slog.DiscardHandler), true),
		app.TemporalOptions(client.Options{HostPort: temporalServer.Address(), Namespace: temporalServer.Namespace(), Logger: slog.New(slog.DiscardHandler)}),
		app.Roles(app.Role{API: true, Worker: true}),
		// The sandbox's limit is off; the bridge need not keep Planfix's pace here.
		fx.Decorate(func(db *postgres.DB) planfix.Limiter { return postgres.NewRateLimiter(db, 5*time.Millisecond) }),
		fx.Populate(&srv, &store, &s.db, &s.temporal),
	)
	a.RequireStart()
	t.Cleanup(a.RequireStop)
	tokens, _, err := app.EnsureDemoIntegration(ctx, store, sb.ChatraURL(), sb.PlanfixURL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateIntegration(ctx, app.DemoIntegrationID, chatrabridge.IntegrationUpdate{Options: &o}); err != nil {
		t.Fatal(err)
	}
	s.base = "http://" + srv.Addr().String()
	s.chatraHook, s.planfixHook = app.WebhookURLs(s.base, app.DemoIntegrationID, tokens)
	return s
}

type answer struct {
	status int
	header http.Header
	body   string
}

// httpClient makes each request on a connection of its own: the server closes idle
// connections (its idle timeout), and a POST on one it just closed is not retried.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func (s *stack) post(url string, body []byte) answer {
	s.t.Helper()
	resp, err := httpClient.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// visitor puts a visitor's card into the sandbox's Chatra (which refuses messages to a
// visitor it does not know).
func (s *stack) visitor(clientID, chatID string) {
	s.t.Helper()
	if err := s.sb.Chatra().PutClient(chatra.ClientCard{ID: clientID, ChatID: chatID, Name: "Visitor " + clientID}); err != nil {
		s.t.Fatal(err)
	}
}

// chatra delivers a Chatra webhook and requires 200.
func (s *stack) chatra(body []byte) {
	s.t.Helper()
	if a := s.post(s.chatraHook, body); a.status != http.StatusOK {
		s.t.Fatalf("chatra webhook answered %d %s", a.status, a.body)
	}
}

type msg struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Text      string `json:"text"`
	CreatedAt int64  `json:"createdAt,omitempty"`
	AgentName string `json:"agentName,omitempty"`
}

// event is a Chatra webhook body; card adds to the client object.
func event(name, chatID, clientID string, msgs []msg, card map[string]any) []byte {
	if msgs == nil {
		msgs = []msg{}
	}
	client := map[string]any{"id": clientID, "chatId": chatID}
	for k, v := range card {
		client[k] = v
	}
	// As Chatra writes it: '<' and '>' as they are, not escaped.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]any{"eventName": name, "messages": msgs, "client": client})
	return b.Bytes()
}

func (s *stack) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(waitMax)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: timed out", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// state is the conversation's "state" query (zero while it cannot answer).
func (s *stack) state(chatID string) workflows.State {
	var st workflows.State
	v, err := s.temporal.QueryWorkflow(context.Background(), workflows.ConversationWorkflowID(app.DemoIntegrationID, chatID), "", workflows.QueryState)
	if err == nil {
		_ = v.Get(&st)
	}
	return st
}

func (s *stack) taskOf(chatID string) int64 {
	s.t.Helper()
	var task int64
	s.waitFor("the task of chat "+chatID, func() bool {
		task = s.state(chatID).TaskID
		return task != 0
	})
	return task
}

// taskText is a task's name, description and comments.
func (s *stack) taskText(task int64) string {
	t, _ := s.sb.Planfix().Task(task)
	var b strings.Builder
	b.WriteString(t.Name + "\n" + t.Description)
	for _, c := range s.sb.Planfix().Comments(task) {
		b.WriteString("\n" + c.Description)
	}
	return b.String()
}

// reply writes an employee's comment in the task and calls the Planfix webhook as the
// scenario would; it returns the webhook's answer.
func (s *stack) reply(task int64, text string) string {
	s.t.Helper()
	id, err := s.sb.Planfix().AddComment(sandbox.PlanfixComment{TaskID: task, Owner: "user:5", Description: text})
	if err != nil {
		s.t.Fatal(err)
	}
	return s.post(s.planfixHook, []byte(fmt.Sprintf(`{"taskId":%d,"commentId":%d}`, task, id))).body
}

// received lists the texts the bridge sent to a Chatra visitor.
func (s *stack) received(clientID string) []string {
	var out []string
	for _, m := range s.sb.Chatra().Messages() {
		if m.ClientID == clientID {
			out = append(out, m.Text)
		}
	}
	return out
}

func (s *stack) receivedText(clientID, text string) bool {
	for _, r := range s.received(clientID) {
		if strings.Contains(r, text) {
			return true
		}
	}
	return false
}

// workflowTaskFailures lists the failed workflow tasks of every run of a conversation, each
// as its cause and message: a conversation that cannot go on fails its workflow task again
// and again. A task refused as UNHANDLED_COMMAND is left out: the server refuses a
// completion when a signal arrived while the task ran, and the worker runs the task again
// with the signal at once; a burst of webhooks makes that race likely, and it is no fault.
func (s *stack) workflowTaskFailures(chatID string) []string {
	s.t.Helper()
	id := workflows.ConversationWorkflowID(app.DemoIntegrationID, chatID)
	var failures []string
	run, unhandled := "", 0
	for runs := 0; runs < 100; runs++ {
		it := s.temporal.GetWorkflowHistory(context.Background(), id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		prev := ""
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				s.t.Fatal(err)
			}
			switch a := e.GetWorkflowTaskFailedEventAttributes(); {
			case a == nil:
			case a.GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
				unhandled++
			default:
				failures = append(failures, fmt.Sprintf("%s: %s", a.GetCause(), a.GetFailure().GetMessage()))
			}
			if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				prev = a.GetContinuedExecutionRunId()
			}
		}
		if prev == "" {
			break
		}
		run = prev
	}
	s.t.Logf("%s: %d workflow tasks refused as UNHANDLED_COMMAND and run again", chatID, unhandled)
	return failures
}

// A visitor types another customer's email into their chat. The chat joins that
// customer's task (one thread, as the seed wants for a customer's two devices), but an
// email typed into a chat is not a proof: the task gets a note saying so, and the
// employee's replies, even after the impostor wrote last, reach only the customer's
// own chat. The impostor's chat receives nothing.
func TestHijackByEmailClaim(t *testing.T) {
	s := newStack(t, chatrabridge.OptionsUpdate{})
	s.visitor("HJ-VV", "HJ-V")
	s.visitor("HJ-VI", "HJ-I")
	s.chatra(event("chatStarted", "HJ-V", "HJ-VV", []msg{{ID: "V1", Type: "client", Text: "Where is my order 1042?"}},
		map[string]any{"name": "Ivan Victim", "email": "ivan.victim@example.com"}))
	task := s.taskOf("HJ-V")
	if a := s.reply(task, "Your order 1042 ships to Riga tomorrow."); !strings.Contains(a, `"ok":true`) {
		t.Fatalf("reply webhook: %s", a)
	}
	s.waitFor("the first reply in the customer's chat", func() bool { return s.receivedText("HJ-VV", "ships to Riga") })

	s.chatra(event("chatStarted", "HJ-I", "HJ-VI", []msg{{ID: "I1", Type: "client", Text: "hi"}}, map[string]any{"name": "Guest 77"}))
	own := s.taskOf("HJ-I")
	if own == task {
		t.Fatal("the impostor's chat got the customer's task at once")
	}
	s.chatra(event("chatFragment", "HJ-I", "HJ-VI", []msg{{ID: "I2", Type: "client", Text: "It's Ivan, what is my delivery address?"}},
		map[string]any{"name": "Ivan Victim", "email": "ivan.victim@example.com"}))
	s.waitFor("the impostor's chat joining the customer's task", func() bool { return s.state("HJ-I").TaskID == task })
	s.chatra(event("chatFragment", "HJ-I", "HJ-VI", []msg{{ID: "I3", Type: "client", Text: "Hello? Please send the address here."}}, nil))
	s.waitFor("the impostor's last message in the task", func() bool { return strings.Contains(s.taskText(task), "send the address here") })

	if a := s.reply(task, "Your address on file: 5 Main St, Riga."); !strings.Contains(a, `"ok":true`) {
		t.Fatalf("reply webhook: %s", a)
	}
	s.waitFor("the second reply in the customer's chat", func() bool { return s.receivedText("HJ-VV", "5 Main St") })
	if got := s.received("HJ-VI"); len(got) != 0 {
		t.Fatalf("the impostor's chat received %q", got)
	}
	if text := s.taskText(task); !strings.Contains(text, "not a proof") {
		t.Errorf("the customer's task has no note about the claim:\n%s", text)
	}
}

// NUL and other control characters in every field a visitor controls: the chat's
// conversation runs through (task, comments, completion), nothing it stores or sends
// carries them, and nothing is retried forever.
func TestNulBytesInEveryField(t *testing.T) {
	s := newStack(t, chatrabridge.OptionsUpdate{})
	s.visitor("NUL-V", "NUL-1")
	card := map[string]any{
		"name": "Iv\x00an\x01 Pe\x1btrov", "email": "iv\x00an@example.com", "phone": "+1 555\x00 0100",
		"info": map[string]any{"city": "Ri\x00ga", "browser": "Fire\x00fox", "os": "Lin\x00ux", "ip": "203.0.113.5\x00",
			"pages": []any{"https://shop.example/\x00cart"}, "lang\x00uage": "e\x00n"},
	}
	s.chatra(event("chatStarted", "NUL-1", "NUL-V", []msg{{ID: "N\x001", Type: "client", Text: "Hel\x00lo\x07 there\x00"}}, card))
	s.chatra(event("chatFragment", "NUL-1", "NUL-V", []msg{
		{ID: "N2\x00", Type: "agent", Text: "Agent \x00here", AgentName: "Ju\x00lia"},
		{ID: "N3", Type: "client", Text: "line one\r\nline\x00 two"},
	}, card))
	task := s.taskOf("NUL-1")
	s.waitFor("the messages in the task", func() bool { return strings.Contains(s.taskText(task), "line two") })
	s.chatra(event("chatTranscript", "NUL-1", "NUL-V", []msg{{ID: "N\x001", Type: "client", Text: "Hel\x00lo\x07 there\x00"}, {ID: "N4\x00", Type: "client", Text: "bye\x00"}}, card))
	s.waitFor("the task completed", func() bool {
		t, _ := s.sb.Planfix().Task(task)
		return t.StatusID == sandbox.PlanfixStatusCompleted
	})
	text := s.taskText(task)
	for _, want := range []string{"Hello there", "Agent here", "Julia", "line two", "bye", "Riga", "Firefox", "Ivan Petrov"} {
		if !strings.Contains(text, want) {
			t.Errorf("the task lacks %q:\n%s", want, text)
		}
	}
	if strings.ContainsAny(text, "\x00\x01\x07\x1b") {
		t.Errorf("the task carries control characters: %q", text)
	}
	st := s.state("NUL-1")
	if st.LastError != "" || st.MessagesAdded != 4 || st.CustomerName != "Ivan Petrov" || st.CustomerEmail != "ivan@example.com" {
		t.Errorf("state %+v", st)
	}
	var stored string
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT customer_name FROM conversations WHERE chat_id = 'NUL-1'`).Scan(&stored); err != nil || stored != "Ivan Petrov" {
		t.Errorf("stored customer %q (%v)", stored, err)
	}
	if f := s.workflowTaskFailures("NUL-1"); len(f) != 0 {
		t.Errorf("%d workflow tasks failed: %s", len(f), strings.Join(f, "; "))
	}
	// An id the bridge routes by cannot be cleaned without routing elsewhere: 400.
	if a := s.post(s.chatraHook, event("chatFragment", "NUL-1", "NUL-V\x00", []msg{{ID: "X", Type: "client", Text: "x"}}, nil)); a.status != http.StatusBadRequest || !strings.Contains(a.body, `"field":"client.id"`) {
		t.Errorf("a client id with a NUL: %d %s", a.status, a.body)
	}
}

// A message without text that carries a file, and one with a caption and an image (the
// shape of either in Chatra's webhooks is not documented): what they carry reaches the
// task, names escaped, and a key that is no content (a read mark) adds nothing.
func TestAttachmentsReachTheTask(t *testing.T) {
	s := newStack(t, chatrabridge.OptionsUpdate{})
	s.visitor("FILE-V", "FILE-1")
	s.chatra(event("chatStarted", "FILE-1", "FILE-V", []msg{{ID: "F0", Type: "client", Text: "hello"}}, nil))
	s.chatra([]byte(`{"eventName":"chatFragment","client":{"id":"FILE-V","chatId":"FILE-1"},"messages":[
		{"id":"F1","type":"client","text":"","file":{"name":"<script>x</script>.pdf","url":"https://files.example/abc/invoice.pdf","size":1234}},
		{"id":"F2","type":"client","text":"see the photo","image":{"url":"https://files.example/1.png"}},
		{"id":"F3","type":"client","text":"plain words","seen":true}]}`))
	task := s.taskOf("FILE-1")
	s.waitFor("the messages in the task", func() bool { return strings.Contains(s.taskText(task), "plain words") })
	text := s.taskText(task)
	for _, want := range []string{"file.url: https://files.example/abc/invoice.pdf", "file.size: 1234", "see the photo", "image.url: https://files.example/1.png"} {
		if !strings.Contains(text, want) {
			t.Errorf("the task lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "<script>") || !strings.Contains(text, "x&lt;/script&gt;.pdf") {
		t.Errorf("the file's name is not in the task as text:\n%s", text)
	}
	if strings.Contains(text, "seen") || strings.Contains(text, "without text") {
		t.Errorf("the task has what no visitor sent:\n%s", text)
	}
}

// Three fragments of about 1 MB each to one chat (and a single 900 kB message): every
// message reaches the task, a long one cut with a note, no payload goes over Temporal's
// limit (no workflow task fails), and the chat goes on: a later message, a reply, the
// close.
func TestBurstOf3MBToOneChat(t *testing.T) {
	s := newStack(t, chatrabridge.OptionsUpdate{})
	s.visitor("BURST-V", "BURST-1")
	s.chatra(event("chatStarted", "BURST-1", "BURST-V", []msg{{ID: "S1", Type: "client", Text: "starting"}}, map[string]any{"name": "Burst"}))
	task := s.taskOf("BURST-1")
	filler := strings.Repeat("<abcdefghi>", 440) // 4840 characters, each '<' and '>' six bytes once escaped
	var markers []string
	for f := range 3 {
		var ms []msg
		for i := range 185 {
			m := fmt.Sprintf("B%d-%03d:", f, i)
			markers = append(markers, m)
			ms = append(ms, msg{ID: m, Type: "client", Text: m + filler, CreatedAt: time.Now().UnixMilli() + int64(f*1000+i)})
		}
		body := event("chatFragment", "BURST-1", "BURST-V", ms, nil)
		if len(body) < 900_000 || len(body) > api.MaxBodyBytes {
			t.Fatalf("fragment %d is %d bytes", f, len(body))
		}
		s.chatra(body)
	}
	s.chatra(event("chatFragment", "BURST-1", "BURST-V", []msg{{ID: "HUGE", Type: "client", Text: "HUGE:" + strings.Repeat("z", 900_000)}}, nil))
	s.chatra(event("chatFragment", "BURST-1", "BURST-V", []msg{{ID: "AFTER", Type: "client", Text: "after the burst"}}, nil))
	s.waitFor("every message in the task", func() bool {
		text := s.taskText(task)
		return strings.Contains(text, "after the burst") && strings.Contains(text, markers[len(markers)-1])
	})
	if a := s.reply(task, "Got all of it."); !strings.Contains(a, `"ok":true`) {
		t.Fatalf("reply webhook: %s", a)
	}
	s.waitFor("the reply in the chat", func() bool { return s.receivedText("BURST-V", "Got all of it.") })
	s.chatra(event("chatTranscript", "BURST-1", "BURST-V", []msg{{ID: "S1", Type: "client", Text: "starting"}, {ID: "AFTER", Type: "client", Text: "after the burst"}}, nil))
	s.waitFor("the task completed", func() bool {
		t, _ := s.sb.Planfix().Task(task)
		return t.StatusID == sandbox.PlanfixStatusCompleted
	})
	text := s.taskText(task)
	for _, m := range markers {
		if n := strings.Count(text, m); n != 1 {
			t.Fatalf("%s is %d times in the task", m, n)
		}
	}
	if !strings.Contains(text, "HUGE:zzz") || !strings.Contains(text, "cut by chatrabridge") {
		t.Error("the 900 kB message is not in the task, cut with a note")
	}
	if f := s.workflowTaskFailures("BURST-1"); len(f) != 0 {
		t.Errorf("%d workflow tasks failed: %s", len(f), strings.Join(f, "; "))
	}
	if st := s.state("BURST-1"); st.MessagesFailed != 0 {
		t.Errorf("state %+v", st)
	}
}

// A chat id Temporal cannot name a workflow after (non-ASCII) is refused for good, 400
// naming the field, instead of 503 (which Chatra would retry forever); nothing starts.
func TestNonASCIIChatID(t *testing.T) {
	s := newStack(t, chatrabridge.OptionsUpdate{})
	for _, chatID := range []string{"чат-42", "café", "chat\u00a0x", "a\x7fb"} {
		a := s.post(s.chatraHook, event("chatStarted", chatID, "V", []msg{{ID: "M", Type: "client", Text: "hi"}}, nil))
		var e api.ErrorBody
		if a.status != http.StatusBadRequest || json.Unmarshal([]byte(a.body), &e) != nil || e.Error.Field != "client.chatId" {
			t.Errorf("chat id %q: %d %s, want 400 naming client.chatId", chatID, a.status, a.body)
		}
		if _, err := s.temporal.DescribeWorkflowExecution(context.Background(), workflows.ConversationWorkflowID(app.DemoIntegrationID, chatID), ""); err == nil {
			t.Errorf("chat id %q started a workflow", chatID)
		}
	}
}

// A leaked Chatra webhook URL floods the bridge with made-up chats: beyond the
// integration's new conversations a minute they are refused (429, Retry-After) and
// cost Planfix nothing; a real chat that comes after the flood, once Retry-After has
// passed as Chatra would wait it, gets its task behind the few admitted, not behind
// the flood.
func TestFloodBeyondTheLimit(t *testing.T) {
	limit := 3
	s := newStack(t, chatrabridge.OptionsUpdate{NewConversationsPerMinute: &limit})
	const flood = 30
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
		refused  []answer
	)
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("FLOOD-%02d", i)
			a := s.post(s.chatraHook, event("chatStarted", id, "V-"+id, []msg{{ID: "F", Type: "client", Text: "spam " + id}}, map[string]any{"name": "Spam " + id}))
			mu.Lock()
			defer mu.Unlock()
			switch a.status {
			case http.StatusOK:
				accepted++
			default:
				refused = append(refused, a)
			}
		}()
	}
	wg.Wait()
	if accepted != limit || len(refused) != flood-limit {
		t.Fatalf("flood: %d accepted, %d refused; want %d and %d", accepted, len(refused), limit, flood-limit)
	}
	for _, a := range refused {
		if secs, err := strconv.Atoi(a.header.Get("Retry-After")); a.status != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 60 {
			t.Fatalf("refusal %d %s (Retry-After %q)", a.status, a.body, a.header.Get("Retry-After"))
		}
	}

	// The real customer, delivered as Chatra would: again after Retry-After.
	real := event("chatStarted", "REAL-1", "V-REAL", []msg{{ID: "R1", Type: "client", Text: "I need help with my order"}}, map[string]any{"name": "Real Customer"})
	deadline := time.Now().Add(waitMax)
	for {
		a := s.post(s.chatraHook, real)
		if a.status == http.StatusOK {
			break
		}
		secs, err := strconv.Atoi(a.header.Get("Retry-After"))
		if a.status != http.StatusTooManyRequests || err != nil || time.Now().After(deadline) {
			t.Fatalf("the real chat: %d %s", a.status, a.body)
		}
		time.Sleep(time.Duration(secs) * time.Second)
	}
	task := s.taskOf("REAL-1")
	if !strings.Contains(s.taskText(task), "I need help with my order") {
		s.waitFor("the real chat's message", func() bool { return strings.Contains(s.taskText(task), "I need help with my order") })
	}
	var tasks []string
	for _, tk := range s.sb.Planfix().Tasks() {
		tasks = append(tasks, tk.Name)
	}
	if len(tasks) != limit+1 {
		t.Fatalf("Planfix has %d tasks, want the %d admitted and the real one: %q", len(tasks), limit, tasks)
	}
	t.Logf("flood of %d: %d admitted, %d refused; Planfix requests in all: %d", flood, accepted, len(refused), len(s.sb.Planfix().RequestLog()))
}

// A leaked Planfix URL names a comment of another task (the customer's) with the task
// of the attacker's own chat: the comment is read, found to belong elsewhere, and not
// sent; the attacker's chat receives nothing.
func TestForeignCommentIsNotSent(t *testing.T) {
	s := newStack(t, chatrabridge.OptionsUpdate{})
	s.visitor("FC-VV", "FC-V")
	s.visitor("FC-VA", "FC-A")
	s.chatra(event("chatStarted", "FC-V", "FC-VV", []msg{{ID: "V1", Type: "client", Text: "my order?"}}, map[string]any{"name": "Customer"}))
	s.chatra(event("chatStarted", "FC-A", "FC-VA", []msg{{ID: "A1", Type: "client", Text: "hi"}}, map[string]any{"name": "Attacker"}))
	victimTask, attackerTask := s.taskOf("FC-V"), s.taskOf("FC-A")
	secret, err := s.sb.Planfix().AddComment(sandbox.PlanfixComment{TaskID: victimTask, Owner: "user:5", Description: "Card ending 4242, address 5 Main St"})
	if err != nil {
		t.Fatal(err)
	}
	a := s.post(s.planfixHook, []byte(fmt.Sprintf(`{"taskId":%d,"commentId":%d}`, attackerTask, secret)))
	if a.status != http.StatusOK {
		t.Fatalf("webhook: %d %s", a.status, a.body)
	}
	s.waitFor("the forged reply judged", func() bool { return s.state("FC-A").RepliesSkipped+s.state("FC-A").RepliesFailed > 0 })
	if got := s.received("FC-VA"); len(got) != 0 {
		t.Fatalf("the attacker's chat received %q", got)
	}
}
