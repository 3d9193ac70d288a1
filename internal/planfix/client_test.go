package planfix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

const testToken = "pf-Secret-Token-7f3a9c"

// testLimiter records the limiter calls and, when spacing is set, spaces them.
type testLimiter struct {
	mu      sync.Mutex
	waits   []string
	blocks  []time.Time
	waitErr error
	spacing time.Duration
	last    time.Time
}

func (l *testLimiter) Wait(ctx context.Context, account string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits = append(l.waits, account)
	if l.waitErr != nil {
		return l.waitErr
	}
	if l.spacing > 0 {
		if d := time.Until(l.last.Add(l.spacing)); d > 0 {
			time.Sleep(d)
		}
		l.last = time.Now()
	}
	return nil
}

func (l *testLimiter) Block(ctx context.Context, account string, until time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocks = append(l.blocks, until)
	return nil
}

type fixture struct {
	sb      *sandbox.Planfix
	srv     *httptest.Server
	client  *planfix.Client
	limiter *testLimiter
}

// newFixture serves a sandbox without its rate limit through a real HTTP server and
// returns a client of it.
func newFixture(t *testing.T, cfg planfix.Config) *fixture {
	t.Helper()
	sb := sandbox.NewPlanfix(testToken)
	sb.SetRateInterval(0)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	if cfg.BaseURL == "" {
		cfg.BaseURL = srv.URL + "/rest"
	}
	if cfg.Token == "" {
		cfg.Token = secrets.String(testToken)
	}
	lim := &testLimiter{}
	return &fixture{sb: sb, srv: srv, client: planfix.NewClient(cfg, srv.Client(), lim), limiter: lim}
}

func (f *fixture) host() string {
	u, _ := url.Parse(f.srv.URL)
	return u.Host
}

// last returns the latest request the sandbox received.
func (f *fixture) last(t *testing.T) sandbox.PlanfixRequest {
	t.Helper()
	log := f.sb.RequestLog()
	if len(log) == 0 {
		t.Fatal("the sandbox received no request")
	}
	return log[len(log)-1]
}

func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("request body\n got  %s\n want %s", got, want)
	}
}

// checkRequest checks method, path, query, headers and body of a logged request.
func checkRequest(t *testing.T, r sandbox.PlanfixRequest, method, path string, query url.Values, body string) {
	t.Helper()
	if r.Method != method || r.Path != path {
		t.Errorf("request = %s %s, want %s %s", r.Method, r.Path, method, path)
	}
	gotQ, _ := url.ParseQuery(r.Query)
	if len(gotQ) != len(query) || (len(query) > 0 && !reflect.DeepEqual(gotQ, query)) {
		t.Errorf("%s %s: query = %v, want %v", method, path, gotQ, query)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("%s %s: Accept = %q", method, path, got)
	}
	if r.Status < 200 || r.Status > 299 {
		t.Errorf("%s %s: sandbox answered %d (was the bearer token sent?)", method, path, r.Status)
	}
	if body == "" {
		if len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
			t.Errorf("%s %s: want no body, got %q (Content-Type %q)", method, path, r.Body, r.Header.Get("Content-Type"))
		}
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q", method, path, ct)
	}
	sameJSON(t, r.Body, body)
}

func fields(s string) url.Values { return url.Values{"fields": {s}} }

