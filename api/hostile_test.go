package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// What a hostile sender (a visitor, a leaked webhook URL, a slow client) meets at the
// HTTP edge.

// closedDB is a store whose pool is closed: every call fails as unavailable.
func closedDB(t *testing.T) *postgres.DB {
	t.Helper()
	db, _ := postgrestest.New(t)
	db.Close()
	return db
}

// newIntegrationWith is newIntegration with options.
func newIntegrationWith(t *testing.T, db *postgres.DB, o chatrabridge.OptionsUpdate) integration {
	t.Helper()
	in := newIntegration(t, db)
	if _, err := postgres.NewIntegrationStore(db, testSealer(t)).UpdateIntegration(context.Background(), in.ID, chatrabridge.IntegrationUpdate{Options: &o}); err != nil {
		t.Fatal(err)
	}
	return in
}

// storable fails the test for a string a workflow's payload must not carry: invalid
// UTF-8, or a control character (newlines and tabs allowed where multiline is).
func storable(t *testing.T, what, s string, multiline bool) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s is not valid UTF-8: %q", what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) || (r >= 0x202a && r <= 0x202e) {
			t.Errorf("%s holds the control character %U: %q", what, r, s)
			return
		}
	}
}

// Control characters (NUL among them), bidirectional overrides and invalid UTF-8 in
// every field a visitor controls are stripped before anything reaches the workflow; a
// long text is cut with a note; a long message id is replaced by its digest; the card's
// details are bounded.
func TestChatraWebhookSanitisesEveryField(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	longID := strings.Repeat("i", 300)
	var extra strings.Builder
	for i := range 50 {
		fmt.Fprintf(&extra, `,"k%02d\u0000":"v\u0001%02d"`, i, i)
	}
	body := `{"eventName":"chatFragment","messages":[
		{"id":"M\u00001","type":"client\u0000","text":"Hi\u0000 there\u0007\r\nline2 \u202eevil","agentName":"A\u0000g","agentId":"x\u0000"},
		{"id":"LONG","type":"client","text":"` + strings.Repeat("x", 6000) + `"},
		{"id":"` + longID + `","type":"client","text":"long id"}],
		"client":{"id":"V1","chatId":"SAN1","name":"Iv\u0000an\u0001 \u202ePetrov","email":"iv\u0000an@example.com","phone":"+1\u0000 555",
		"info":{"city":"Ri\u0000ga","browser":"Fire\u0000fox","pages":["https://a\u0000/1"` + strings.Repeat(`,"https://x/\u0000p"`, 3) + `]` + extra.String() + `}}}`
	workflowID, _ := okAnswer(t, h.chatra(t, in, body))
	rec := waitRecorded(t, workflowID, 1)
	msgs := signalsNamed[workflows.MessageSignal](t, rec, workflows.SignalMessage)
	if len(msgs) != 1 || len(msgs[0].Messages) != 3 || msgs[0].Visitor == nil {
		t.Fatalf("message signals = %+v", msgs)
	}
	m := msgs[0].Messages
	if m[0].ID != "M1" || m[0].Type != "client" || m[0].Text != "Hi there\nline2 evil" || m[0].AgentName != "Ag" || m[0].AgentID != "x" {
		t.Errorf("first message = %+v", m[0])
	}
	if n := utf8.RuneCountInString(m[1].Text); !strings.HasPrefix(m[1].Text, strings.Repeat("x", api.MaxMessageRunes)+"\n[") ||
		!strings.Contains(m[1].Text, "cut by chatrabridge") || !strings.Contains(m[1].Text, "6000") || n > api.MaxMessageRunes+200 {
		t.Errorf("long text: %d characters ending %q", n, m[1].Text[len(m[1].Text)-150:])
	}
	if len(m[2].ID) > 64 || m[2].ID == longID || m[2].Text != "long id" {
		t.Errorf("long id became %q", m[2].ID)
	}
	v := *msgs[0].Visitor
	if v.Name != "Ivan Petrov" || v.Email != "ivan@example.com" || v.Phone != "+1 555" || v.City != "Riga" || v.Browser != "Firefox" {
		t.Errorf("card = %+v", v)
	}
	if len(v.Extra) > 30 || len(v.Pages) != 2 {
		t.Errorf("card keeps %d extras and pages %q, want at most 30 and 2 distinct", len(v.Extra), v.Pages)
	}
	for _, msg := range m {
		storable(t, "message id", msg.ID, false)
		storable(t, "message text", msg.Text, true)
		storable(t, "agent name", msg.AgentName, false)
	}
	for _, s := range append([]string{v.Name, v.Email, v.Phone, v.City, v.Browser}, v.Pages...) {
		storable(t, "card value", s, false)
	}
	for k, val := range v.Extra {
		storable(t, "card key", k, false)
		storable(t, "card value", val, false)
	}
	if s, err := temporalClient.DescribeWorkflow(context.Background(), workflowID, ""); err != nil {
		t.Fatal(err)
	} else if sum, _ := s.GetStaticSummary(); sum != "Chat with Ivan Petrov on "+in.Name {
		t.Errorf("summary = %q", sum)
	}
}

