package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const planfixTestToken = "sandbox-token"

// planfixTestServer serves a sandbox without its rate limit (unless rate is set).
func planfixTestServer(t *testing.T) (*Planfix, *httptest.Server) {
	t.Helper()
	p := NewPlanfix(planfixTestToken)
	p.SetRateInterval(0)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

// planfixCall sends one request and returns the status, the decoded JSON object (nil when
// the body is not one) and the headers.
func planfixCall(t *testing.T, base, method, path, token, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

// planfixWantFail checks a fail answer.
func planfixWantFail(t *testing.T, status int, m map[string]any, wantStatus, wantCode int) {
	t.Helper()
	if status != wantStatus || m["result"] != "fail" || m["code"] != float64(wantCode) || m["error"] == "" {
		t.Errorf("answer %d %v, want %d with code %d", status, m, wantStatus, wantCode)
	}
}

func TestPlanfixAuth(t *testing.T) {
	_, srv := planfixTestServer(t)
	for _, token := range []string{"", "wrong"} {
		status, m, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", token, "")
		planfixWantFail(t, status, m, 401, 1)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/rest/ping", nil)
	req.Header.Set("Authorization", "Basic "+planfixTestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Basic auth: %d, want 401", resp.StatusCode)
	}
	status, m, h := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, "")
	if status != 200 || m["result"] != "success" || h.Get("X-RateLimit-Remaining") == "" {
		t.Errorf("ping = %d %v, X-RateLimit-Remaining %q", status, m, h.Get("X-RateLimit-Remaining"))
	}
}

func TestPlanfixMountedUnderPrefix(t *testing.T) {
	p := NewPlanfix(planfixTestToken)
	mux := http.NewServeMux()
	mux.Handle("/sandbox/planfix/", http.StripPrefix("/sandbox/planfix", p))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	status, m, _ := planfixCall(t, srv.URL, "GET", "/sandbox/planfix/rest/ping", planfixTestToken, "")
	if status != 200 || m["result"] != "success" {
		t.Fatalf("ping under a prefix = %d %v", status, m)
	}
	if log := p.RequestLog(); len(log) != 1 || log[0].Path != "/rest/ping" {
		t.Errorf("log = %+v", log)
	}
}

func TestPlanfixRateLimit(t *testing.T) {
	p := NewPlanfix(planfixTestToken)
	now := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	srv := httptest.NewServer(p)
	defer srv.Close()

	if status, _, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, ""); status != 200 {
		t.Fatalf("first ping: %d", status)
	}
	advance(400 * time.Millisecond)
	status, m, h := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, "")
	planfixWantFail(t, status, m, 429, 0)
	if h.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", h.Get("Retry-After"))
	}
	advance(400 * time.Millisecond) // 0.8 s after the accepted request: still too early
	if status, _, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, ""); status != 429 {
		t.Errorf("0.8 s later: %d, want 429", status)
	}
	advance(200 * time.Millisecond) // a rejected request does not restart the second
	if status, _, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, ""); status != 200 {
		t.Errorf("1 s after the accepted request: %d, want 200", status)
	}
	// A bad token is refused before the limit is counted.
	if status, _, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", "wrong", ""); status != 401 {
		t.Errorf("bad token: %d, want 401", status)
	}

	p.SetRateInterval(0)
	for i := range 5 {
		if status, _, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, ""); status != 200 {
			t.Fatalf("limit off, ping %d: %d", i, status)
		}
	}
	log := p.RequestLog()
	var statuses []int
	for _, r := range log[:5] {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[200 429 429 200 401]" {
		t.Errorf("logged statuses = %v", statuses)
	}
	if log[0].Header.Get("Authorization") != "" {
		t.Error("the log keeps the Authorization header")
	}
}

