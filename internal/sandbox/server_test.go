package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// start serves a sandbox without Planfix's rate limit on a free port, closed at the end
// of the test.
func start(t *testing.T, o sandbox.Options) *sandbox.Server {
	t.Helper()
	if o.PlanfixInterval == 0 {
		o.PlanfixInterval = -1
	}
	s := sandbox.New(o)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// json decodes the body into a generic value (nil when it is not JSON).
func (a answer) json() any {
	var v any
	_ = json.Unmarshal(a.body, &v)
	return v
}

// call sends one request with the given client (a default one when nil).
func call(c *http.Client, method, url, auth, body string) answer {
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return answer{err: err}
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// field walks decoded JSON by keys and indexes ("tasks", 0, "name").
func field(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

const (
	planfixAuth = "Bearer " + sandbox.DefaultPlanfixToken
	chatraAuth  = "Chatra.Simple " + sandbox.DefaultChatraPublicKey + ":" + sandbox.DefaultChatraSecretKey
)

func planfixClient(s *sandbox.Server, timeout time.Duration) *planfix.Client {
	return planfix.NewClient(planfix.Config{BaseURL: s.PlanfixURL() + "/rest", Token: secrets.String(sandbox.DefaultPlanfixToken),
		Timeout: timeout}, nil, nil)
}

func chatraClient(s *sandbox.Server, timeout time.Duration) *chatra.Client {
	return chatra.NewClient(chatra.Config{APIURL: s.ChatraURL(), PublicKey: sandbox.DefaultChatraPublicKey,
		SecretKey: sandbox.DefaultChatraSecretKey, Timeout: timeout}, nil)
}

// seedClient creates a visitor card through the inspection API, as the demo does.
func seedClient(t *testing.T, s *sandbox.Server, id string) {
	t.Helper()
	a := call(nil, http.MethodPut, s.URL()+"/_sandbox/chatra/clients/"+id, "", `{"name":"Ivan","email":"ivan@example.com"}`)
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("seed client: %d %s %v", a.status, a.body, a.err)
	}
}

// The project's own clients reach both stand-ins through their prefixes, and the state
// endpoint shows what they did.
func TestServerRoutesBothAPIsAndShowsState(t *testing.T) {
	s := start(t, sandbox.Options{})
	ctx := context.Background()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.ChatraURL() != s.URL()+"/chatra" || s.PlanfixURL() != s.URL()+"/planfix" {
		t.Fatalf("URLs: %q %q %q", s.URL(), s.ChatraURL(), s.PlanfixURL())
	}

	pf := planfixClient(s, 5*time.Second)
	if err := pf.Ping(ctx); err != nil {
		t.Fatalf("planfix ping through /planfix/rest: %v", err)
	}
	contact, err := pf.CreateContact(ctx, planfix.NewContact{TemplateID: sandbox.PlanfixContactTemplateID, Name: "Ivan", Email: "ivan@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pf.AddContactComment(ctx, contact, planfix.NewComment{Description: "reached out through chat"}); err != nil {
		t.Fatal(err)
	}
	task, err := pf.CreateTask(ctx, planfix.NewTask{TemplateID: sandbox.PlanfixTaskTemplateID, Name: "Chat with Ivan",
		Assigner: planfix.ContactID(contact), Assignees: []planfix.PersonID{planfix.UserID(5)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pf.AddTaskComment(ctx, task, planfix.NewComment{Description: "Hi, where is my order?", Owner: planfix.ContactID(contact)}); err != nil {
		t.Fatal(err)
	}

	seedClient(t, s, "visitor-1")
	ch := chatraClient(s, 5*time.Second)
	sent, err := ch.SendMessage(ctx, chatra.SendMessageInput{ClientID: "visitor-1", Text: "It ships today",
		AgentEmail: "anna@example.com", AgentName: "Anna", ReceivedFrom: "chatrabridge"})
	if err != nil {
		t.Fatalf("chatra send through /chatra/api: %v", err)
	}

	// Wrong credentials get each API's own refusal, under its prefix.
	if a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", "Bearer wrong", ""); a.status != 401 || field(a.json(), "result") != "fail" || field(a.json(), "code") != 1.0 {
		t.Errorf("planfix with a wrong token: %d %s", a.status, a.body)
	}
	if a := call(nil, http.MethodGet, s.ChatraURL()+"/api/clients/visitor-1", "Chatra.Simple x:y", ""); a.status != 401 || field(a.json(), "status") != 401.0 {
		t.Errorf("chatra with wrong keys: %d %s", a.status, a.body)
	}
	// The Chatra stand-in's inspection API is not reachable below the API's base.
	if a := call(nil, http.MethodGet, s.ChatraURL()+"/_sandbox/messages", "", ""); a.status != 404 {
		t.Errorf("/chatra/_sandbox/messages: %d %s, want 404", a.status, a.body)
	}
	if a := call(nil, http.MethodGet, s.URL()+"/nowhere", "", ""); a.status != 404 || field(a.json(), "error") == nil {
		t.Errorf("/nowhere: %d %s", a.status, a.body)
	}
	if a := call(nil, http.MethodGet, s.URL()+"/", "", ""); a.status != 200 || field(a.json(), "state") != "/_sandbox/state" {
		t.Errorf("index: %d %s", a.status, a.body)
	}

	a := call(nil, http.MethodGet, s.URL()+"/_sandbox/state", "", "")
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("state: %d %s", a.status, a.body)
	}
	raw := a.json()
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"planfix", "tasks", 0, "name"}, "Chat with Ivan"},
		{[]any{"planfix", "tasks", 0, "templateId"}, float64(sandbox.PlanfixTaskTemplateID)},
		{[]any{"planfix", "tasks", 0, "status", "name"}, "New"},
		{[]any{"planfix", "tasks", 0, "status", "isActive"}, true},
		{[]any{"planfix", "tasks", 0, "assigner"}, fmt.Sprintf("contact:%d", contact)},
		{[]any{"planfix", "tasks", 0, "assignees", 0}, "user:5"},
		{[]any{"planfix", "tasks", 0, "comments", 0, "description"}, "Hi, where is my order?"},
		{[]any{"planfix", "tasks", 0, "comments", 0, "owner"}, fmt.Sprintf("contact:%d", contact)},
		{[]any{"planfix", "contacts", 0, "email"}, "ivan@example.com"},
		{[]any{"planfix", "contacts", 0, "comments", 0, "description"}, "reached out through chat"},
		{[]any{"planfix", "requests"}, 6.0}, // five calls and the wrong token
		{[]any{"chatra", "messages", 0, "id"}, sent.ID},
		{[]any{"chatra", "messages", 0, "text"}, "It ships today"},
		{[]any{"chatra", "messages", 0, "receivedFrom"}, "chatrabridge"},
		{[]any{"chatra", "clients", 0, "id"}, "visitor-1"},
		{[]any{"chatra", "clients", 0, "email"}, "ivan@example.com"},
		{[]any{"chatra", "requests"}, 2.0}, // the message and the wrong keys
		{[]any{"requests", "planfix", "total"}, 6.0},
		{[]any{"requests", "chatra", "total"}, 2.0},
		{[]any{"requests", "chatra", "faults", "5xx"}, 0.0},
		{[]any{"faults", "chatra"}, nil},
	}
	for _, c := range checks {
		if got := field(raw, c.path...); got != c.want {
			t.Errorf("state %v = %v, want %v", c.path, got, c.want)
		}
	}
	// The Go view says the same.
	st := s.State()
	if len(st.Planfix.Tasks) != 1 || len(st.Planfix.Tasks[0].Comments) != 1 || len(st.Chatra.Messages) != 1 || st.Requests[sandbox.TargetPlanfix].Total != 6 {
		t.Errorf("State() = %+v", st)
	}
}

// Without faults, the server's count of Planfix requests is the stand-in's, refused
// ones included.
func TestServerRequestCountsAgree(t *testing.T) {
	s := start(t, sandbox.Options{})
	for range 3 {
		call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "")
	}
	call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", "Bearer nope", "")
	st := s.State()
	if st.Planfix.Requests != 4 || st.Requests[sandbox.TargetPlanfix].Total != 4 {
		t.Fatalf("planfix stand-in counted %d, server %d; want 4 and 4", st.Planfix.Requests, st.Requests[sandbox.TargetPlanfix].Total)
	}
}

