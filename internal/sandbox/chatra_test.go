package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
)

const (
	chatraTestPublic = "pk"
	chatraTestSecret = "sk"
	chatraTestAuth   = "Chatra.Simple pk:sk"
)

// chatraDo sends one request to h and returns the status, the decoded JSON answer (nil
// when it is not JSON) and the headers.
func chatraDo(t *testing.T, h http.Handler, method, target, auth, body string) (int, any, http.Header) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var v any
	_ = json.Unmarshal(w.Body.Bytes(), &v)
	return w.Code, v, w.Header()
}

func chatraField(v any, key string) any {
	m, _ := v.(map[string]any)
	return m[key]
}

func newTestChatra(t *testing.T) *Chatra {
	t.Helper()
	s := NewChatra(chatraTestPublic, chatraTestSecret)
	if err := s.PutClient(chatra.ClientCard{ID: "c1", ChatID: "chat1", Name: "Ivan", Fields: map[string]any{"city": "Berlin"}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChatraAuth(t *testing.T) {
	s := newTestChatra(t)
	for _, auth := range []string{"", "Chatra.Simple pk:wrong", "Chatra.Simple pk", "Bearer sk", "chatra.simple pk:sk", chatraTestAuth + " "} {
		code, body, _ := chatraDo(t, s, http.MethodGet, "/api/clients/c1", auth, "")
		if code != http.StatusUnauthorized || chatraField(body, "status") != float64(401) {
			t.Errorf("auth %q: %d %v, want 401", auth, code, body)
		}
	}
	if code, _, _ := chatraDo(t, s, http.MethodGet, "/api/clients/c1", chatraTestAuth, ""); code != http.StatusOK {
		t.Errorf("right keys: %d", code)
	}
}

func TestChatraSendMessage(t *testing.T) {
	s := newTestChatra(t)
	s.now = func() time.Time { return time.UnixMilli(1700000000123) }
	code, body, _ := chatraDo(t, s, http.MethodPost, "/api/messages/", chatraTestAuth,
		`{"clientId":"c1","text":"hello","agentEmail":"Julia@Example.com","agentName":"Julia","receivedFrom":"bridge","extra":1}`)
	if code != http.StatusOK {
		t.Fatalf("send: %d %v", code, body)
	}
	id, _ := chatraField(body, "id").(string)
	if len(id) != 17 || strings.Trim(id, chatraIDAlphabet) != "" {
		t.Errorf("id = %q, want 17 Meteor-style characters", id)
	}
	for k, want := range map[string]any{"type": "agent", "text": "hello", "clientId": "c1", "receivedFrom": "bridge", "agentName": "Julia", "createdAt": float64(1700000000123)} {
		if got := chatraField(body, k); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	agentID := chatraField(body, "agentId")
	// The same email, in another case, is the same placeholder agent.
	_, again, _ := chatraDo(t, s, http.MethodPost, "/api/messages/", chatraTestAuth,
		`{"clientId":"c1","text":"again","agentEmail":"julia@example.com","agentName":"Other","receivedFrom":"bridge"}`)
	if chatraField(again, "agentId") != agentID || chatraField(again, "agentName") != "Julia" {
		t.Errorf("second message = %v, want agent %v named Julia", again, agentID)
	}
	// By agentId, with a tag.
	_, third, _ := chatraDo(t, s, http.MethodPost, "/api/messages/", chatraTestAuth,
		`{"clientId":"c1","text":"third","agentId":"`+agentID.(string)+`","receivedFrom":"bridge"}`)
	if chatraField(third, "agentName") != "Julia" || chatraField(third, "receivedFrom") != "bridge" {
		t.Errorf("third message = %v", third)
	}

	msgs := s.Messages()
	if len(msgs) != 3 || msgs[0].ID != id || msgs[0].Text != "hello" || msgs[2].Text != "third" {
		t.Fatalf("Messages = %+v", msgs)
	}
	msgs[0].Text = "changed"
	if s.Messages()[0].Text != "hello" {
		t.Errorf("Messages returned the stored slice")
	}
	code, got, _ := chatraDo(t, s, http.MethodGet, "/api/messages/"+id, chatraTestAuth, "")
	if code != http.StatusOK || chatraField(got, "text") != "hello" {
		t.Errorf("get message: %d %v", code, got)
	}
	if code, _, _ := chatraDo(t, s, http.MethodGet, "/api/messages/nope/", chatraTestAuth, ""); code != http.StatusNotFound {
		t.Errorf("unknown message: %d", code)
	}
}

func TestChatraSendMessageValidation(t *testing.T) {
	s := newTestChatra(t)
	long := strings.Repeat("a", 5001)
	emoji := strings.Repeat("😀", 2501)
	tests := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"not JSON", `nope`, 400, "JSON object"},
		{"an array", `[]`, 400, "JSON object"},
		{"two objects", `{}{}`, 400, "one JSON object"},
		{"no clientId", `{"text":"x","agentId":"a"}`, 400, "clientId"},
		{"numeric clientId", `{"clientId":1,"text":"x","agentId":"a"}`, 400, "clientId must be a string"},
		{"no text", `{"clientId":"c1","agentId":"a"}`, 400, "text must be 1 to 5000"},
		{"text too long", `{"clientId":"c1","text":"` + long + `","agentId":"a"}`, 400, "got 5001"},
		{"emoji count twice", `{"clientId":"c1","text":"` + emoji + `","agentId":"a"}`, 400, "got 5002"},
		{"no sender", `{"clientId":"c1","text":"x"}`, 400, "sender is required"},
		{"email sender without tag", `{"clientId":"c1","text":"x","agentEmail":"a@example.com","agentName":"A"}`, 400, "sender is required"},
		{"both senders", `{"clientId":"c1","text":"x","agentId":"a","agentEmail":"a@example.com","agentName":"A","receivedFrom":"t"}`, 400, "either agentId"},
		{"bad email", `{"clientId":"c1","text":"x","agentEmail":"nobody","agentName":"A","receivedFrom":"t"}`, 400, "not an email"},
		{"unknown client", `{"clientId":"c9","text":"x","agentId":"a"}`, 404, "client not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := chatraDo(t, s, http.MethodPost, "/api/messages/", chatraTestAuth, tt.body)
			msg, _ := chatraField(body, "message").(string)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Errorf("%d %v, want %d with %q", code, body, tt.code, tt.msg)
			}
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d refused messages were stored", n)
	}

	req := httptest.NewRequest(http.MethodPost, "/api/messages/", strings.NewReader(`{"clientId":"c1","text":"x","agentId":"a"}`))
	req.Header.Set("Authorization", chatraTestAuth)
	req.Header.Set("Content-Type", "text/plain")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d", w.Code)
	}
	huge := `{"clientId":"c1","text":"x","agentId":"a","pad":"` + strings.Repeat("p", chatraMaxBody) + `"}`
	if code, _, _ := chatraDo(t, s, http.MethodPost, "/api/messages/", chatraTestAuth, huge); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", code)
	}
}