func TestPlanfixDailyQuota(t *testing.T) {
	p, srv := planfixTestServer(t)
	p.SetDailyQuota(2)
	for _, want := range []string{"1", "0"} {
		status, _, h := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, "")
		if status != 200 || h.Get("X-RateLimit-Remaining") != want {
			t.Errorf("ping: %d, remaining %q; want 200, %s", status, h.Get("X-RateLimit-Remaining"), want)
		}
	}
	status, m, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, "")
	planfixWantFail(t, status, m, 429, 22)
}

func TestPlanfixFaults(t *testing.T) {
	p, srv := planfixTestServer(t)
	p.FailNext(2, 503, 0)
	p.InjectFaults(PlanfixFault{Status: 201, Body: `{"X":1}`, Header: http.Header{"X-Test": {"yes"}}})
	for range 2 {
		status, m, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, "")
		planfixWantFail(t, status, m, 503, 0)
	}
	status, m, h := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, "")
	if status != 201 || m["X"] != float64(1) || h.Get("X-Test") != "yes" {
		t.Errorf("raw fault = %d %v %v", status, m, h)
	}
	if status, _, _ := planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, ""); status != 200 {
		t.Errorf("after the faults: %d", status)
	}

	p.InjectFaults(PlanfixFault{Drop: true})
	req, _ := http.NewRequest("POST", srv.URL+"/rest/task/list", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+planfixTestToken)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped connection answered %d", resp.StatusCode)
	}

	p.InjectFaults(PlanfixFault{Delay: 50 * time.Millisecond})
	start := time.Now()
	status, _, _ = planfixCall(t, srv.URL, "GET", "/rest/ping", planfixTestToken, "")
	if status != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("delayed ping: %d after %v", status, time.Since(start))
	}
}