// Ids that would route nowhere are refused with 400 naming the field, before any
// workflow is touched: Temporal takes only printable ASCII in a workflow id (it
// answered a non-ASCII one with an error that was passed on as 503, and retried
// forever), and the store no control character.
func TestChatraWebhookRefusesUnroutableIDs(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	for _, tc := range []struct{ name, chatID, clientID, field string }{
		{"non-ASCII chat id", "чат-1", "V", "client.chatId"},
		{"accented chat id", "caf\u00e9", "V", "client.chatId"},
		{"chat id with a NUL", `a\u0000b`, "V", "client.chatId"},
		{"chat id with a space", "a b", "V", "client.chatId"},
		{"chat id too long", strings.Repeat("c", 300), "V", "client.chatId"},
		{"client id with a NUL", "OKCHAT", `V\u0000`, "client.id"},
		{"client id with a control character", "OKCHAT", `V\u001b[31m`, "client.id"},
		{"client id too long", "OKCHAT", strings.Repeat("v", 300), "client.id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"eventName":"chatStarted","client":{"id":"` + tc.clientID + `","chatId":"` + tc.chatID + `"}}`
			d := errorAnswer(t, h.post(t, "/webhooks/chatra/"+in.ID+"/"+in.ChatraToken, "application/json", []byte(body)), http.StatusBadRequest, chatrabridge.EINVALID)
			if d.Field != tc.field {
				t.Errorf("field = %q, want %q", d.Field, tc.field)
			}
		})
	}
	if started(workflows.ConversationWorkflowID(in.ID, "OKCHAT")) {
		t.Error("a refused webhook started a workflow")
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="unavailable",source="chatra"}`); v != 0 {
		t.Errorf("%v answers 503", v)
	}
}

// retryAfter checks a 429 answer of the Chatra webhook and returns its Retry-After.
func retryAfter(t *testing.T, resp *http.Response, body []byte) time.Duration {
	t.Helper()
	var e api.ErrorBody
	if resp.StatusCode != http.StatusTooManyRequests || json.Unmarshal(body, &e) != nil || e.Error.Code != chatrabridge.ELIMIT || e.Error.Message == "" {
		t.Fatalf("answer %d %s, want 429 %s", resp.StatusCode, body, chatrabridge.ELIMIT)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	return time.Duration(secs) * time.Second
}

func postRaw(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// An integration opens at most its newConversationsPerMinute new chats a minute: beyond
// that, a new chat's webhook is answered 429 with Retry-After, and no workflow starts;
// the chats already open keep being taken.
func TestChatraWebhookNewConversationLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	limit := 2
	in := newIntegrationWith(t, h.db, chatrabridge.OptionsUpdate{NewConversationsPerMinute: &limit})
	url := h.url + "/webhooks/chatra/" + in.ID + "/" + in.ChatraToken
	for _, chat := range []string{"N1", "N2"} {
		okAnswer(t, h.chatra(t, in, chatraBody("chatStarted", chat, "V-"+chat, "", "")))
	}
	resp, body := postRaw(t, url, chatraBody("chatStarted", "N3", "V-N3", "", ""))
	if d := retryAfter(t, resp, body); d > time.Minute {
		t.Errorf("Retry-After %v, more than the window", d)
	}
	if started(workflows.ConversationWorkflowID(in.ID, "N3")) {
		t.Error("a refused chat started a workflow")
	}
	okAnswer(t, h.chatra(t, in, chatraBody("chatFragment", "N1", "V-N1", `[{"id":"X","type":"client","text":"still here"}]`, "")))
	if v := metricValue(t, h, `chatrabridge_webhook_refusals_total{reason="new_conversations",source="chatra"}`); v != 1 {
		t.Errorf("refusals counted %v, want 1", v)
	}
	if v := metricValue(t, h, `chatrabridge_webhooks_total{outcome="refused",source="chatra"}`); v != 1 {
		t.Errorf("refused outcomes counted %v, want 1", v)
	}
}

// held is a delivery whose body never ends until release is called: the server holds
// it in flight meanwhile, unless it refused it at once (ended).
type held struct {
	release func()
	done    chan struct{}
}

func (h held) ended() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// holdOne starts a held delivery.
func holdOne(t *testing.T, url string) held {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	// A connection of its own: a kept-alive one the server closed could not be retried
	// with a body that cannot be read again.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(done)
		resp, err := c.Post(url, "application/json", pr)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write([]byte(`{"eventName":"chatStarted",`)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return held{done: done, release: func() {
		once.Do(func() {
			_ = pw.CloseWithError(errors.New("test: released"))
			<-done
		})
	}}
}

// The deliveries of one integration's webhook handled at once are bounded: beyond,
// Chatra's get 429 and Planfix's a 200 refusal (Planfix pauses an account that gets
// anything else). The two webhooks are bounded apart (a flood through a leaked Chatra
// URL does not crowd out employees' replies), and another integration is not held back.
func TestWebhookInFlightBound(t *testing.T) {
	h := newHarness(t, harnessOptions{maxInFlight: 1})
	in := newIntegration(t, h.db)
	other := newIntegration(t, h.db)
	planfixPath := "/webhooks/planfix/" + in.ID + "/" + in.PlanfixToken
	planfix := func(comment int) (ok bool, refused string) {
		ok, refused, _ = planfixAnswer(t, h.post(t, planfixPath, "application/json", []byte(`{"taskId":1,"commentId":`+strconv.Itoa(comment)+`}`)))
		return ok, refused
	}
	// until holds a delivery at url and posts until one is refused for being one too
	// many at once; a held delivery that was itself refused (one of the posts was in
	// flight when it came) is held again. It returns the held delivery's release.
	until := func(what, url string, refused func(i int) bool) (release func()) {
		t.Helper()
		hd := holdOne(t, url)
		t.Cleanup(func() { hd.release() })
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; ; i++ {
			if hd.ended() {
				hd = holdOne(t, url)
				t.Cleanup(func() { hd.release() })
			}
			if refused(i) && !hd.ended() {
				return hd.release
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no refusal while a delivery is held", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	releaseChatra := until("chatra", h.url+"/webhooks/chatra/"+in.ID+"/"+in.ChatraToken, func(int) bool {
		resp, body := postRaw(t, h.url+"/webhooks/chatra/"+in.ID+"/"+in.ChatraToken, chatraBody("chatStarted", "IF", "V", "", ""))
		if resp.StatusCode != http.StatusTooManyRequests {
			return false
		}
		retryAfter(t, resp, body)
		return strings.Contains(string(body), "at once")
	})
	if ok, refused := planfix(100); !ok {
		t.Fatalf("a Planfix reply was refused while Chatra's deliveries were full: %s", refused)
	}
	okAnswer(t, h.chatra(t, other, chatraBody("chatStarted", "OTHER", "V", "", "")))

	releasePlanfix := until("planfix", h.url+planfixPath, func(i int) bool {
		ok, refused := planfix(200 + i)
		return !ok && strings.Contains(refused, "at once")
	})
	releaseChatra()
	releasePlanfix()
	// A released delivery's answer may reach the client a moment before its handler has
	// given its place back: what comes after is taken once the place is free.
	after := h.chatra(t, in, chatraBody("chatStarted", "AFTER", "V", "", ""))
	for deadline := time.Now().Add(5 * time.Second); after.status == http.StatusTooManyRequests && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = h.chatra(t, in, chatraBody("chatStarted", "AFTER", "V", "", ""))
	}
	okAnswer(t, after)
	ok, refused := planfix(300)
	for deadline := time.Now().Add(5 * time.Second); !ok && strings.Contains(refused, "at once") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		ok, refused = planfix(301)
	}
	if !ok {
		t.Fatalf("after the release: refused %s", refused)
	}
	if v := metricValue(t, h, `chatrabridge_webhook_refusals_total{reason="in_flight",source="planfix"}`); v < 1 {
		t.Errorf("planfix in-flight refusals counted %v", v)
	}
}

// A Chatra delivery repeated after its conversation ended is not a new conversation: it
// is answered 200 duplicate and starts nothing (it used to start a new run, and so a
// new task). A delivery never seen still starts one.
func TestChatraWebhookRepeatAfterTheEnd(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	started := chatraBody("chatStarted", "ENDED", "V", `[{"id":"E1","type":"client","text":"hello"}]`, `,"name":"Eva"`)
	workflowID, _ := okAnswer(t, h.chatra(t, in, started))
	waitRecorded(t, workflowID, 2)
	ctx := context.Background()
	if err := temporalClient.SignalWorkflow(ctx, workflowID, "", signalTestEnd, nil); err != nil {
		t.Fatal(err)
	}
	var runID string
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := temporalClient.DescribeWorkflowExecution(ctx, workflowID, "")
		if err == nil && d.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			runID = d.WorkflowExecutionInfo.Execution.RunId
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the conversation did not end: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a := h.chatra(t, in, started)
	var dup struct {
		OK, Duplicate bool
		WorkflowID    string
	}
	if a.status != http.StatusOK || json.Unmarshal(a.body, &dup) != nil || !dup.OK || !dup.Duplicate || dup.WorkflowID != workflowID {
		t.Fatalf("repeat after the end answered %s, want 200 duplicate", a)
	}
	d, err := temporalClient.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil || d.WorkflowExecutionInfo.Execution.RunId != runID || d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("after the repeat: %+v, %v; want the ended run %s only", d.GetWorkflowExecutionInfo(), err, runID)
	}
	okAnswer(t, h.chatra(t, in, chatraBody("chatFragment", "ENDED", "V", `[{"id":"E2","type":"client","text":"back again"}]`, "")))
	if d, err := temporalClient.DescribeWorkflowExecution(ctx, workflowID, ""); err != nil || d.WorkflowExecutionInfo.Execution.RunId == runID {
		t.Fatalf("a new delivery did not start a new run: %v", err)
	}
	_ = temporalClient.SignalWorkflow(ctx, workflowID, "", signalTestEnd, nil)
}

// planfixAnswer decodes the Planfix webhook's 200 answer.
func planfixAnswer(t *testing.T, a answer) (ok bool, refused, workflowID string) {
	t.Helper()
	var r struct {
		OK         bool   `json:"ok"`
		Refused    string `json:"refused"`
		WorkflowID string `json:"workflowId"`
	}
	if a.status != http.StatusOK || json.Unmarshal(a.body, &r) != nil {
		t.Fatalf("planfix answer %s, want 200", a)
	}
	return r.OK, r.Refused, r.WorkflowID
}

// The replies held for tasks without a conversation are bounded per integration: a leaked
// Planfix URL cannot fill the store. Beyond the bound a reply is refused with 200 (not
// held), counted.
func TestPlanfixWebhookHeldRepliesBound(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	maxHeld := 3
	in := newIntegrationWith(t, h.db, chatrabridge.OptionsUpdate{MaxHeldReplies: &maxHeld})
	path := "/webhooks/planfix/" + in.ID + "/" + in.PlanfixToken
	for i := range 5 {
		ok, refused, _ := planfixAnswer(t, h.post(t, path, "application/json", []byte(fmt.Sprintf(`{"taskId":%d,"commentId":%d}`, 9000+i, 100+i))))
		if want := i < maxHeld; ok != want || (refused != "") == want {
			t.Fatalf("reply %d: ok %v, refused %q; want held %v", i, ok, refused, want)
		}
	}
	var n int
	if err := h.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM held_replies WHERE integration_id = $1`, in.ID).Scan(&n); err != nil || n != maxHeld {
		t.Fatalf("held rows %d (%v), want %d", n, err, maxHeld)
	}
	if v := metricValue(t, h, `chatrabridge_webhook_refusals_total{reason="held_replies",source="planfix"}`); v != 2 {
		t.Errorf("refusals counted %v, want 2", v)
	}
}