func TestChatraRouting(t *testing.T) {
	s := newTestChatra(t)
	tests := []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/api/messages", 404},
		{http.MethodGet, "/api/messages/", 405},
		{http.MethodDelete, "/api/clients/c1", 405},
		{http.MethodGet, "/api/clients/", 404},
		{http.MethodGet, "/api/clients/c1/extra", 404},
		{http.MethodGet, "/api/clients/c1/", 200},
		{http.MethodGet, "/api/clients/c2", 404},
		{http.MethodGet, "/api/unknown/", 404},
		{http.MethodGet, "/", 404},
	}
	for _, tt := range tests {
		code, body, hdr := chatraDo(t, s, tt.method, tt.path, chatraTestAuth, "")
		if code != tt.code {
			t.Errorf("%s %s = %d %v, want %d", tt.method, tt.path, code, body, tt.code)
		}
		if code == 405 && hdr.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}
}

func TestChatraClients(t *testing.T) {
	s := newTestChatra(t)
	code, body, _ := chatraDo(t, s, http.MethodGet, "/api/clients/c1", chatraTestAuth, "")
	if code != 200 || chatraField(body, "name") != "Ivan" || chatraField(body, "city") != "Berlin" || chatraField(body, "chatId") != "chat1" {
		t.Errorf("get: %d %v", code, body)
	}
	code, body, _ = chatraDo(t, s, http.MethodPut, "/api/clients/c1", chatraTestAuth, `{"email":"i@example.com","notes":"task 12","name":null,"other":5}`)
	if code != 200 || chatraField(body, "email") != "i@example.com" || chatraField(body, "name") != "Ivan" {
		t.Errorf("put: %d %v", code, body)
	}
	card, ok := s.Client("c1")
	if !ok || card.Email != "i@example.com" || card.Notes != "task 12" || card.Name != "Ivan" {
		t.Errorf("Client = %+v, %v", card, ok)
	}
	if code, _, _ := chatraDo(t, s, http.MethodPut, "/api/clients/c1", chatraTestAuth, `{"email":5}`); code != 400 {
		t.Errorf("numeric email: %d", code)
	}
	if code, _, _ := chatraDo(t, s, http.MethodPut, "/api/clients/zz", chatraTestAuth, `{"email":"x@example.com"}`); code != 404 {
		t.Errorf("unknown client: %d", code)
	}

	// Cards handed out and taken in are copies.
	card.Fields["city"] = "Paris"
	if again, _ := s.Client("c1"); again.Fields["city"] != "Berlin" {
		t.Errorf("Client returned stored state")
	}
	fields := map[string]any{"info": map[string]any{"city": "Oslo"}}
	if err := s.PutClient(chatra.ClientCard{ID: "c2", Fields: fields}); err != nil {
		t.Fatal(err)
	}
	fields["info"].(map[string]any)["city"] = "Rome"
	if c2, _ := s.Client("c2"); c2.Visitor().City != "Oslo" {
		t.Errorf("PutClient kept the caller's map")
	}
	if err := s.PutClient(chatra.ClientCard{Name: "no id"}); err == nil {
		t.Errorf("PutClient without an ID succeeded")
	}
	if _, ok := s.Client("nobody"); ok {
		t.Errorf("Client(nobody) exists")
	}
}