func TestPlanfixTasks(t *testing.T) {
	p, srv := planfixTestServer(t)
	call := func(method, path, body string) (int, map[string]any) {
		status, m, _ := planfixCall(t, srv.URL, method, path, planfixTestToken, body)
		return status, m
	}
	contact := p.AddContact(PlanfixContact{Name: "Ivan", Email: "ivan@example.com"})
	const sid = "0c091b1f-a735-44e9-a56c-43435e7a40b6"

	status, m := call("POST", "/rest/task/", fmt.Sprintf(`{"template":{"id":101},"sourceObjectId":%q,"name":"Chat","description":"a<br>b",
		"assigner":{"id":"contact:%d"},"assignees":{"users":[{"id":"user:5"},{"id":"user:6"}]}}`, sid, contact))
	if status != 201 || m["result"] != "success" || m["id"] != float64(1) {
		t.Fatalf("create task = %d %v", status, m)
	}
	// The same sourceObjectId again makes a second task, as far as Planfix documents.
	if status, m := call("POST", "/rest/task/", fmt.Sprintf(`{"template":{"id":"101"},"sourceObjectId":%q,"name":"Chat"}`, sid)); status != 201 || m["id"] != float64(2) {
		t.Fatalf("second create = %d %v", status, m)
	}
	tasks := p.Tasks()
	if len(tasks) != 2 || tasks[0].Assigner != fmt.Sprintf("contact:%d", contact) || fmt.Sprint(tasks[0].Assignees) != "[user:5 user:6]" ||
		tasks[0].StatusID != PlanfixStatusNew || tasks[0].ProcessID != PlanfixProcessID || tasks[1].Assigner != "user:1" {
		t.Errorf("tasks = %+v", tasks)
	}

	// Only the fields asked for, and the id.
	status, m = call("GET", "/rest/task/1?fields=id,status,sourceObjectId", "")
	task, _ := m["task"].(map[string]any)
	st, _ := task["status"].(map[string]any)
	if status != 200 || len(task) != 3 || st["isActive"] != true || st["id"] != float64(1) || task["sourceObjectId"] != sid {
		t.Errorf("get task = %d %v", status, m)
	}
	if _, m := call("GET", "/rest/task/1", ""); len(m["task"].(map[string]any)) != 1 {
		t.Errorf("get task without fields = %v, want the id alone", m)
	}
	status, m = call("GET", "/rest/task/99", "")
	planfixWantFail(t, status, m, 404, 1000)

	// Completing.
	if status, m := call("POST", "/rest/task/1", `{"status":{"id":3}}`); status != 200 || m["failures"] != nil {
		t.Errorf("complete = %d %v", status, m)
	}
	if task, _ := p.Task(1); task.StatusID != PlanfixStatusCompleted {
		t.Errorf("status = %d", task.StatusID)
	}
	// Failures: one as an object, several as an array.
	status, m = call("POST", "/rest/task/1", `{"status":{"id":42},"name":"renamed"}`)
	if f, ok := m["failures"].(map[string]any); status != 200 || !ok || f["field"] != "status" {
		t.Errorf("bad status = %d %v", status, m)
	}
	if task, _ := p.Task(1); task.Name != "renamed" || task.StatusID != PlanfixStatusCompleted {
		t.Errorf("after a partial update: %+v", task)
	}
	status, m = call("POST", "/rest/task/1", `{"status":{"id":42},"assignees":{"users":[{"id":"user:77"}]}}`)
	if f, ok := m["failures"].([]any); status != 200 || !ok || len(f) != 2 {
		t.Errorf("two bad fields = %d %v", status, m)
	}
	p.AcceptNextTaskUpdates(1)
	if status, _ := call("POST", "/rest/task/1", `{"status":{"id":2}}`); status != 202 {
		t.Errorf("accepted update = %d, want 202", status)
	}
	if task, _ := p.Task(1); task.StatusID != PlanfixStatusInProgress {
		t.Errorf("the queued change was not applied: %d", task.StatusID)
	}
	status, m = call("POST", "/rest/task/99", `{"name":"x"}`)
	planfixWantFail(t, status, m, 404, 1000)

	// Validation.
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"template":{"id":5},"name":"x"}`, 41},
		{`{"name":"x","status":{"id":9}}`, 41},
		{`{"name":"x","assigner":{"id":"contact:999"}}`, 41},
		{`{"name":"x","assignees":{"users":[{"id":"user:1"}],"groups":[{"id":3}]}}`, 41},
		{`{"name":"x","sourceObjectId":"not-a-uuid"}`, 41},
		{`{"description":"no name"}`, 40},
		{`{"name":`, 30},
		{`{"name":"x","template":{"id":"abc"}}`, 30},
	} {
		status, m := call("POST", "/rest/task/", tc.body)
		planfixWantFail(t, status, m, 400, tc.code)
	}

	// Lists and filters.
	for range 150 {
		p.AddTask(PlanfixTask{Name: "bulk", TemplateID: PlanfixTaskTemplateID, Assigner: fmt.Sprintf("contact:%d", contact)})
	}
	list := func(body string) []any {
		status, m := call("POST", "/rest/task/list", body)
		if status != 200 {
			t.Fatalf("list %s = %d %v", body, status, m)
		}
		out, _ := m["tasks"].([]any)
		return out
	}
	byAssigner := fmt.Sprintf(`"filters":[{"type":1,"operator":"equal","value":"contact:%d"}]`, contact)
	if n := len(list(`{"offset":0,"pageSize":100,` + byAssigner + `,"fields":"id"}`)); n != 100 {
		t.Errorf("page 1: %d tasks", n)
	}
	if got := list(`{"offset":100,"pageSize":100,` + byAssigner + `,"fields":"id,name"}`); len(got) != 51 || got[50].(map[string]any)["name"] != "bulk" {
		t.Errorf("page 2: %d tasks", len(got))
	}
	if n := len(list(`{"offset":100,"filters":[{"type":10,"operator":"equal","value":[1,2]},{"type":51,"operator":"equal","value":101}]}`)); n != 52 {
		t.Errorf("by status and template, page 2: %d, want 52 (152 in all)", n)
	}
	if n := len(list(`{"filters":[{"type":10,"operator":"equal","value":3}]}`)); n != 0 {
		t.Errorf("by status 3: %d, want 0", n)
	}
	if n := len(list(`{"filters":[{"type":57,"operator":"notequal","value":1}],"pageSize":100,"offset":150}`)); n != 1 {
		t.Errorf("notequal number, last page: %d, want 1 (151 in all)", n)
	}
	for _, body := range []string{`{"pageSize":101}`, `{"offset":-1}`, `{"filters":[{"type":8,"operator":"equal","value":1}]}`,
		`{"filters":[{"type":1,"operator":"gt","value":"user:1"}]}`, `{"filterId":"out"}`} {
		status, m := call("POST", "/rest/task/list", body)
		planfixWantFail(t, status, m, 400, 41)
	}
}

func TestPlanfixComments(t *testing.T) {
	p, srv := planfixTestServer(t)
	call := func(method, path, body string) (int, map[string]any) {
		status, m, _ := planfixCall(t, srv.URL, method, path, planfixTestToken, body)
		return status, m
	}
	contact := p.AddContact(PlanfixContact{Name: "Ivan"})
	task := p.AddTask(PlanfixTask{Name: "t"})

	status, m := call("POST", fmt.Sprintf("/rest/task/%d/comments/", task), fmt.Sprintf(`{"description":"hi","owner":{"id":"contact:%d"}}`, contact))
	if status != 201 || m["id"] != float64(1) {
		t.Fatalf("add comment = %d %v", status, m)
	}
	if status, m := call("POST", fmt.Sprintf("/rest/task/%d/comments/", task), `{"description":"by the robot"}`); status != 201 || m["id"] != float64(2) {
		t.Fatalf("add comment without owner = %d %v", status, m)
	}
	if cs := p.Comments(task); len(cs) != 2 || cs[0].Owner != fmt.Sprintf("contact:%d", contact) || cs[1].Owner != "user:1" {
		t.Errorf("comments = %+v", cs)
	}
	for _, tc := range []struct {
		path, body   string
		status, code int
	}{
		{"/rest/task/99/comments/", `{"description":"x"}`, 404, 1000},
		{fmt.Sprintf("/rest/task/%d/comments/", task), `{"description":""}`, 400, 40},
		{fmt.Sprintf("/rest/task/%d/comments/", task), `{"description":"x","owner":{"id":"contact:77"}}`, 400, 41},
		{"/rest/task/99/comments/list", `{}`, 500, 1000}, // as the spec's example
		{fmt.Sprintf("/rest/task/%d/comments/list", task), `{"typeList":"Weird"}`, 400, 41},
		{fmt.Sprintf("/rest/task/%d/comments/list", task), `{"resultOrder":[{"field":"name","direction":"Asc"}]}`, 400, 41},
		{"/rest/contact/99/comments/", `{"description":"x"}`, 404, 2000},
	} {
		status, m := call("POST", tc.path, tc.body)
		planfixWantFail(t, status, m, tc.status, tc.code)
	}

	for i := range 120 {
		if _, err := p.AddComment(PlanfixComment{TaskID: task, Owner: "user:5", Description: fmt.Sprint("reply ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	status, m = call("POST", fmt.Sprintf("/rest/task/%d/comments/list", task), `{"offset":100,"pageSize":100,"fields":"id,description,owner","resultOrder":[{"field":"id","direction":"Asc"}]}`)
	cs, _ := m["comments"].([]any)
	if status != 200 || len(cs) != 22 || cs[21].(map[string]any)["description"] != "reply 119" {
		t.Errorf("comments page 2 = %d, %d comments", status, len(cs))
	}
	status, m = call("POST", fmt.Sprintf("/rest/task/%d/comments/list", task), `{"pageSize":1,"fields":"id","resultOrder":[{"filed":"id","direction":"Desc"}]}`)
	if cs, _ := m["comments"].([]any); status != 200 || len(cs) != 1 || cs[0].(map[string]any)["id"] != float64(122) {
		t.Errorf("newest first = %d %v", status, m)
	}

	status, m = call("GET", "/rest/comment/3?fields=id,description,owner,dateTime,task,files", "")
	c, _ := m["comment"].(map[string]any)
	owner, _ := c["owner"].(map[string]any)
	if status != 200 || c["description"] != "reply 0" || owner["id"] != "user:5" || owner["name"] != "Anna Petrova" || c["task"] == nil || c["dateTime"] == nil {
		t.Errorf("get comment = %d %v", status, m)
	}
	status, m = call("GET", "/rest/comment/999", "")
	planfixWantFail(t, status, m, 404, 5000)

	if status, _ := call("POST", fmt.Sprintf("/rest/contact/%d/comments/", contact), `{"description":"Reached out through chat"}`); status != 201 {
		t.Errorf("contact comment = %d", status)
	}
	if cc := p.ContactComments(contact); len(cc) != 1 || cc[0].TaskID != 0 {
		t.Errorf("contact comments = %+v", cc)
	}
	if _, err := p.AddComment(PlanfixComment{TaskID: 99}); err == nil {
		t.Error("AddComment on a missing task succeeded")
	}
	if _, err := p.AddComment(PlanfixComment{TaskID: task, Owner: "user:404"}); err == nil {
		t.Error("AddComment by a missing employee succeeded")
	}
}

func TestPlanfixContactsUsersProcesses(t *testing.T) {
	p, srv := planfixTestServer(t)
	call := func(method, path, body string) (int, map[string]any) {
		status, m, _ := planfixCall(t, srv.URL, method, path, planfixTestToken, body)
		return status, m
	}
	status, m := call("POST", "/rest/contact/", `{"template":{"id":7},"name":"Ivan","lastname":"Petrov","email":"Ivan@Example.com","phones":[{"number":"+7 (900) 000-00-00","type":1}]}`)
	if status != 201 || m["id"] != float64(1) {
		t.Fatalf("create contact = %d %v", status, m)
	}
	for body, code := range map[string]int{`{"template":{"id":8},"name":"x"}`: 41, `{"template":{"id":7}}`: 40, `{"name":"x","sourceObjectId":"123"}`: 41} {
		status, m := call("POST", "/rest/contact/", body)
		planfixWantFail(t, status, m, 400, code)
	}
	find := func(filter string) int {
		status, m := call("POST", "/rest/contact/list", `{"fields":"id,email","filters":[`+filter+`]}`)
		if status != 200 {
			t.Fatalf("contact list %s = %d %v", filter, status, m)
		}
		cs, _ := m["contacts"].([]any)
		return len(cs)
	}
	for filter, want := range map[string]int{
		`{"type":4026,"operator":"equal","value":"ivan@example.com"}`: 1,
		`{"type":4026,"operator":"equal","value":"ivan@example"}`:     0,
		`{"type":4005,"operator":"equal","value":"example"}`:          1,
		`{"type":4001,"operator":"equal","value":"petr"}`:             1,
		`{"type":4003,"operator":"equal","value":"+79000000000"}`:     1,
		`{"type":4016,"operator":"equal","value":7}`:                  1,
		`{"type":4016,"operator":"notequal","value":7}`:               0,
	} {
		if got := find(filter); got != want {
			t.Errorf("filter %s: %d contacts, want %d", filter, got, want)
		}
	}
	status, m = call("POST", "/rest/contact/list", `{"filters":[{"type":4999,"operator":"equal","value":1}]}`)
	planfixWantFail(t, status, m, 400, 41)

	if status, _ := call("POST", "/rest/contact/1", `{"email":"new@example.com","phones":[]}`); status != 200 {
		t.Errorf("update contact = %d", status)
	}
	if c := p.Contacts()[0]; c.Email != "new@example.com" || len(c.Phones) != 0 || c.Name != "Ivan" {
		t.Errorf("after update: %+v", c)
	}
	status, m = call("POST", "/rest/contact/1", `{"template":{"id":99}}`)
	if f, ok := m["failures"].(map[string]any); status != 200 || !ok || f["field"] != "template" {
		t.Errorf("update with a bad template = %d %v", status, m)
	}
	status, m = call("POST", "/rest/contact/77", `{"name":"x"}`)
	planfixWantFail(t, status, m, 404, 2000)
	if status, m := call("GET", "/rest/contact/contact:1?fields=name", ""); status != 200 || m["contact"].(map[string]any)["name"] != "Ivan" {
		t.Errorf("get contact = %d %v", status, m)
	}

	status, m = call("GET", "/rest/user/user:5?fields=id,name,lastname,email", "")
	if u, _ := m["user"].(map[string]any); status != 200 || u["email"] != "anna@example.com" || u["lastname"] != "Petrova" {
		t.Errorf("get user = %d %v", status, m)
	}
	status, m = call("GET", "/rest/user/9", "")
	planfixWantFail(t, status, m, 400, 4000) // as the spec's example
	p.AddUser(PlanfixUser{ID: 9, Name: "Gone", Email: "gone@example.com", Inactive: true})
	for body, want := range map[string]int{`{}`: 4, `{"onlyActive":true}`: 3, `{"filters":[{"type":9003,"operator":"equal","value":"BORIS@example.com"}]}`: 1} {
		status, m := call("POST", "/rest/user/list", body)
		if us, _ := m["users"].([]any); status != 200 || len(us) != want {
			t.Errorf("user list %s = %d, %d users; want %d", body, status, len(us), want)
		}
	}

	status, m = call("GET", "/rest/process/task", "")
	if ps, _ := m["processes"].([]any); status != 200 || len(ps) != 1 || ps[0].(map[string]any)["name"] != "Chats" {
		t.Errorf("processes = %d %v", status, m)
	}
	status, m = call("GET", "/rest/process/task/1/statuses?fields=id,isActive", "")
	ss, _ := m["statuses"].([]any)
	if status != 200 || len(ss) != 3 || ss[2].(map[string]any)["isActive"] != false || ss[0].(map[string]any)["isActive"] != true || ss[0].(map[string]any)["name"] != nil {
		t.Errorf("statuses = %d %v", status, m)
	}
	status, m = call("GET", "/rest/process/task/5/statuses", "")
	planfixWantFail(t, status, m, 400, 41)

	status, m = call("GET", "/rest/task/templates?offset=0&pageSize=100&fields=id,name,processId", "")
	if ts, _ := m["templates"].([]any); status != 200 || len(ts) != 1 || ts[0].(map[string]any)["id"] != float64(101) || ts[0].(map[string]any)["processId"] != float64(1) {
		t.Errorf("task templates = %d %v", status, m)
	}
	status, m = call("GET", "/rest/contact/templates?fields=id,name", "")
	if ts, _ := m["templates"].([]any); status != 200 || len(ts) != 1 || ts[0].(map[string]any)["id"] != float64(7) {
		t.Errorf("contact templates = %d %v", status, m)
	}
	status, m = call("GET", "/rest/contact/templates?pageSize=abc", "")
	planfixWantFail(t, status, m, 400, 41)
}

func TestPlanfixBadRequests(t *testing.T) {
	_, srv := planfixTestServer(t)
	for _, tc := range []struct {
		method, path, body string
		status, code       int
	}{
		{"GET", "/rest/nothing", "", 404, 0},
		{"DELETE", "/rest/task/1", "", 404, 0},
		{"POST", "/rest/task/list", `[1,2]`, 400, 30},
		{"POST", "/rest/task/list", `{"filters":[{"type":"x"}]}`, 400, 30},
		{"POST", "/rest/contact/list", "\x00\xff", 400, 30},
		{"GET", "/rest/task/abc", "", 404, 1000},
		{"GET", "/rest/user/contact:5", "", 400, 4000},
		{"POST", "/rest/task/1/comments/", `{"description":5}`, 400, 30},
	} {
		status, m, _ := planfixCall(t, srv.URL, tc.method, tc.path, planfixTestToken, tc.body)
		if status != tc.status || m["result"] != "fail" || m["code"] != float64(tc.code) {
			t.Errorf("%s %s %s = %d %v; want %d code %d", tc.method, tc.path, tc.body, status, m, tc.status, tc.code)
		}
	}
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`
	status, m, _ := planfixCall(t, srv.URL, "POST", "/rest/task/", planfixTestToken, big)
	planfixWantFail(t, status, m, 400, 30)
}