// Without PlanfixInterval, Planfix's real limit of one request per second holds under
// /planfix, with its 429 answer.
func TestServerKeepsPlanfixRateLimitByDefault(t *testing.T) {
	s := sandbox.New(sandbox.Options{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "")
	second := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "")
	if first.status != 200 || second.status != 429 || second.header.Get("Retry-After") == "" || field(second.json(), "result") != "fail" {
		t.Fatalf("two pings at once: %d then %d %s", first.status, second.status, second.body)
	}
	if a := call(nil, http.MethodPut, s.URL()+"/_sandbox/planfix/rate-interval", "", `{"interval":"0s"}`); a.status != 204 {
		t.Fatalf("rate-interval: %d %s", a.status, a.body)
	}
	if a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, ""); a.status != 200 {
		t.Fatalf("after turning the limit off: %d", a.status)
	}
}

// An employee's reply can be written into a task over HTTP (the demo's step), read back
// through the REST API, and the task's status changed.
func TestServerPlanfixInspection(t *testing.T) {
	s := start(t, sandbox.Options{})
	ctx := context.Background()
	pf := planfixClient(s, 5*time.Second)
	task, err := pf.CreateTask(ctx, planfix.NewTask{TemplateID: sandbox.PlanfixTaskTemplateID, Name: "Chat"})
	if err != nil {
		t.Fatal(err)
	}
	base := s.URL() + "/_sandbox/planfix"
	taskURL := fmt.Sprintf("%s/tasks/%d", base, task)

	a := call(nil, http.MethodPost, taskURL+"/comments", "", `{"owner":"user:5","description":"We will call you back"}`)
	id, _ := field(a.json(), "id").(float64)
	if a.status != 201 || id <= 0 {
		t.Fatalf("add comment: %d %s", a.status, a.body)
	}
	c, err := pf.GetComment(ctx, int64(id))
	if err != nil || c.Description != "We will call you back" || c.Owner == nil || c.Owner.ID != planfix.UserID(5) {
		t.Fatalf("the comment through the REST API: %+v %v", c, err)
	}
	if a := call(nil, http.MethodPut, taskURL+"/status", "", `{"id":3}`); a.status != 204 {
		t.Fatalf("status: %d %s", a.status, a.body)
	}
	a = call(nil, http.MethodGet, taskURL, "", "")
	if a.status != 200 || field(a.json(), "status", "id") != 3.0 || field(a.json(), "status", "isActive") != false ||
		field(a.json(), "comments", 0, "owner") != "user:5" {
		t.Fatalf("task: %d %s", a.status, a.body)
	}
	if a := call(nil, http.MethodGet, base+"/tasks", "", ""); a.status != 200 || field(a.json(), 0, "id") != float64(task) {
		t.Errorf("tasks: %d %s", a.status, a.body)
	}
	if a := call(nil, http.MethodGet, base+"/contacts", "", ""); a.status != 200 || string(bytes.TrimSpace(a.body)) != "[]" {
		t.Errorf("contacts: %d %s", a.status, a.body)
	}
	a = call(nil, http.MethodGet, base+"/requests", "", "")
	if a.status != 200 || field(a.json(), 0, "path") != "/rest/task/" || field(a.json(), 0, "status") != 201.0 {
		t.Errorf("requests: %d %s", a.status, a.body)
	}
	if bytes.Contains(a.body, []byte(sandbox.DefaultPlanfixToken)) {
		t.Error("the request log shows the token")
	}

	// Queued one-off faults: the next two requests fail as asked, the third passes.
	if a := call(nil, http.MethodPost, base+"/faults", "", `{"status":503,"code":0,"message":"maintenance","count":2}`); a.status != 204 {
		t.Fatalf("queue faults: %d %s", a.status, a.body)
	}
	for i, want := range []int{503, 503, 200} {
		if a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, ""); a.status != want {
			t.Errorf("ping %d after queueing: %d, want %d", i, a.status, want)
		}
	}
	call(nil, http.MethodPost, base+"/faults", "", `{"status":500}`)
	if a := call(nil, http.MethodDelete, base+"/faults", "", ""); a.status != 204 {
		t.Fatalf("clear queued faults: %d", a.status)
	}
	if a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, ""); a.status != 200 {
		t.Errorf("ping after clearing: %d", a.status)
	}

	// Bad input is refused with a JSON error, never a crash.
	bad := []struct{ method, url, body string }{
		{http.MethodPost, base + "/tasks/999/comments", `{"owner":"user:5","description":"x"}`},
		{http.MethodPost, base + "/tasks/abc/comments", `{"owner":"user:5","description":"x"}`},
		{http.MethodPost, taskURL + "/comments", `{"owner":"user:99","description":"x"}`},
		{http.MethodPost, taskURL + "/comments", `{"owner":"user:5"}`},
		{http.MethodPost, taskURL + "/comments", `{"owner":"user:5","description":"x","extra":1}`},
		{http.MethodPost, taskURL + "/comments", `[1]`},
		{http.MethodPost, taskURL + "/comments", `null`},
		{http.MethodPost, taskURL + "/comments", `{"description":"x"}{}`},
		{http.MethodPut, taskURL + "/status", `{"id":77}`},
		{http.MethodPut, taskURL + "/status", `{"id":"x"}`},
		{http.MethodGet, base + "/tasks/0", ""},
		{http.MethodPost, base + "/faults", `{"status":7000}`},
		{http.MethodPost, base + "/faults", `{}`},
		{http.MethodPost, base + "/faults", `{"status":500,"count":-1}`},
		{http.MethodPost, base + "/faults", `{"delay":"soon"}`},
		{http.MethodPut, base + "/rate-interval", `{"interval":"-1s"}`},
		{http.MethodGet, base + "/nothing", ""},
		{http.MethodPost, s.URL() + "/_sandbox/state", ""},
	}
	for _, b := range bad {
		a := call(nil, b.method, b.url, "", b.body)
		if a.status < 400 || a.status > 499 || field(a.json(), "error") == nil {
			t.Errorf("%s %s %s: %d %s, want a 4xx with an error", b.method, b.url, b.body, a.status, a.body)
		}
	}
	if st := s.State(); len(st.Planfix.Tasks[0].Comments) != 1 || st.Planfix.Tasks[0].Status.ID != 3 {
		t.Errorf("a refused call changed the state: %+v", st.Planfix.Tasks[0])
	}
}