// TestCalls runs every call once against the sandbox and checks the request on the wire
// and the decoded answer.
func TestCalls(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, planfix.Config{})
	c := f.client

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	checkRequest(t, f.last(t), "GET", "/rest/ping", nil, "")

	contactSID := planfix.SourceObjectID("integration-1", "client", "c-42")
	contactID, err := c.CreateContact(ctx, planfix.NewContact{TemplateID: sandbox.PlanfixContactTemplateID, SourceObjectID: contactSID,
		Name: "Ivan", Lastname: "Petrov", Email: "Ivan@Example.com", Phones: []planfix.Phone{{Number: "+7 900 000-00-00", Type: planfix.PhoneMobile}}})
	if err != nil || contactID != 1 {
		t.Fatalf("CreateContact = %d, %v; want 1", contactID, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/contact/", nil, fmt.Sprintf(
		`{"template":{"id":7},"sourceObjectId":%q,"name":"Ivan","lastname":"Petrov","email":"Ivan@Example.com","phones":[{"number":"+7 900 000-00-00","type":1}]}`, contactSID))

	found, err := c.FindContactsByEmail(ctx, "ivan@example.com")
	if err != nil || len(found) != 1 || found[0].ID != contactID || found[0].SourceObjectID != contactSID || found[0].Lastname != "Petrov" ||
		len(found[0].Phones) != 1 || found[0].Phones[0].Type != planfix.PhoneMobile {
		t.Fatalf("FindContactsByEmail = %+v, %v", found, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/contact/list", nil, fmt.Sprintf(
		`{"offset":0,"pageSize":100,"filters":[{"type":4026,"operator":"equal","value":"ivan@example.com"}],"fields":%q}`, planfix.DefaultContactFields))
	if none, err := c.FindContactsByEmail(ctx, "nobody@example.com"); err != nil || len(none) != 0 {
		t.Fatalf("FindContactsByEmail(unknown) = %+v, %v; want none", none, err)
	}

	res, err := c.UpdateContact(ctx, contactID, planfix.ContactUpdate{Name: "Ivan", Email: "new@example.com"})
	if err != nil || res.Accepted || len(res.Failures) != 0 {
		t.Fatalf("UpdateContact = %+v, %v", res, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/contact/1", nil, `{"name":"Ivan","email":"new@example.com"}`)
	if got := f.sb.Contacts()[0].Email; got != "new@example.com" {
		t.Errorf("contact email after update = %q", got)
	}

	note := planfix.TextToHTML("Reached out through chat\nOS: <Linux>")
	ccID, err := c.AddContactComment(ctx, contactID, planfix.NewComment{Description: note})
	if err != nil || ccID <= 0 {
		t.Fatalf("AddContactComment = %d, %v", ccID, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/contact/1/comments/", nil, fmt.Sprintf(`{"description":%q}`, note))
	if cc := f.sb.ContactComments(contactID); len(cc) != 1 || cc[0].Description != note || cc[0].Owner != "user:1" {
		t.Errorf("contact comments = %+v", cc)
	}

	taskSID := planfix.SourceObjectID("integration-1", "chat", "chat-1")
	taskID, err := c.CreateTask(ctx, planfix.NewTask{TemplateID: sandbox.PlanfixTaskTemplateID, SourceObjectID: taskSID,
		Name: "Chat with Ivan Petrov (example.com)", Description: "City: Moscow<br>OS: Linux",
		Assigner: planfix.ContactID(contactID), Assignees: []planfix.PersonID{planfix.UserID(5), planfix.UserID(6)}})
	if err != nil || taskID != 1 {
		t.Fatalf("CreateTask = %d, %v", taskID, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/task/", nil, fmt.Sprintf(
		`{"sourceObjectId":%q,"template":{"id":101},"name":"Chat with Ivan Petrov (example.com)","description":"City: Moscow<br>OS: Linux",
		  "assigner":{"id":"contact:1"},"assignees":{"users":[{"id":"user:5"},{"id":"user:6"}]}}`, taskSID))

	task, err := c.GetTask(ctx, taskID, "")
	if err != nil {
		t.Fatalf("GetTask: %v", err)
	}
	checkRequest(t, f.last(t), "GET", "/rest/task/1", fields(planfix.DefaultTaskFields), "")
	if !task.IsActive() || task.Status.ID != sandbox.PlanfixStatusNew || task.ProcessID != sandbox.PlanfixProcessID ||
		task.Template == nil || task.Template.ID != sandbox.PlanfixTaskTemplateID || task.SourceObjectID != taskSID ||
		task.Assigner == nil || task.Assigner.ID != planfix.ContactID(contactID) || task.Assignees == nil || len(task.Assignees.Users) != 2 {
		t.Errorf("GetTask = %+v", task)
	}
	if id, ok := task.Assigner.ID.Contact(); !ok || id != contactID {
		t.Errorf("assigner %q: Contact() = %d, %v", task.Assigner.ID, id, ok)
	}
	if only, err := c.GetTask(ctx, taskID, "id,name"); err != nil || only.Status != nil || only.IsActive() || only.Name == "" {
		t.Errorf("GetTask(fields id,name) = %+v, %v: want a name and no status", only, err)
	}

	res, err = c.UpdateTask(ctx, taskID, planfix.TaskUpdate{StatusID: sandbox.PlanfixStatusCompleted, Silent: true})
	if err != nil || res.Accepted || len(res.Failures) != 0 {
		t.Fatalf("UpdateTask = %+v, %v", res, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/task/1", url.Values{"silent": {"true"}}, `{"status":{"id":3}}`)
	if task, err := c.GetTask(ctx, taskID, "id,status"); err != nil || task.IsActive() || task.Status.ID != sandbox.PlanfixStatusCompleted {
		t.Errorf("task after completion = %+v, %v; want inactive status 3", task, err)
	}

	tasks, err := c.ListTasks(ctx, planfix.TaskQuery{Filters: []planfix.Filter{{Type: planfix.TaskFilterAssigner, Operator: planfix.OpEqual, Value: planfix.ContactID(contactID)}}})
	if err != nil || len(tasks) != 1 || tasks[0].ID != taskID {
		t.Fatalf("ListTasks = %+v, %v", tasks, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/task/list", nil, fmt.Sprintf(
		`{"offset":0,"pageSize":100,"filters":[{"type":1,"operator":"equal","value":"contact:1"}],"fields":%q}`, planfix.DefaultTaskFields))

	msgSID := planfix.SourceObjectID("integration-1", "message", "m-1")
	text := planfix.TextToHTML("Hello!\nI need help")
	commentID, err := c.AddTaskComment(ctx, taskID, planfix.NewComment{Description: text, Owner: planfix.ContactID(contactID), SourceObjectID: msgSID})
	if err != nil || commentID <= 0 {
		t.Fatalf("AddTaskComment = %d, %v", commentID, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/task/1/comments/", nil, fmt.Sprintf(
		`{"sourceObjectId":%q,"description":%q,"owner":{"id":"contact:1"}}`, msgSID, text))

	comments, err := c.ListTaskComments(ctx, taskID, planfix.CommentQuery{})
	if err != nil || len(comments) != 1 || comments[0].ID != commentID || comments[0].SourceObjectID != msgSID ||
		comments[0].Owner == nil || comments[0].Owner.ID != planfix.ContactID(contactID) {
		t.Fatalf("ListTaskComments = %+v, %v", comments, err)
	}
	checkRequest(t, f.last(t), "POST", "/rest/task/1/comments/list", nil, fmt.Sprintf(
		`{"offset":0,"pageSize":100,"fields":%q,"typeList":"Comments","resultOrder":[{"field":"id","direction":"Asc"}]}`, planfix.DefaultCommentListFields))

	replyID, err := f.sb.AddComment(sandbox.PlanfixComment{TaskID: taskID, Owner: "user:5", Description: "We will call you back"})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.GetComment(ctx, replyID)
	if err != nil {
		t.Fatalf("GetComment: %v", err)
	}
	checkRequest(t, f.last(t), "GET", fmt.Sprintf("/rest/comment/%d", replyID), fields(planfix.DefaultCommentFields), "")
	if reply.Description != "We will call you back" || reply.Owner == nil || reply.Owner.ID != "user:5" || reply.Owner.Name != "Anna Petrova" ||
		reply.Task == nil || reply.Task.ID != taskID || reply.DateTime == nil {
		t.Errorf("GetComment = %+v", reply)
	}
	if _, ok := reply.DateTime.Parse(); !ok {
		t.Errorf("comment time %+v does not parse", reply.DateTime)
	}
	if uid, ok := reply.Owner.ID.User(); !ok || uid != 5 {
		t.Errorf("owner %q: User() = %d, %v", reply.Owner.ID, uid, ok)
	}

	user, err := c.GetUser(ctx, 5)
	if err != nil || user.Email != "anna@example.com" || user.FullName() != "Anna Petrova" {
		t.Fatalf("GetUser = %+v, %v", user, err)
	}
	checkRequest(t, f.last(t), "GET", "/rest/user/5", fields(planfix.DefaultUserFields), "")

	procs, err := c.ListTaskProcesses(ctx)
	if err != nil || len(procs) != 1 || procs[0].ID != sandbox.PlanfixProcessID || procs[0].Name == "" {
		t.Fatalf("ListTaskProcesses = %+v, %v", procs, err)
	}
	checkRequest(t, f.last(t), "GET", "/rest/process/task", fields("id,name"), "")

	statuses, err := c.ListProcessStatuses(ctx, sandbox.PlanfixProcessID)
	if err != nil || len(statuses) != 3 || !statuses[0].IsActive || !statuses[1].IsActive || statuses[2].IsActive || statuses[2].Name != "Completed" {
		t.Fatalf("ListProcessStatuses = %+v, %v", statuses, err)
	}
	checkRequest(t, f.last(t), "GET", "/rest/process/task/1/statuses", fields(planfix.DefaultStatusFields), "")

	tts, err := c.ListTaskTemplates(ctx)
	if err != nil || len(tts) != 1 || tts[0].ID != sandbox.PlanfixTaskTemplateID || tts[0].ProcessID != sandbox.PlanfixProcessID {
		t.Fatalf("ListTaskTemplates = %+v, %v", tts, err)
	}
	checkRequest(t, f.last(t), "GET", "/rest/task/templates", url.Values{"fields": {"id,name,processId"}, "offset": {"0"}, "pageSize": {"100"}}, "")

	cts, err := c.ListContactTemplates(ctx)
	if err != nil || len(cts) != 1 || cts[0].ID != sandbox.PlanfixContactTemplateID || cts[0].Name != "Customer" {
		t.Fatalf("ListContactTemplates = %+v, %v", cts, err)
	}
	checkRequest(t, f.last(t), "GET", "/rest/contact/templates", url.Values{"fields": {"id,name"}, "offset": {"0"}, "pageSize": {"100"}, "isCompany": {"false"}}, "")

	// Every request waited for the limiter first, under the server's host.
	log := f.sb.RequestLog()
	if len(f.limiter.waits) != len(log) {
		t.Errorf("limiter.Wait called %d times for %d requests", len(f.limiter.waits), len(log))
	}
	for _, a := range f.limiter.waits {
		if a != f.host() {
			t.Fatalf("limiter account = %q, want %q", a, f.host())
		}
	}
	for _, r := range log {
		if ua := r.Header.Get("User-Agent"); ua != "chatrabridge" {
			t.Errorf("%s %s: User-Agent = %q", r.Method, r.Path, ua)
		}
	}
}

func TestPagination(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, planfix.Config{})
	contact := f.sb.AddContact(sandbox.PlanfixContact{Name: "Ivan", Email: "ivan@example.com"})
	var sids []string
	for i := range 250 {
		sid := planfix.SourceObjectID("chat", fmt.Sprint(i))
		sids = append(sids, sid)
		f.sb.AddTask(sandbox.PlanfixTask{Name: fmt.Sprintf("task %d", i), Assigner: fmt.Sprintf("contact:%d", contact), SourceObjectID: sid})
	}
	f.sb.AddTask(sandbox.PlanfixTask{Name: "someone else's"})

	q := planfix.TaskQuery{Filters: []planfix.Filter{{Type: planfix.TaskFilterAssigner, Operator: planfix.OpEqual, Value: planfix.ContactID(contact)}}}
	n0 := len(f.sb.RequestLog())
	var got []int64
	for task, err := range f.client.Tasks(ctx, q) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, task.ID)
	}
	if len(got) != 250 || got[0] != 1 || got[249] != 250 {
		t.Fatalf("Tasks yielded %d tasks (%v ... ), want 1..250", len(got), got[:min(3, len(got))])
	}
	var offsets []float64
	for _, r := range f.sb.RequestLog()[n0:] {
		var b map[string]any
		_ = json.Unmarshal(r.Body, &b)
		offsets = append(offsets, b["offset"].(float64))
		if b["pageSize"].(float64) != 100 {
			t.Errorf("pageSize = %v, want 100", b["pageSize"])
		}
	}
	if !reflect.DeepEqual(offsets, []float64{0, 100, 200}) {
		t.Errorf("offsets = %v, want [0 100 200]", offsets)
	}

	// A match on the second page is found, and the search stops there.
	n0 = len(f.sb.RequestLog())
	bySource := func(sid string) func(planfix.Task) bool {
		return func(t planfix.Task) bool { return strings.EqualFold(t.SourceObjectID, sid) }
	}
	task, ok, err := f.client.FindTask(ctx, q, bySource(sids[150]))
	if err != nil || !ok || task.ID != 151 {
		t.Fatalf("FindTask = %+v, %v, %v; want task 151", task, ok, err)
	}
	if n := len(f.sb.RequestLog()) - n0; n != 2 {
		t.Errorf("FindTask made %d requests, want 2", n)
	}
	if _, ok, err := f.client.FindTask(ctx, q, bySource(planfix.SourceObjectID("never"))); ok || err != nil {
		t.Errorf("FindTask(unknown) = %v, %v; want not found", ok, err)
	}

	// Exactly 200 comments: two full pages and an empty one.
	taskID := int64(251)
	for i := range 200 {
		if _, err := f.sb.AddComment(sandbox.PlanfixComment{TaskID: taskID, Owner: "user:5", Description: fmt.Sprint("c", i),
			SourceObjectID: planfix.SourceObjectID("m", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	n0 = len(f.sb.RequestLog())
	var cids []int64
	for cm, err := range f.client.TaskComments(ctx, taskID, planfix.CommentQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, cm.ID)
	}
	if len(cids) != 200 || cids[0] >= cids[199] {
		t.Errorf("TaskComments yielded %d comments, want 200 oldest first", len(cids))
	}
	if n := len(f.sb.RequestLog()) - n0; n != 3 {
		t.Errorf("TaskComments made %d requests, want 3", n)
	}

	// Stopping early makes no further request.
	n0 = len(f.sb.RequestLog())
	for range f.client.Tasks(ctx, q) {
		break
	}
	if n := len(f.sb.RequestLog()) - n0; n != 1 {
		t.Errorf("stopping after one task made %d requests, want 1", n)
	}

	// Contacts by email across pages.
	for range 120 {
		f.sb.AddContact(sandbox.PlanfixContact{Name: "Twin", Email: "twin@example.com"})
	}
	twins, err := f.client.FindContactsByEmail(ctx, "TWIN@example.com")
	if err != nil || len(twins) != 120 {
		t.Errorf("FindContactsByEmail over two pages = %d contacts, %v; want 120", len(twins), err)
	}
}

func TestUpdateFailuresAndAccepted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, planfix.Config{})
	taskID := f.sb.AddTask(sandbox.PlanfixTask{Name: "t", TemplateID: sandbox.PlanfixTaskTemplateID})

	// One failure: an object.
	res, err := f.client.UpdateTask(ctx, taskID, planfix.TaskUpdate{StatusID: 99})
	var pe *planfix.Error
	if !errors.As(err, &pe) || pe.Kind != planfix.KindBadRequest || pe.Retryable || pe.Param != "status" || pe.HTTPStatus != 200 {
		t.Fatalf("UpdateTask(unknown status) error = %#v", err)
	}
	if len(res.Failures) != 1 || res.Failures[0].Field != "status" || res.Failures[0].Error == "" {
		t.Errorf("failures = %+v, want status", res.Failures)
	}
	if !strings.Contains(pe.Message, "status") || !strings.Contains(pe.Message, "process") {
		t.Errorf("message %q should name the field and the fix", pe.Message)
	}

	// Two failures: an array.
	res, err = f.client.UpdateTask(ctx, taskID, planfix.TaskUpdate{StatusID: 99, Assignees: []planfix.PersonID{planfix.UserID(999)}})
	if !errors.As(err, &pe) || pe.Param != "status,assignees" || len(res.Failures) != 2 {
		t.Fatalf("UpdateTask(two bad fields) = %+v, %v", res, err)
	}
	if !strings.Contains(string(f.last(t).Body), `"assignees":{"users":[{"id":"user:999"}]}`) {
		t.Errorf("assignees not sent as users: %s", f.last(t).Body)
	}

	// Failures with keys in another case, as an array and as an object.
	f.sb.InjectFaults(
		sandbox.PlanfixFault{Status: 200, Body: `{"Result":"success","FAILURES":[{"Field":"counterparty","Error":"Field change failed"}]}`},
		sandbox.PlanfixFault{Status: 200, Body: `{"failures":{"field":"template","error":"Field change failed"}}`},
		sandbox.PlanfixFault{Status: 200, Body: `{"result":"success","failures":[]}`},
		sandbox.PlanfixFault{Status: 200, Body: `{"result":"success","failures":null}`},
	)
	for i, want := range []string{"counterparty", "template", "", ""} {
		res, err := f.client.UpdateContact(ctx, 1, planfix.ContactUpdate{Name: "x"})
		if want == "" {
			if err != nil || len(res.Failures) != 0 {
				t.Errorf("case %d: = %+v, %v; want no failures", i, res, err)
			}
			continue
		}
		if !errors.As(err, &pe) || pe.Param != want || len(res.Failures) != 1 || res.Failures[0].Field != want {
			t.Errorf("case %d: = %+v, %v; want a failure of %s", i, res, err, want)
		}
	}

	// 202: queued.
	f.sb.AcceptNextTaskUpdates(1)
	res, err = f.client.UpdateTask(ctx, taskID, planfix.TaskUpdate{StatusID: sandbox.PlanfixStatusCompleted})
	if err != nil || !res.Accepted {
		t.Fatalf("UpdateTask answered 202 = %+v, %v; want Accepted", res, err)
	}
	if f.last(t).Status != http.StatusAccepted {
		t.Errorf("sandbox answered %d, want 202", f.last(t).Status)
	}
	if task, _ := f.sb.Task(taskID); task.StatusID != sandbox.PlanfixStatusCompleted {
		t.Errorf("status after the queued update = %d", task.StatusID)
	}
	res, err = f.client.UpdateTask(ctx, taskID, planfix.TaskUpdate{Name: "renamed"})
	if err != nil || res.Accepted {
		t.Errorf("next UpdateTask = %+v, %v; want 200", res, err)
	}
}

// TestErrors checks the classification of each kind of failure.
func TestErrors(t *testing.T) {
	type want struct {
		kind      string
		code      int
		status    int
		retryable bool
		param     string
		says      string // a substring of the message
	}
	cases := []struct {
		name  string
		fault sandbox.PlanfixFault
		want  want
	}{
		{"unknown token", sandbox.PlanfixFault{Status: 401, Code: 1, Message: "Access denied, unknown token"},
			want{planfix.KindUnauthorized, 1, 401, false, "", "create a new REST API token in Planfix, Account management, Integrations, REST API"}},
		{"inactive token", sandbox.PlanfixFault{Status: 401, Code: 2}, want{planfix.KindUnauthorized, 2, 401, false, "", "inactive"}},
		{"being modified", sandbox.PlanfixFault{Status: 400, Code: 3, Message: "Object is being modified"}, want{planfix.KindUnavailable, 3, 400, true, "", "retried"}},
		{"being modified under 500", sandbox.PlanfixFault{Status: 500, Code: 3}, want{planfix.KindUnavailable, 3, 500, true, "", "being modified"}},
		{"scope", sandbox.PlanfixFault{Status: 405, Code: 5, Message: "Scope denied, method not allowed"}, want{planfix.KindForbidden, 5, 405, false, "", "scope"}},
		{"no access", sandbox.PlanfixFault{Status: 400, Code: 6, Message: "New comments not allowed in this process"},
			want{planfix.KindForbidden, 6, 400, false, "", "New comments not allowed in this process"}},
		{"unpaid", sandbox.PlanfixFault{Status: 403, Code: 20}, want{planfix.KindUnpaid, 20, 403, false, "", "pay"}},
		{"free", sandbox.PlanfixFault{Status: 403, Code: 21}, want{planfix.KindUnpaid, 21, 403, false, "", "paid plan"}},
		{"bad json, under 500", sandbox.PlanfixFault{Status: 500, Code: 30, Message: "Rest API error"}, want{planfix.KindBadRequest, 30, 500, false, "", "bug"}},
		{"missing param", sandbox.PlanfixFault{Status: 400, Code: 40, Message: "Missing parameter name"}, want{planfix.KindBadRequest, 40, 400, false, "name", `parameter "name"`}},
		{"bad value", sandbox.PlanfixFault{Status: 400, Code: 41, Message: "Status not find by id 2"}, want{planfix.KindBadRequest, 41, 400, false, "status", "Status not find by id 2"}},
		{"task not found", sandbox.PlanfixFault{Status: 404, Code: 1000}, want{planfix.KindNotFound, 1000, 404, false, "", "no such task"}},
		{"task not found under 500", sandbox.PlanfixFault{Status: 500, Code: 1000}, want{planfix.KindNotFound, 1000, 500, false, "", "no such task"}},
		{"contact not found", sandbox.PlanfixFault{Status: 404, Code: 2000}, want{planfix.KindNotFound, 2000, 404, false, "", "no such contact"}},
		{"employee not found", sandbox.PlanfixFault{Status: 400, Code: 4000}, want{planfix.KindNotFound, 4000, 400, false, "", "no such employee"}},
		{"comment not found", sandbox.PlanfixFault{Status: 404, Code: 5000}, want{planfix.KindNotFound, 5000, 404, false, "", "no such comment"}},
		{"server error", sandbox.PlanfixFault{Status: 500, Code: 0, Message: "Rest API error"}, want{planfix.KindUnavailable, 0, 500, true, "", "retried"}},
		{"bad gateway html", sandbox.PlanfixFault{Status: 502, Body: "<html><body>Bad Gateway</body></html>"}, want{planfix.KindUnavailable, 0, 502, true, "", "Bad Gateway"}},
		{"too many", sandbox.PlanfixFault{Status: 429}, want{planfix.KindUnavailable, 0, 429, true, "", "rate"}},
		{"teapot", sandbox.PlanfixFault{Status: 418}, want{planfix.KindBadRequest, 0, 418, false, "", "HTTP 418"}},
		{"redirect", sandbox.PlanfixFault{Status: 301, Header: http.Header{"Location": {"https://acme.planfix.ru/rest/task/1?x=1"}}},
			want{planfix.KindBadRequest, 0, 301, false, "", "redirects (HTTP 301) to https://acme.planfix.ru/rest/task/1: set the account URL"}},
		{"plain 404", sandbox.PlanfixFault{Status: 404, Body: "not here"}, want{planfix.KindNotFound, 0, 404, false, "", "/rest"}},
		{"keys in any case, code as string", sandbox.PlanfixFault{Status: 401, Body: `{"RESULT":"fail","Code":"1","ERROR":"unknown"}`},
			want{planfix.KindUnauthorized, 1, 401, false, "", "create a new REST API token"}},
		{"fail under 200", sandbox.PlanfixFault{Status: 200, Body: `{"Result":"FAIL","code":41,"error":"Wrong value of parameter template"}`},
			want{planfix.KindBadRequest, 41, 200, false, "template", "template"}},
		{"garbage under 200", sandbox.PlanfixFault{Status: 200, Body: `<html>captive portal</html>`}, want{planfix.KindUnavailable, 0, 200, true, "", "not the expected JSON"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, planfix.Config{})
			f.sb.InjectFaults(tc.fault)
			_, err := f.client.GetTask(context.Background(), 1, "")
			var pe *planfix.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v, want *planfix.Error", err)
			}
			w := tc.want
			if pe.Kind != w.kind || pe.Code != w.code || pe.HTTPStatus != w.status || pe.Retryable != w.retryable || pe.Param != w.param {
				t.Errorf("got kind %s code %d status %d retryable %v param %q; want %+v", pe.Kind, pe.Code, pe.HTTPStatus, pe.Retryable, pe.Param, w)
			}
			if !strings.Contains(pe.Error(), w.says) {
				t.Errorf("message %q does not contain %q", pe.Error(), w.says)
			}
			if !strings.HasPrefix(pe.Error(), "get task 1: ") {
				t.Errorf("message %q does not name the call", pe.Error())
			}
			if planfix.IsRetryable(err) != w.retryable || planfix.ErrorKind(err) != w.kind {
				t.Errorf("IsRetryable/ErrorKind disagree with the error")
			}
			if len(f.limiter.blocks) != 0 {
				t.Errorf("Block called for a %s error", pe.Kind)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	f := newFixture(t, planfix.Config{})
	f.sb.InjectFaults(sandbox.PlanfixFault{Status: 503, Header: http.Header{"Retry-After": {"7"}}})
	err := f.client.Ping(context.Background())
	var pe *planfix.Error
	if !errors.As(err, &pe) || !pe.Retryable || pe.RetryAfter != 7*time.Second {
		t.Fatalf("503 with Retry-After: 7 = %#v, want retryable after 7s", err)
	}
}

func TestDailyLimitBlocksTheAccount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, planfix.Config{})
	f.sb.SetDailyQuota(2)
	for i := range 2 {
		if err := f.client.Ping(ctx); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	before := time.Now()
	err := f.client.Ping(ctx)
	var pe *planfix.Error
	if !errors.As(err, &pe) || pe.Kind != planfix.KindDailyLimit || pe.Code != 22 || !pe.Retryable {
		t.Fatalf("over the daily quota: %#v", err)
	}
	if pe.RetryAfter <= 0 || pe.RetryAfter > time.Hour {
		t.Errorf("RetryAfter = %v, want until the next hour", pe.RetryAfter)
	}
	if len(f.limiter.blocks) != 1 {
		t.Fatalf("Block called %d times, want 1", len(f.limiter.blocks))
	}
	until := f.limiter.blocks[0]
	nextHour := before.Truncate(time.Hour).Add(time.Hour)
	if !until.Equal(nextHour) && !until.Equal(nextHour.Add(time.Hour)) {
		t.Errorf("blocked until %v, want the next full hour %v", until, nextHour)
	}
	if !strings.Contains(pe.Message, until.UTC().Format(time.RFC3339)) {
		t.Errorf("message %q does not say until when", pe.Message)
	}

	// A Retry-After on the answer sets the block instead.
	f.sb.InjectFaults(sandbox.PlanfixFault{Status: 429, Code: 22, Header: http.Header{"Retry-After": {"120"}}})
	err = f.client.Ping(ctx)
	if !errors.As(err, &pe) || pe.Kind != planfix.KindDailyLimit || pe.RetryAfter != 120*time.Second {
		t.Fatalf("code 22 with Retry-After = %#v", err)
	}
	if got := f.limiter.blocks[1].Sub(time.Now()); got < 110*time.Second || got > 121*time.Second {
		t.Errorf("blocked for %v, want about 120s", got)
	}
}

func TestSandboxRateLimitIsRetryable(t *testing.T) {
	ctx := context.Background()
	sb := sandbox.NewPlanfix(testToken) // one request per second
	srv := httptest.NewServer(sb)
	defer srv.Close()
	c := planfix.NewClient(planfix.Config{BaseURL: srv.URL + "/rest", Token: testToken}, srv.Client(), nil)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	err := c.Ping(ctx)
	var pe *planfix.Error
	if !errors.As(err, &pe) || pe.HTTPStatus != 429 || !pe.Retryable || pe.Kind != planfix.KindUnavailable || pe.RetryAfter < time.Second {
		t.Fatalf("second ping within a second = %#v, want a retryable 429", err)
	}

	// With a limiter that spaces requests, the same calls pass.
	sb.SetRateInterval(150 * time.Millisecond)
	lim := &testLimiter{spacing: 200 * time.Millisecond, last: time.Now()}
	c = planfix.NewClient(planfix.Config{BaseURL: srv.URL + "/rest", Token: testToken}, srv.Client(), lim)
	for i := range 3 {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("spaced ping %d: %v", i, err)
		}
	}
}

func TestNetworkErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("dropped connection", func(t *testing.T) {
		f := newFixture(t, planfix.Config{})
		f.sb.InjectFaults(sandbox.PlanfixFault{Drop: true})
		err := f.client.Ping(ctx)
		if planfix.ErrorKind(err) != planfix.KindNetwork || !planfix.IsRetryable(err) {
			t.Fatalf("dropped connection = %v, want a retryable network error", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := newFixture(t, planfix.Config{Timeout: 100 * time.Millisecond})
		f.sb.InjectFaults(sandbox.PlanfixFault{Delay: 5 * time.Second})
		err := f.client.Ping(ctx)
		if planfix.ErrorKind(err) != planfix.KindNetwork || !planfix.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow answer = %v, want a retryable network error wrapping DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "did not answer in time") {
			t.Errorf("message %q", err)
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL + "/rest"
		srv.Close()
		c := planfix.NewClient(planfix.Config{BaseURL: base, Token: testToken}, nil, nil)
		err := c.Ping(ctx)
		var pe *planfix.Error
		if !errors.As(err, &pe) || pe.Kind != planfix.KindNetwork || !pe.Retryable || pe.HTTPStatus != 0 {
			t.Fatalf("closed server = %#v", err)
		}
		if !strings.Contains(pe.Message, "check the account URL") {
			t.Errorf("message %q", pe.Message)
		}
	})
}

func TestLimiterFailureSendsNothing(t *testing.T) {
	f := newFixture(t, planfix.Config{})
	f.limiter.waitErr = errors.New("database unavailable")
	err := f.client.Ping(context.Background())
	if err == nil || !errors.Is(err, f.limiter.waitErr) {
		t.Fatalf("Ping with a failing limiter = %v", err)
	}
	if n := len(f.sb.RequestLog()); n != 0 {
		t.Errorf("%d requests sent although the limiter failed", n)
	}
}

func TestBadConfig(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, planfix.Config{})
	for _, tc := range []struct {
		cfg  planfix.Config
		kind string
	}{
		{planfix.Config{BaseURL: f.srv.URL + "/rest"}, planfix.KindUnauthorized},
		{planfix.Config{BaseURL: "not a url", Token: testToken}, planfix.KindBadRequest},
		{planfix.Config{BaseURL: "ftp://x.planfix.com/rest", Token: testToken}, planfix.KindBadRequest},
		{planfix.Config{BaseURL: "", Token: testToken}, planfix.KindBadRequest},
	} {
		c := planfix.NewClient(tc.cfg, nil, nil)
		err := c.Ping(ctx)
		if planfix.ErrorKind(err) != tc.kind || planfix.IsRetryable(err) {
			t.Errorf("config %+v: Ping = %v, want permanent %s", tc.cfg, err, tc.kind)
		}
	}
	if n := len(f.sb.RequestLog()); n != 0 {
		t.Errorf("%d requests sent with an unusable config", n)
	}

	// A wrong token reaches Planfix and is refused.
	bad := planfix.NewClient(planfix.Config{BaseURL: f.srv.URL + "/rest", Token: "wrong"}, nil, nil)
	if err := bad.Ping(ctx); planfix.ErrorKind(err) != planfix.KindUnauthorized {
		t.Errorf("wrong token: %v", err)
	}
	// A contact the sandbox does not know, as assigner: the parameter is named.
	_, err := f.client.CreateTask(ctx, planfix.NewTask{TemplateID: sandbox.PlanfixTaskTemplateID, Name: "x", Assigner: planfix.ContactID(404)})
	var pe *planfix.Error
	if !errors.As(err, &pe) || pe.Code != 41 || pe.Param != "assigner" {
		t.Errorf("CreateTask with an unknown assigner = %#v, want code 41 naming assigner", err)
	}
	if _, err := f.client.FindContactsByEmail(ctx, "  "); planfix.ErrorKind(err) != planfix.KindBadRequest {
		t.Errorf("FindContactsByEmail(blank) = %v", err)
	}
	if _, err := f.client.GetComment(ctx, 12345); !planfix.IsNotFound(err) {
		t.Errorf("GetComment(missing) = %v, want not found", err)
	}
	if _, err := f.client.GetUser(ctx, 12345); !planfix.IsNotFound(err) {
		t.Errorf("GetUser(missing) = %v, want not found", err)
	}
	if _, err := f.client.ListTaskComments(ctx, 12345, planfix.CommentQuery{}); !planfix.IsNotFound(err) || planfix.IsRetryable(err) {
		t.Errorf("ListTaskComments(missing task) = %v, want permanent not found (the spec answers 500 with code 1000)", err)
	}
}

// TestTokenNeverLeaks collects errors of every kind and log lines, and looks for the
// token in them.
func TestTokenNeverLeaks(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	var texts []string

	f := newFixture(t, planfix.Config{Timeout: 100 * time.Millisecond})
	f.sb.InjectFaults(
		sandbox.PlanfixFault{Status: 401, Code: 1, Message: "Access denied, unknown token " + testToken},
		sandbox.PlanfixFault{Status: 400, Code: 41, Message: "Wrong value of parameter token: " + testToken},
		sandbox.PlanfixFault{Status: 500, Body: "upstream said Bearer " + testToken},
		sandbox.PlanfixFault{Status: 429, Code: 22, Message: testToken},
		sandbox.PlanfixFault{Status: 200, Body: `{"failures":{"field":"x","error":"` + testToken + `"}}`},
		sandbox.PlanfixFault{Drop: true},
		sandbox.PlanfixFault{Delay: time.Second},
	)
	for range 7 {
		_, err := f.client.UpdateTask(ctx, 1, planfix.TaskUpdate{Name: "x"})
		if err == nil {
			t.Fatal("want an error")
		}
		texts = append(texts, err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err))
		logger.Error("planfix call failed", "err", err)
	}
	wrong := planfix.NewClient(planfix.Config{BaseURL: f.srv.URL + "/rest", Token: testToken + "x"}, nil, nil)
	if err := wrong.Ping(ctx); err != nil {
		texts = append(texts, err.Error())
	}
	cfg := planfix.Config{BaseURL: "https://user:pass@acme.planfix.com/rest", Token: testToken}
	logger.Info("config", "planfix", cfg, "client", f.client)
	texts = append(texts, fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, f.client), fmt.Sprintf("%+v %v", f.client, f.client), logs.String())

	for _, s := range texts {
		if strings.Contains(s, testToken) {
			t.Errorf("the token leaked: %s", s)
		}
	}
	if !strings.Contains(logs.String(), `"token":"[redacted]"`) {
		t.Errorf("the config's log line does not show the token as redacted: %s", logs.String())
	}
	if strings.Contains(logs.String(), "pass@") {
		t.Errorf("the base URL's password leaked: %s", logs.String())
	}
}

func TestConfigLogValue(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "planfix", planfix.Config{BaseURL: "https://acme.planfix.com/rest", Token: "abc-secret"})
	out := buf.String()
	if !strings.Contains(out, "planfix.base_url=https://acme.planfix.com/rest") || !strings.Contains(out, "planfix.token=[redacted]") || strings.Contains(out, "abc-secret") {
		t.Errorf("log line = %s", out)
	}
}