func TestChatraFaults(t *testing.T) {
	s := newTestChatra(t)
	s.InjectFault(ChatraFault{PathPrefix: "/api/clients/", Status: 429, RetryAfter: "12", Count: 2})
	s.InjectFault(ChatraFault{Status: 502})

	// The first matching fault wins; a request the first does not match takes the second.
	code, _, _ := chatraDo(t, s, http.MethodGet, "/api/messages/x", chatraTestAuth, "")
	if code != 502 {
		t.Errorf("messages: %d, want 502", code)
	}
	for i := range 2 {
		code, body, hdr := chatraDo(t, s, http.MethodGet, "/api/clients/c1", "", "") // before auth
		if code != 429 || hdr.Get("Retry-After") != "12" || chatraField(body, "error") != "too_many_requests" {
			t.Errorf("clients call %d: %d %v %q", i, code, body, hdr.Get("Retry-After"))
		}
	}
	if code, _, _ := chatraDo(t, s, http.MethodGet, "/api/clients/c1", chatraTestAuth, ""); code != 200 {
		t.Errorf("after the faults: %d", code)
	}
	if n := s.RequestCount(); n != 4 {
		t.Errorf("RequestCount = %d, want 4", n)
	}

	s.InjectFault(ChatraFault{Status: 500, Count: 5})
	s.ClearFaults()
	if code, _, _ := chatraDo(t, s, http.MethodGet, "/api/clients/c1", chatraTestAuth, ""); code != 200 {
		t.Errorf("after ClearFaults: %d", code)
	}

	// A delay ends early when the caller goes away.
	s.InjectFault(ChatraFault{Delay: time.Hour, Status: 500})
	srv := httptest.NewServer(s)
	defer srv.Close()
	client := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	if resp, err := client.Get(srv.URL + "/api/clients/c1"); err == nil {
		resp.Body.Close()
		t.Errorf("a delayed request answered")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the delayed request took %v", d)
	}
}

func TestChatraPaidPlan(t *testing.T) {
	s := newTestChatra(t)
	s.SetPaidPlan(false)
	for _, path := range []string{"/api/clients/c1", "/api/messages/x", "/api/anything"} {
		code, body, _ := chatraDo(t, s, http.MethodGet, path, chatraTestAuth, "")
		if code != http.StatusPaymentRequired || chatraField(body, "error") != "payment_required" {
			t.Errorf("%s: %d %v", path, code, body)
		}
	}
	if code, _, _ := chatraDo(t, s, http.MethodGet, "/api/clients/c1", "", ""); code != 401 {
		t.Errorf("wrong keys without a plan: %d, want 401 first", code)
	}
	s.SetPaidPlan(true)
	if code, _, _ := chatraDo(t, s, http.MethodGet, "/api/clients/c1", chatraTestAuth, ""); code != 200 {
		t.Errorf("plan back on: %d", code)
	}
}