// setFaults posts a policy over HTTP and fails the test unless it is accepted.
func setFaults(t *testing.T, s *sandbox.Server, body string) any {
	t.Helper()
	a := call(nil, http.MethodPost, s.URL()+"/_sandbox/faults", "", body)
	if a.status != 200 {
		t.Fatalf("POST /_sandbox/faults %s: %d %s", body, a.status, a.body)
	}
	return a.json()
}

// At rate 1 every request of the target fails with the target's own error shape (which
// the project's clients classify as retryable), the other API is untouched, and the
// counts say so.
func TestFaultRateOne(t *testing.T) {
	s := start(t, sandbox.Options{})
	ctx := context.Background()
	seedClient(t, s, "v1")
	pf, ch := planfixClient(s, 5*time.Second), chatraClient(s, 5*time.Second)

	got := setFaults(t, s, `{"target":"planfix","rate":1,"kinds":["5xx"]}`)
	if field(got, "planfix", "policy", "rate") != 1.0 || field(got, "planfix", "policy", "kinds", 0) != "5xx" || field(got, "chatra") != nil {
		t.Fatalf("the answer does not show the policy: %v", got)
	}
	for range 5 {
		a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "")
		if a.status < 500 || a.status > 599 || field(a.json(), "result") != "fail" || a.header.Get("X-Sandbox-Fault") != "5xx" {
			t.Fatalf("planfix under 5xx at rate 1: %d %s", a.status, a.body)
		}
	}
	var pfe *planfix.Error
	if err := pf.Ping(ctx); !errors.As(err, &pfe) || pfe.Kind != planfix.KindUnavailable || !pfe.Retryable {
		t.Errorf("planfix client on a 5xx fault: %#v", err)
	}
	if a := call(nil, http.MethodGet, s.ChatraURL()+"/api/clients/v1", chatraAuth, ""); a.status != 200 {
		t.Errorf("chatra under a planfix-only policy: %d %s", a.status, a.body)
	}

	setFaults(t, s, `{"target":"planfix","rate":1,"kinds":["429"]}`)
	a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "")
	if a.status != 429 || a.header.Get("Retry-After") != "1" || field(a.json(), "result") != "fail" {
		t.Errorf("planfix 429 fault: %d %v %s", a.status, a.header, a.body)
	}
	if err := pf.Ping(ctx); !errors.As(err, &pfe) || pfe.Kind != planfix.KindUnavailable || !pfe.Retryable || pfe.RetryAfter != time.Second {
		t.Errorf("planfix client on a 429 fault: %#v", err)
	}

	setFaults(t, s, `{"target":"chatra","rate":1,"kinds":["429"]}`)
	var che *chatra.Error
	if _, err := ch.GetClient(ctx, "v1"); !errors.As(err, &che) || che.Kind != chatra.KindRateLimited || che.RetryAfter != time.Second {
		t.Errorf("chatra client on a 429 fault: %#v", err)
	}
	setFaults(t, s, `{"target":"chatra","rate":1,"kinds":["5xx"]}`)
	a = call(nil, http.MethodGet, s.ChatraURL()+"/api/clients/v1", chatraAuth, "")
	if a.status < 500 || field(a.json(), "status") != float64(a.status) || field(a.json(), "message") == nil {
		t.Errorf("chatra 5xx fault: %d %s", a.status, a.body)
	}
	if _, err := ch.GetClient(ctx, "v1"); !errors.As(err, &che) || che.Kind != chatra.KindUnavailable || !che.Retryable {
		t.Errorf("chatra client on a 5xx fault: %#v", err)
	}

	// A reset: no answer at all.
	setFaults(t, s, `{"target":"both","rate":1,"kinds":["reset"]}`)
	if a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, ""); a.err == nil {
		t.Errorf("reset fault answered %d", a.status)
	}
	if err := pf.Ping(ctx); !errors.As(err, &pfe) || pfe.Kind != planfix.KindNetwork {
		t.Errorf("planfix client on a reset: %#v", err)
	}

	counts := s.RequestCounts()
	// (Go's transport may resend a GET once after a reset, hence "at least" for resets.)
	if c := counts[sandbox.TargetPlanfix]; c.Faults[sandbox.Fault5xx] != 6 || c.Faults[sandbox.Fault429] != 2 || c.Faults[sandbox.FaultReset] < 2 {
		t.Errorf("planfix counts: %+v", c)
	}
	if c := counts[sandbox.TargetChatra]; c.Faults[sandbox.Fault429] != 1 || c.Faults[sandbox.Fault5xx] != 2 {
		t.Errorf("chatra counts: %+v", c)
	}
	// Injected faults never reach the stand-in.
	if n := len(s.Planfix().RequestLog()); n != 0 {
		t.Errorf("the Planfix stand-in saw %d requests, want 0", n)
	}
}