// GetContact reads one contact by number with the fields asked for (the default ones
// when none are); a contact Planfix does not have is a permanent not-found, and an
// answer without the contact is retried.
func TestGetContact(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, planfix.Config{})
	c := f.client
	sid := planfix.SourceObjectID("integration-1", "contact", "V1")
	id := f.sb.AddContact(sandbox.PlanfixContact{TemplateID: sandbox.PlanfixContactTemplateID, SourceObjectID: sid,
		Name: "Ivan", Lastname: "Petrov", Email: "ivan@example.com", Phones: []sandbox.PlanfixPhone{{Number: "+371 2000 0000", Type: 1}}})

	got, err := c.GetContact(ctx, id, "")
	if err != nil {
		t.Fatalf("GetContact: %v", err)
	}
	checkRequest(t, f.last(t), "GET", fmt.Sprintf("/rest/contact/%d", id), fields(planfix.DefaultContactFields), "")
	if got.ID != id || got.Name != "Ivan" || got.Lastname != "Petrov" || got.Email != "ivan@example.com" || got.SourceObjectID != sid ||
		got.Template == nil || got.Template.ID != sandbox.PlanfixContactTemplateID || len(got.Phones) != 1 || got.IsDeleted || got.IsCompany {
		t.Errorf("GetContact = %+v", got)
	}
	only, err := c.GetContact(ctx, id, "id,isDeleted")
	if err != nil || only.ID != id || only.Name != "" || only.IsDeleted {
		t.Errorf("GetContact(fields id,isDeleted) = %+v, %v: want the id only", only, err)
	}
	checkRequest(t, f.last(t), "GET", fmt.Sprintf("/rest/contact/%d", id), fields("id,isDeleted"), "")

	_, err = c.GetContact(ctx, id+1000, "id")
	var pe *planfix.Error
	if !planfix.IsNotFound(err) || planfix.IsRetryable(err) || !errors.As(err, &pe) || pe.Code != planfix.CodeContactNotFound ||
		!strings.HasPrefix(pe.Error(), fmt.Sprintf("get contact %d: ", id+1000)) {
		t.Errorf("GetContact(missing) = %v, want a permanent not found (code 2000) naming the call", err)
	}

	f.sb.InjectFaults(sandbox.PlanfixFault{Status: 200, Body: `{"result":"success"}`})
	if _, err := c.GetContact(ctx, id, ""); planfix.ErrorKind(err) != planfix.KindUnavailable || !planfix.IsRetryable(err) {
		t.Errorf("GetContact(answer without the contact) = %v, want a retryable unavailable", err)
	}

	if n, m := len(f.limiter.waits), len(f.sb.RequestLog()); n != m || n != 4 {
		t.Errorf("limiter.Wait called %d times for %d requests, want 4", n, m)
	}
}