func TestChatraInspectionAPI(t *testing.T) {
	s := NewChatra(chatraTestPublic, chatraTestSecret)
	mux := http.NewServeMux()
	mux.Handle("/chatra/", http.StripPrefix("/chatra", s))

	code, _, _ := chatraDo(t, mux, http.MethodPut, "/chatra/_sandbox/clients/v%2F1", "", `{"name":"Ann","id":"ignored","info":{"city":"Oslo"}}`)
	if code != 200 {
		t.Fatalf("seed client: %d", code)
	}
	card, ok := s.Client("v/1")
	if !ok || card.Name != "Ann" || card.Visitor().City != "Oslo" {
		t.Fatalf("seeded card = %+v, %v", card, ok)
	}
	if code, body, _ := chatraDo(t, mux, http.MethodGet, "/chatra/_sandbox/clients/v%2F1", "", ""); code != 200 || chatraField(body, "name") != "Ann" {
		t.Errorf("get card: %d %v", code, body)
	}

	for _, text := range []string{"one", "two"} {
		if code, body, _ := chatraDo(t, mux, http.MethodPost, "/chatra/api/messages/", chatraTestAuth, `{"clientId":"v/1","text":"`+text+`","agentId":"a"}`); code != 200 {
			t.Fatalf("send through the prefix: %d %v", code, body)
		}
	}
	_, list, _ := chatraDo(t, mux, http.MethodGet, "/chatra/_sandbox/messages?clientId=v/1", "", "")
	if l, _ := list.([]any); len(l) != 2 || chatraField(l[0], "text") != "one" {
		t.Errorf("messages = %v", list)
	}
	_, none, _ := chatraDo(t, mux, http.MethodGet, "/chatra/_sandbox/messages?clientId=other", "", "")
	if l, ok := none.([]any); !ok || len(l) != 0 {
		t.Errorf("messages of another client = %v, want []", none)
	}

	if code, _, _ := chatraDo(t, mux, http.MethodPost, "/chatra/_sandbox/faults", "", `{"pathPrefix":"/api/clients/","status":503,"retryAfter":"4","count":1}`); code != 204 {
		t.Fatalf("inject fault: %d", code)
	}
	if code, _, hdr := chatraDo(t, mux, http.MethodGet, "/chatra/api/clients/v%2F1", chatraTestAuth, ""); code != 503 || hdr.Get("Retry-After") != "4" {
		t.Errorf("faulty call: %d", code)
	}
	for _, bad := range []string{`{"delay":"soon"}`, `{"status":42}`, `[]`} {
		if code, _, _ := chatraDo(t, mux, http.MethodPost, "/chatra/_sandbox/faults", "", bad); code != 400 {
			t.Errorf("fault %s: %d, want 400", bad, code)
		}
	}
	chatraDo(t, mux, http.MethodPost, "/chatra/_sandbox/faults", "", `{"status":500,"count":3}`)
	if code, _, _ := chatraDo(t, mux, http.MethodDelete, "/chatra/_sandbox/faults", "", ""); code != 204 {
		t.Errorf("clear faults: %d", code)
	}

	if code, _, _ := chatraDo(t, mux, http.MethodPut, "/chatra/_sandbox/paid-plan", "", `{"active":false}`); code != 204 {
		t.Errorf("plan off: %d", code)
	}
	if code, _, _ := chatraDo(t, mux, http.MethodGet, "/chatra/api/clients/v%2F1", chatraTestAuth, ""); code != 402 {
		t.Errorf("call without a plan: %d", code)
	}
	if code, _, _ := chatraDo(t, mux, http.MethodPut, "/chatra/_sandbox/paid-plan", "", `{}`); code != 400 {
		t.Errorf("plan without active: %d", code)
	}
	if code, _, _ := chatraDo(t, mux, http.MethodGet, "/chatra/_sandbox/nothing", "", ""); code != 404 {
		t.Errorf("unknown sandbox path: %d", code)
	}
}