// At rate 0 nothing fails, but the latency holds every request back.
func TestFaultRateZeroWithLatency(t *testing.T) {
	s := start(t, sandbox.Options{})
	setFaults(t, s, `{"target":"both","rate":0,"latency":"150ms"}`)
	for range 5 {
		began := time.Now()
		a := call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "")
		if took := time.Since(began); a.status != 200 || took < 150*time.Millisecond {
			t.Fatalf("rate 0 with latency: %d after %s", a.status, took)
		}
	}
	c := s.RequestCounts()[sandbox.TargetPlanfix]
	if c.Total != 5 || c.Faults[sandbox.Fault5xx]+c.Faults[sandbox.Fault429]+c.Faults[sandbox.FaultTimeout] != 0 {
		t.Errorf("counts: %+v", c)
	}
}

// outcome names what happened to one request.
func outcome(a answer) string {
	var ne net.Error
	switch {
	case errors.As(a.err, &ne) && ne.Timeout():
		return "timeout"
	case a.err != nil:
		return "error: " + a.err.Error()
	case a.status == 200:
		return "ok"
	default:
		return strconv.Itoa(a.status)
	}
}

// run sends n pings to Planfix, each on a new connection (so that Go's transport never
// resends one), and names the outcomes. The server must have a short MaxHang: a timeout
// fault then ends in a dropped connection, "error".
func run(s *sandbox.Server, n int) []string {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	out := make([]string, n)
	for i := range out {
		out[i] = outcome(call(c, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, ""))
		if strings.HasPrefix(out[i], "error: ") {
			out[i] = "dropped"
		}
	}
	return out
}