// A task's reply goes to the chat that created it, not to a chat that joined it on an
// email claim, even when that one wrote last; when only such chats have the task, the
// reply is refused with 200.
func TestPlanfixWebhookRepliesOnlyToVerifiedChats(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := newIntegration(t, h.db)
	ctx := context.Background()
	task := int64(4242)
	victim := startConversation(t, h, in, "VICTIM", task)
	impostor, _ := okAnswer(t, h.chatra(t, in, chatraBody("chatStarted", "IMPOSTOR", "V-IMPOSTOR", "", "")))
	if _, err := h.db.SaveConversation(ctx, postgres.Conversation{IntegrationID: in.ID, ChatID: "IMPOSTOR", WorkflowID: impostor,
		ClientID: "V-IMPOSTOR", PlanfixTaskID: &task, JoinedTask: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.db.TouchConversation(ctx, in.ID, "IMPOSTOR"); err != nil {
		t.Fatal(err)
	}
	path := "/webhooks/planfix/" + in.ID + "/" + in.PlanfixToken
	if ok, _, id := planfixAnswer(t, h.post(t, path, "application/json", []byte(`{"taskId":4242,"commentId":1}`))); !ok || id != victim {
		t.Fatalf("the reply went to %q, want the victim's %q", id, victim)
	}
	// The victim's chat moves to another task: no chat that may receive the replies is left.
	other := int64(4343)
	if _, err := h.db.SaveConversation(ctx, postgres.Conversation{IntegrationID: in.ID, ChatID: "VICTIM", WorkflowID: victim, PlanfixTaskID: &other}); err != nil {
		t.Fatal(err)
	}
	ok, refused, _ := planfixAnswer(t, h.post(t, path, "application/json", []byte(`{"taskId":4242,"commentId":2}`)))
	if ok || !strings.Contains(refused, "not a proof") {
		t.Fatalf("a reply for a claimed chat only: ok %v, refused %q", ok, refused)
	}
	rec := waitRecorded(t, impostor, 1)
	if replies := signalsNamed[workflows.ReplySignal](t, rec, workflows.SignalReply); len(replies) != 0 {
		t.Fatalf("the impostor's chat got replies %+v", replies)
	}
}

// Ids and queries the store could not even look up (a NUL, invalid UTF-8) are 400
// naming the field, not 500.
func TestAdminRefusesUnstorableIDs(t *testing.T) {
	e := newAdminEnv(t)
	for _, c := range []struct{ method, path, field string }{
		{http.MethodGet, "/api/v1/integrations/%00", "id"},
		{http.MethodGet, "/api/v1/integrations/%FF%FE", "id"},
		{http.MethodPatch, "/api/v1/integrations/a%00b", "id"},
		{http.MethodDelete, "/api/v1/integrations/%00", "id"},
		{http.MethodPost, "/api/v1/integrations/%00/rotate-tokens", "id"},
		{http.MethodPost, "/api/v1/integrations/%00/verify", "id"},
		{http.MethodGet, "/api/v1/conversations?integrationId=%00", "integrationId"},
		{http.MethodGet, "/api/v1/conversations?integrationId=%FF", "integrationId"},
		{http.MethodGet, "/api/v1/conversations/shop%00/C1", "id"},
		{http.MethodGet, "/api/v1/conversations/chatra%2Fshop%2F%FF", "id"},
	} {
		body := ""
		if c.method == http.MethodPatch {
			body = `{"name":"x"}`
		}
		adminError(t, e.call(t, c.method, c.path, body), http.StatusBadRequest, chatrabridge.EINVALID, c.field)
	}
}

// An integration's URLs may not point at loopback, link-local or private addresses
// (the bridge would call into its own network with the integration's credentials),
// unless ALLOW_PRIVATE_URLS says so.
func TestAdminRefusesPrivateURLs(t *testing.T) {
	e := newAdminEnvConfig(t, config.Config{AdminToken: secrets.String(adminTestToken)})
	public := []func(map[string]any){set("chatra.apiUrl", "https://app.chatra.io"), set("planfix.accountUrl", "https://example.planfix.com")}
	for _, c := range []struct{ field, url string }{
		{"chatra.apiUrl", "http://127.0.0.1:8090/chatra"},
		{"chatra.apiUrl", "http://localhost:8080"},
		{"chatra.apiUrl", "http://[::1]:80"},
		{"planfix.accountUrl", "http://10.1.2.3"},
		{"planfix.accountUrl", "http://169.254.169.254"},
		{"planfix.accountUrl", "http://192.168.0.10:8443"},
		{"planfix.accountUrl", "http://100.64.0.1"},
		{"planfix.accountUrl", "http://0.0.0.0"},
		{"planfix.accountUrl", "http://[fd00::1]"},
		{"planfix.accountUrl", "http://[::ffff:127.0.0.1]"},
	} {
		d := adminError(t, e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t, append(public, set(c.field, c.url))...)),
			http.StatusBadRequest, chatrabridge.EINVALID, c.field)
		if !strings.Contains(d.Message, "ALLOW_PRIVATE_URLS") {
			t.Errorf("%s: message %q does not say how to allow it", c.url, d.Message)
		}
	}
	created := e.create(t, public...)
	adminError(t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+created.ID, `{"planfix":{"accountUrl":"http://10.0.0.7"}}`),
		http.StatusBadRequest, chatrabridge.EINVALID, "planfix.accountUrl")
	// Allowed: the sandbox on 127.0.0.1 is taken.
	allowed := newAdminEnv(t)
	allowed.create(t)
}