// TestPlanfixConcurrent exercises the sandbox from many goroutines (run with -race).
func TestPlanfixConcurrent(t *testing.T) {
	p, srv := planfixTestServer(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				status, _, _ := planfixCall(t, srv.URL, "POST", "/rest/task/", planfixTestToken, fmt.Sprintf(`{"name":"t%d-%d"}`, i, j))
				if status != 201 {
					t.Errorf("create: %d", status)
				}
				_ = p.Tasks()
				_ = p.RequestLog()
			}
		}()
	}
	wg.Wait()
	tasks := p.Tasks()
	seen := map[int64]bool{}
	for _, task := range tasks {
		seen[task.ID] = true
	}
	if len(tasks) != 80 || len(seen) != 80 || !seen[1] || !seen[80] {
		t.Errorf("%d tasks with %d distinct ids, want 80 numbered 1..80", len(tasks), len(seen))
	}
}

// The modes of a Planfix that does not keep a contact as a task's assigner: silently
// keeping the robot user, or refusing in Russian without naming the parameter. A user
// as assigner is unaffected; the counterparty filter finds the contact's tasks.
func TestPlanfixContactAssignerModes(t *testing.T) {
	p, srv := planfixTestServer(t)
	call := func(method, path, body string) (int, map[string]any) {
		status, m, _ := planfixCall(t, srv.URL, method, path, planfixTestToken, body)
		return status, m
	}
	contact := p.AddContact(PlanfixContact{Name: "Ivan"})
	withContact := fmt.Sprintf(`{"template":{"id":101},"name":"Chat","assigner":{"id":"contact:%d"}}`, contact)

	p.SetKeepUserAsAssigner(true)
	status, m := call("POST", "/rest/task/", withContact)
	if status != 201 {
		t.Fatalf("create, keeping a user = %d %v", status, m)
	}
	id := int64(m["id"].(float64))
	if task, _ := p.Task(id); task.Assigner != fmt.Sprintf("user:%d", PlanfixRobotUserID) {
		t.Errorf("assigner kept = %q, want the robot user", task.Assigner)
	}
	if status, m := call("POST", fmt.Sprintf("/rest/task/%d", id), fmt.Sprintf(`{"counterparty":{"id":"contact:%d"}}`, contact)); status != 200 {
		t.Fatalf("set counterparty = %d %v", status, m)
	}
	p.SetKeepUserAsAssigner(false)

	p.SetRefuseContactAsAssigner(true)
	status, m = call("POST", "/rest/task/", withContact)
	planfixWantFail(t, status, m, 400, 41)
	if msg, _ := m["error"].(string); strings.Contains(strings.ToLower(msg), "assigner") || msg == "" {
		t.Errorf("refusal %q: want Russian, without the parameter's name", msg)
	}
	if status, m := call("POST", "/rest/task/", `{"template":{"id":101},"name":"Chat","assigner":{"id":"user:5"}}`); status != 201 {
		t.Errorf("a user as assigner = %d %v", status, m)
	}
	p.SetRefuseContactAsAssigner(false)

	for _, value := range []string{fmt.Sprint(contact), fmt.Sprintf(`"contact:%d"`, contact)} {
		status, m = call("POST", "/rest/task/list", `{"fields":"id","filters":[{"type":7,"operator":"equal","value":`+value+`}]}`)
		tasks, _ := m["tasks"].([]any)
		if status != 200 || len(tasks) != 1 || tasks[0].(map[string]any)["id"] != float64(id) {
			t.Errorf("tasks of counterparty %s = %d %v, want task %d", value, status, m, id)
		}
	}
}