// A seeded policy at rate 0.3 produces each kind, at about that rate, and the same
// faults again for the same seed.
func TestFaultSeededRate(t *testing.T) {
	const n = 150
	policy := sandbox.FaultPolicy{Target: sandbox.TargetPlanfix, Rate: 0.3, Seed: 42,
		Kinds: []sandbox.FaultKind{sandbox.Fault5xx, sandbox.Fault429, sandbox.FaultTimeout}}

	hang := sandbox.Options{MaxHang: 20 * time.Millisecond}
	a := start(t, hang)
	if err := a.SetFaults(policy); err != nil {
		t.Fatal(err)
	}
	first := run(a, n)
	seen := map[string]int{}
	for _, o := range first {
		switch {
		case o == "ok", o == "429":
			seen[o]++
		case o == "dropped":
			seen["timeout"]++
		case o == "500", o == "502", o == "503":
			seen["5xx"]++
		default:
			t.Fatalf("unexpected outcome %q", o)
		}
	}
	failed := n - seen["ok"]
	if seen["5xx"] == 0 || seen["429"] == 0 || seen["timeout"] == 0 || failed < n*15/100 || failed > n*45/100 {
		t.Fatalf("rate 0.3 over %d requests gave %v", n, seen)
	}
	c := a.RequestCounts()[sandbox.TargetPlanfix]
	if c.Faults[sandbox.Fault5xx] != seen["5xx"] || c.Faults[sandbox.Fault429] != seen["429"] || c.Faults[sandbox.FaultTimeout] != seen["timeout"] {
		t.Errorf("counts %+v disagree with what the client saw %v", c, seen)
	}

	b := start(t, hang)
	body, _ := json.Marshal(policy) // the same policy, over HTTP this time
	setFaults(t, b, string(body))
	if second := run(b, n); !slices.Equal(first, second) {
		t.Errorf("the same seed gave other faults:\n%v\n%v", first, second)
	}
	policy.Seed = 43
	c2 := start(t, hang)
	if err := c2.SetFaults(policy); err != nil {
		t.Fatal(err)
	}
	if third := run(c2, n); slices.Equal(first, third) {
		t.Error("another seed gave the same faults")
	}
}