// The client's address in logs is the connection's: X-Forwarded-For, which any client
// can write, is believed only from a trusted proxy.
func TestClientIPFromTrustedProxiesOnly(t *testing.T) {
	for _, c := range []struct {
		name    string
		proxies []*net.IPNet
		want    string
	}{
		{"no proxy", nil, "remote=127.0.0.1"},
		{"loopback is a trusted proxy", []*net.IPNet{{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(32, 32)}}, "remote=203.0.113.9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newAdminEnvConfig(t, config.Config{AdminToken: secrets.String(adminTestToken), AllowPrivateURLs: true, TrustedProxies: c.proxies})
			req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/integrations", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Real-IP", "203.0.113.9")
			do(t, req)
			if logs := e.logs.String(); !strings.Contains(logs, c.want) {
				t.Errorf("logs lack %q:\n%s", c.want, logs)
			}
		})
	}
}

// The served API (the fx graph's server, with short timeouts): a client that sends its
// headers or its body too slowly, or keeps an idle connection, is cut off; headers over
// the limit are refused; the body limit is 1 MiB, as documented; /metrics is served on
// METRICS_ADDR alone when it is set.
func TestServedTimeoutsAndLimits(t *testing.T) {
	_, dbURL := postgrestest.New(t)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.HTTPAddr, cfg.MetricsAddr, cfg.TaskQueue = secrets.String(dbURL), "127.0.0.1:0", "127.0.0.1:0", "api-timeouts"
	cfg.AdminToken, cfg.SecretsKey = "test-admin-token", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	var s *api.Server
	a := fxtest.New(t,
		app.Base(cfg, slog.New(slog.DiscardHandler), true),
		app.TemporalOptions(client.Options{HostPort: temporalAddr}),
		app.Roles(app.Role{API: true}),
		fx.Supply(api.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Write: 5 * time.Second, Idle: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10}),
		fx.Populate(&s),
	)
	a.RequireStart()
	defer a.RequireStop()
	addr := s.Addr().String()

	// closed reports whether the server closes conn (after writing what it will) within
	// a bound far beyond the timeouts.
	closed := func(conn net.Conn) bool {
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		return err == nil || !(errors.As(err, &ne) && ne.Timeout())
	}
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	slowHeader := dial()
	fmt.Fprintf(slowHeader, "POST /webhooks/chatra/x/y HTTP/1.1\r\nHost: x\r\n") // and never the end of the headers
	slowBody := dial()
	fmt.Fprintf(slowBody, "POST /webhooks/chatra/x/y HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"eventName\"") // and never the rest
	idle := dial()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz on the kept-alive connection: %v", err)
	}
	resp.Body.Close()
	for name, conn := range map[string]net.Conn{"slow headers": slowHeader, "slow body": slowBody, "idle": idle} {
		if !closed(conn) {
			t.Errorf("the server kept a connection with %s open", name)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 8<<10))
	if a := do(t, req); a.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over the limit: %s, want 431", a)
	}
	// The body limit is 1 MiB exactly: a body of 1 MiB passes it (and is refused as an
	// unknown integration), one byte more is 413.
	for n, want := range map[int]int{api.MaxBodyBytes: http.StatusUnauthorized, api.MaxBodyBytes + 1: http.StatusRequestEntityTooLarge} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/integrations", strings.NewReader(strings.Repeat(" ", n)))
		req.Header.Set("Authorization", "Bearer test-admin-token")
		if a := do(t, req); (want == http.StatusUnauthorized && a.status == http.StatusRequestEntityTooLarge) || (want == http.StatusRequestEntityTooLarge && a.status != want) {
			t.Errorf("a body of %d bytes: %s", n, a)
		}
	}
	if code, _ := get(t, "http://"+addr+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the API's address answered %d, want 404 (it has its own)", code)
	}
	if code, body := get(t, "http://"+s.MetricsAddr().String()+"/metrics"); code != http.StatusOK || !strings.Contains(body, "chatrabridge_http_requests_total") {
		t.Errorf("/metrics on METRICS_ADDR = %d", code)
	}
}