// A timeout fault holds the request until the client gives up: the client sees a
// timeout, not an answer; the project's clients see a retryable network error.
func TestFaultTimeout(t *testing.T) {
	s := start(t, sandbox.Options{})
	seedClient(t, s, "v1")
	setFaults(t, s, `{"target":"chatra","rate":1,"kinds":["timeout"]}`)

	began := time.Now()
	a := call(&http.Client{Timeout: 200 * time.Millisecond}, http.MethodPost, s.ChatraURL()+"/api/messages/", chatraAuth,
		`{"clientId":"v1","text":"hi","agentId":"a1"}`)
	took := time.Since(began)
	if outcome(a) != "timeout" || took < 200*time.Millisecond || took > 3*time.Second {
		t.Fatalf("timeout fault: %s after %s", outcome(a), took)
	}
	_, err := chatraClient(s, 200*time.Millisecond).GetClient(context.Background(), "v1")
	var che *chatra.Error
	if !errors.As(err, &che) || che.Kind != chatra.KindNetwork || !che.Retryable {
		t.Fatalf("chatra client on a timeout fault: %#v", err)
	}
	if msgs := s.Chatra().Messages(); len(msgs) != 0 {
		t.Errorf("a timed-out send was delivered: %v", msgs)
	}
}

// Close releases a request held by a timeout fault whose client would wait forever.
func TestCloseReleasesHungRequests(t *testing.T) {
	s := sandbox.New(sandbox.Options{PlanfixInterval: -1})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFaults(sandbox.FaultPolicy{Target: sandbox.TargetPlanfix, Rate: 1, Kinds: []sandbox.FaultKind{sandbox.FaultTimeout}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan answer, 1)
	go func() { done <- call(&http.Client{}, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "") }()
	// Wait until the request is held.
	for deadline := time.Now().Add(5 * time.Second); s.RequestCounts()[sandbox.TargetPlanfix].Total == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never arrived")
		}
	}
	select {
	case a := <-done:
		t.Fatalf("the hung request was answered: %s", outcome(a))
	case <-time.After(200 * time.Millisecond):
	}
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		if a.err == nil {
			t.Errorf("the released request got an answer %d, want a dropped connection", a.status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Close took %s", took)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// Faults clear by DELETE (for one target or all), by SetFaults' counterpart, and by
// themselves after their duration.
func TestFaultsClear(t *testing.T) {
	s := start(t, sandbox.Options{})
	seedClient(t, s, "v1")
	ping := func() int { return call(nil, http.MethodGet, s.PlanfixURL()+"/rest/ping", planfixAuth, "").status }
	client := func() int { return call(nil, http.MethodGet, s.ChatraURL()+"/api/clients/v1", chatraAuth, "").status }

	setFaults(t, s, `{"target":"both","rate":1,"kinds":["5xx"]}`)
	if ping() < 500 || client() < 500 {
		t.Fatal("the policy is not in force")
	}
	a := call(nil, http.MethodDelete, s.URL()+"/_sandbox/faults?target=chatra", "", "")
	if a.status != 200 || field(a.json(), "chatra") != nil || field(a.json(), "planfix", "policy", "target") != "planfix" {
		t.Fatalf("clear chatra: %d %s", a.status, a.body)
	}
	if ping() < 500 || client() != 200 {
		t.Fatal("clearing chatra's policy did not leave planfix's alone")
	}
	if a := call(nil, http.MethodDelete, s.URL()+"/_sandbox/faults", "", ""); a.status != 200 || field(a.json(), "planfix") != nil {
		t.Fatalf("clear all: %d %s", a.status, a.body)
	}
	if ping() != 200 {
		t.Fatal("faults remain after DELETE")
	}
	if a := call(nil, http.MethodDelete, s.URL()+"/_sandbox/faults?target=jira", "", ""); a.status != 400 {
		t.Errorf("clear an unknown target: %d", a.status)
	}

	got := setFaults(t, s, `{"target":"planfix","rate":1,"kinds":["429"],"duration":"300ms"}`)
	if field(got, "planfix", "until") == nil || field(got, "planfix", "policy", "duration") != "300ms" {
		t.Errorf("a policy with a duration shows no end: %v", got)
	}
	if ping() != 429 {
		t.Fatal("the timed policy is not in force")
	}
	time.Sleep(400 * time.Millisecond)
	if ping() != 200 {
		t.Fatal("the policy outlived its duration")
	}
	if a := call(nil, http.MethodGet, s.URL()+"/_sandbox/faults", "", ""); field(a.json(), "planfix") != nil {
		t.Errorf("an expired policy is still shown: %s", a.body)
	}

	if err := s.SetFaults(sandbox.FaultPolicy{Rate: 1, Kinds: []sandbox.FaultKind{sandbox.Fault5xx}}); err != nil {
		t.Fatal(err)
	}
	if ping() < 500 || client() < 500 {
		t.Fatal("an empty target does not mean both")
	}
	if !s.ClearFaults(sandbox.TargetBoth) || ping() != 200 || client() != 200 {
		t.Fatal("ClearFaults(both) left faults")
	}
}

// Bad policies are refused, naming the problem, and change nothing.
func TestFaultPolicyValidation(t *testing.T) {
	s := start(t, sandbox.Options{})
	setFaults(t, s, `{"target":"chatra","rate":0.5,"seed":7}`)
	bad := map[string]string{
		`{"target":"planfix","rate":1.5}`:                     "rate",
		`{"target":"planfix","rate":-0.1}`:                    "rate",
		`{"target":"jira","rate":1}`:                          "target",
		`{"target":"planfix","rate":1,"kinds":["teapot"]}`:    "kind",
		`{"target":"planfix","rate":1,"kind":["5xx"]}`:        "kind",
		`{"target":"planfix","rate":1,"latency":"fast"}`:      "latency",
		`{"target":"planfix","rate":1,"duration":"-5s"}`:      "duration",
		`{"target":"planfix","rate":1,"latency":"-1ms"}`:      "latency",
		`{"target":"planfix","rate":"1"}`:                     "rate",
		`null`:                                                "object",
		``:                                                    "object",
		`[]`:                                                  "object",
		`{"target":"planfix","rate":1}{"target":"chatra"}`:    "one",
		`{"target":"planfix","rate":1e400}`:                   "rate",
		`{"target":"planfix","rate":1,"seed":-1}`:             "seed",
		`{"target":"planfix","rate":1,"kinds":"5xx"}`:         "kinds",
		`{"target":"planfix","rate":1,"latency":"1h","x":{}}`: "x",
	}
	for body, word := range bad {
		a := call(nil, http.MethodPost, s.URL()+"/_sandbox/faults", "", body)
		msg, _ := field(a.json(), "error").(string)
		if a.status != 400 || !strings.Contains(msg, word) {
			t.Errorf("POST %s: %d %s, want 400 naming %q", body, a.status, a.body, word)
		}
	}
	f := s.Faults()
	if f.Planfix != nil || f.Chatra == nil || f.Chatra.Policy.Rate != 0.5 || f.Chatra.Policy.Seed != 7 || len(f.Chatra.Policy.Kinds) != 3 {
		t.Errorf("refused policies changed what is in force: %+v", f)
	}
	if err := s.SetFaults(sandbox.FaultPolicy{Target: sandbox.TargetPlanfix, Rate: 2}); err == nil {
		t.Error("SetFaults accepted rate 2")
	}
}

// The JSON form of a policy reads back as the same policy.
func TestFaultPolicyJSON(t *testing.T) {
	p := sandbox.FaultPolicy{Target: sandbox.TargetBoth, Rate: 0.25, Kinds: []sandbox.FaultKind{sandbox.FaultTimeout, sandbox.FaultReset},
		Latency: 200 * time.Millisecond, Duration: time.Minute, Seed: 9}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"target":"both","rate":0.25,"kinds":["timeout","reset"],"latency":"200ms","duration":"1m0s","seed":9}`
	if string(b) != want {
		t.Fatalf("marshal: %s, want %s", b, want)
	}
	var q sandbox.FaultPolicy
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if q.Target != p.Target || q.Rate != p.Rate || !slices.Equal(q.Kinds, p.Kinds) || q.Latency != p.Latency || q.Duration != p.Duration || q.Seed != p.Seed {
		t.Fatalf("round trip: %+v, want %+v", q, p)
	}
}

// Start reports a taken port by number, and a server starts once.
func TestStartErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	s := sandbox.New(sandbox.Options{})
	err = s.Start("127.0.0.1:" + port)
	if err == nil || !strings.Contains(err.Error(), "port "+port+" is in use") {
		t.Fatalf("start on a taken port: %v", err)
	}
	if s.URL() != "" {
		t.Errorf("URL after a failed start: %q", s.URL())
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("Start after Close succeeded")
	}
	if err := sandbox.New(sandbox.Options{}).Start("no-such-host-%%:1"); err == nil {
		t.Error("Start on a bad address succeeded")
	}

	all := sandbox.New(sandbox.Options{})
	if err := all.Start(":0"); err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if !strings.HasPrefix(all.URL(), "http://127.0.0.1:") {
		t.Errorf("URL of a server on all interfaces: %q", all.URL())
	}
}

// Production code never imports the sandbox: only the dev wiring (internal/app), the
// command, the demo (internal/demo, a client of the sandbox's inspection API), the
// benchmarks (bench, a command of their own) and tests may.
func TestProductionDoesNotImportSandbox(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/chatrabridge/chatrabridge/internal/sandbox"
	allowed := []string{self, "github.com/chatrabridge/chatrabridge/internal/app", "github.com/chatrabridge/chatrabridge/cmd/chatrabridge",
		"github.com/chatrabridge/chatrabridge/internal/demo", "github.com/chatrabridge/chatrabridge/bench"}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 {
		t.Fatalf("go list listed %d packages: %s", len(lines), out)
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) == 0 || slices.Contains(allowed, fields[0]) {
			continue
		}
		if slices.Contains(fields[1:], self) {
			t.Errorf("%s imports the sandbox outside its tests", fields[0])
		}
	}
}
