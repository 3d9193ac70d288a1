package chatra_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

const (
	publicKey = "pub-KEY-123"
	secretKey = "s3cr3t-K3Y-never-print-me"
)

// recorded is one request as the server saw it.
type recorded struct {
	Method, EscapedPath, Auth, ContentType string
	Body                                   map[string]any
}

// recorder wraps a handler and keeps every request.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []recorded
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(data))
	var body map[string]any
	_ = json.Unmarshal(data, &body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) last(t *testing.T) recorded {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	return rec.reqs[len(rec.reqs)-1]
}

// env is a sandbox behind a real socket and a client pointed at it.
type env struct {
	sb     *sandbox.Chatra
	rec    *recorder
	srv    *httptest.Server
	client *chatra.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sb := sandbox.NewChatra(publicKey, secretKey)
	rec := &recorder{next: sb}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	e := &env{sb: sb, rec: rec, srv: srv}
	e.client = chatra.NewClient(chatra.Config{APIURL: srv.URL + "/", PublicKey: publicKey, SecretKey: secretKey}, srv.Client())
	if err := sb.PutClient(chatra.ClientCard{ID: "c1", ChatID: "chat1", Name: "Ivan", Fields: map[string]any{
		"info": map[string]any{"city": "Berlin", "browser": map[string]any{"name": "Chrome", "version": "120"}},
	}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// chatraError asserts that err is a *chatra.Error of the kind and returns it.
func chatraError(t *testing.T, err error, kind string, status int, retryable bool) *chatra.Error {
	t.Helper()
	var ce *chatra.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *chatra.Error", err, err)
	}
	if ce.Kind != kind || ce.HTTPStatus != status || ce.Retryable != retryable {
		t.Errorf("error = {Kind:%q Status:%d Retryable:%v}, want {%q %d %v}: %v",
			ce.Kind, ce.HTTPStatus, ce.Retryable, kind, status, retryable, err)
	}
	assertNoSecret(t, err)
	return ce
}

// assertNoSecret fails if any rendering of v contains the secret key.
func assertNoSecret(t *testing.T, v any) {
	t.Helper()
	var renderings []string
	if err, ok := v.(error); ok {
		for e := err; e != nil; e = errors.Unwrap(e) {
			renderings = append(renderings, e.Error())
		}
	}
	renderings = append(renderings, fmt.Sprint(v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
	renderings = append(renderings, buf.String())
	if data, err := json.Marshal(v); err == nil {
		renderings = append(renderings, string(data))
	}
	for _, s := range renderings {
		if strings.Contains(s, secretKey) {
			t.Fatalf("the secret key leaked: %s", s)
		}
	}
}

func TestSendMessageAsAgent(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second)
	m, err := e.client.SendMessage(context.Background(), chatra.SendMessageInput{ClientID: "c1", Text: "Привет 👋", AgentID: "agent-1", ReceivedFrom: "chatrabridge"})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if len(m.ID) != 17 || m.Type != chatra.MessageTypeAgent || m.Text != "Привет 👋" || m.ClientID != "c1" ||
		m.AgentID != "agent-1" || m.ReceivedFrom != "chatrabridge" || m.CreatedAt.Before(before) || m.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("message = %+v", m)
	}
	req := e.rec.last(t)
	if req.Method != http.MethodPost || req.EscapedPath != "/api/messages/" {
		t.Errorf("request = %s %s, want POST /api/messages/", req.Method, req.EscapedPath)
	}
	if req.Auth != "Chatra.Simple "+publicKey+":"+secretKey {
		t.Errorf("Authorization = %q", req.Auth)
	}
	if req.ContentType != "application/json" {
		t.Errorf("Content-Type = %q", req.ContentType)
	}
	want := map[string]any{"clientId": "c1", "text": "Привет 👋", "agentId": "agent-1", "receivedFrom": "chatrabridge"}
	if fmt.Sprint(req.Body) != fmt.Sprint(want) {
		t.Errorf("body = %v, want %v", req.Body, want)
	}
	stored := e.sb.Messages()
	if len(stored) != 1 || stored[0].ID != m.ID || stored[0].Text != m.Text {
		t.Errorf("sandbox holds %+v", stored)
	}

	got, err := e.client.GetMessage(context.Background(), m.ID)
	if err != nil || got.ID != m.ID || got.Text != m.Text || !got.CreatedAt.Equal(m.CreatedAt) {
		t.Errorf("GetMessage = %+v, %v", got, err)
	}
	if last := e.rec.last(t); last.Method != http.MethodGet || last.EscapedPath != "/api/messages/"+m.ID {
		t.Errorf("GetMessage request = %s %s", last.Method, last.EscapedPath)
	}
}

func TestSendMessageAsEmployee(t *testing.T) {
	e := newEnv(t)
	in := chatra.SendMessageInput{ClientID: "c1", Text: "Hello", AgentEmail: "julia@example.com", AgentName: "Julia", ReceivedFrom: "chatrabridge"}
	m1, err := e.client.SendMessage(context.Background(), in)
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	m2, err := e.client.SendMessage(context.Background(), in)
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if m1.AgentID == "" || m1.AgentID != m2.AgentID || m1.AgentName != "Julia" || m1.ReceivedFrom != "chatrabridge" {
		t.Errorf("messages = %+v, %+v; want one placeholder agent named Julia", m1, m2)
	}
	if m1.ID == m2.ID {
		t.Errorf("two sends got the same id %q", m1.ID)
	}
	body := e.rec.last(t).Body
	if _, ok := body["agentId"]; ok || body["agentEmail"] != "julia@example.com" || body["agentName"] != "Julia" {
		t.Errorf("body = %v", body)
	}
}

func TestSendMessageValidation(t *testing.T) {
	e := newEnv(t)
	ok := chatra.SendMessageInput{ClientID: "c1", Text: "x", AgentID: "a"}
	tests := []struct {
		name  string
		edit  func(*chatra.SendMessageInput)
		field string
		msg   string
	}{
		{"no client", func(in *chatra.SendMessageInput) { in.ClientID = " " }, "clientId", "clientId"},
		{"empty text", func(in *chatra.SendMessageInput) { in.Text = "" }, "text", "1 to 5000"},
		{"blank text", func(in *chatra.SendMessageInput) { in.Text = " \n\t" }, "text", "empty"},
		{"5001 characters", func(in *chatra.SendMessageInput) { in.Text = strings.Repeat("a", 5001) }, "text", "limit of 5000"},
		{"2501 emoji are 5002 UTF-16 units", func(in *chatra.SendMessageInput) { in.Text = strings.Repeat("😀", 2501) }, "text", "5002 characters"},
		{"no sender", func(in *chatra.SendMessageInput) { in.AgentID = "" }, "agentEmail", "sender"},
		{"email without name", func(in *chatra.SendMessageInput) {
			in.AgentID, in.AgentEmail, in.ReceivedFrom = "", "a@example.com", "t"
		}, "agentName", "agentName"},
		{"email without tag", func(in *chatra.SendMessageInput) { in.AgentID, in.AgentEmail, in.AgentName = "", "a@example.com", "A" }, "receivedFrom", "receivedFrom"},
		{"both senders", func(in *chatra.SendMessageInput) { in.AgentEmail, in.AgentName = "a@example.com", "A" }, "agentId", "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			_, err := e.client.SendMessage(context.Background(), in)
			var ie *chatra.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error = %T %v, want *chatra.InputError", err, err)
			}
			if ie.Field != tt.field || !strings.Contains(ie.Message, tt.msg) {
				t.Errorf("InputError = %+v, want field %q and %q in the message", ie, tt.field, tt.msg)
			}
		})
	}
	if n := e.sb.RequestCount(); n != 0 {
		t.Errorf("%d requests reached Chatra for invalid input", n)
	}
	// The limits themselves are accepted, by the client and by the stand-in.
	for _, text := range []string{strings.Repeat("a", 5000), strings.Repeat("😀", 2500), "y"} {
		in := ok
		in.Text = text
		if _, err := e.client.SendMessage(context.Background(), in); err != nil {
			t.Errorf("SendMessage of %d bytes: %v", len(text), err)
		}
	}
}

func TestClientCards(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	card, err := e.client.GetClient(ctx, "c1")
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if card.ID != "c1" || card.Name != "Ivan" {
		t.Errorf("card = %+v", card)
	}
	if v := card.Visitor(); v.City != "Berlin" || v.Browser != "Chrome 120" {
		t.Errorf("visitor of the fetched card = %+v", v)
	}
	if req := e.rec.last(t); req.Method != http.MethodGet || req.EscapedPath != "/api/clients/c1" {
		t.Errorf("request = %s %s", req.Method, req.EscapedPath)
	}

	if err := e.client.UpdateClient(ctx, "c1", chatra.ClientUpdate{Email: "ivan@example.com", Notes: "https://planfix/task/12"}); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	req := e.rec.last(t)
	if req.Method != http.MethodPut || req.EscapedPath != "/api/clients/c1" || fmt.Sprint(req.Body) != fmt.Sprint(map[string]any{"email": "ivan@example.com", "notes": "https://planfix/task/12"}) {
		t.Errorf("request = %s %s %v", req.Method, req.EscapedPath, req.Body)
	}
	stored, _ := e.sb.Client("c1")
	if stored.Name != "Ivan" || stored.Email != "ivan@example.com" || stored.Notes != "https://planfix/task/12" {
		t.Errorf("stored card = %+v", stored)
	}

	before := e.sb.RequestCount()
	if err := e.client.UpdateClient(ctx, "c1", chatra.ClientUpdate{}); err != nil {
		t.Errorf("empty update: %v", err)
	}
	if e.sb.RequestCount() != before {
		t.Errorf("an empty update called Chatra")
	}

	for _, id := range []string{"", "  "} {
		if _, err := e.client.GetClient(ctx, id); !errors.As(err, new(*chatra.InputError)) {
			t.Errorf("GetClient(%q) = %v, want an InputError", id, err)
		}
	}
}

func TestPathSegmentsAreEscaped(t *testing.T) {
	e := newEnv(t)
	id := "a/b c?d#é%"
	if err := e.sb.PutClient(chatra.ClientCard{ID: id, Name: "Odd"}); err != nil {
		t.Fatal(err)
	}
	card, err := e.client.GetClient(context.Background(), id)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if card.ID != id || card.Name != "Odd" {
		t.Errorf("card = %+v", card)
	}
	if got, want := e.rec.last(t).EscapedPath, "/api/clients/a%2Fb%20c%3Fd%23%C3%A9%25"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
}

func TestAPIURLWithPathPrefix(t *testing.T) {
	sb := sandbox.NewChatra(publicKey, secretKey)
	mux := http.NewServeMux()
	mux.Handle("/sandbox/chatra/", http.StripPrefix("/sandbox/chatra", sb))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if err := sb.PutClient(chatra.ClientCard{ID: "x/y"}); err != nil {
		t.Fatal(err)
	}
	c := chatra.NewClient(chatra.Config{APIURL: srv.URL + "/sandbox/chatra", PublicKey: publicKey, SecretKey: secretKey}, nil)
	if _, err := c.GetClient(context.Background(), "x/y"); err != nil {
		t.Errorf("GetClient through the prefix: %v", err)
	}
	if _, err := c.SendMessage(context.Background(), chatra.SendMessageInput{ClientID: "x/y", Text: "t", AgentID: "a"}); err != nil {
		t.Errorf("SendMessage through the prefix: %v", err)
	}
}

func TestErrorStatuses(t *testing.T) {
	ctx := context.Background()
	send := chatra.SendMessageInput{ClientID: "c1", Text: "hi", AgentID: "a"}

	t.Run("401 wrong keys", func(t *testing.T) {
		e := newEnv(t)
		c := chatra.NewClient(chatra.Config{APIURL: e.srv.URL, PublicKey: publicKey, SecretKey: secretKey + "-wrong"}, nil)
		_, err := c.SendMessage(ctx, send)
		ce := chatraError(t, err, chatra.KindUnauthorized, 401, false)
		if !strings.Contains(err.Error(), "Settings, API keys") || !strings.Contains(err.Error(), "publicKey/secretKey") {
			t.Errorf("error does not name the fix: %v", err)
		}
		if strings.Contains(err.Error(), secretKey+"-wrong") {
			t.Errorf("the wrong secret leaked: %v", err)
		}
		if ce.Body == "" {
			t.Errorf("no excerpt of the answer")
		}
	})
	t.Run("402 no paid plan", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetPaidPlan(false)
		_, err := e.client.GetClient(ctx, "c1")
		chatraError(t, err, chatra.KindPaymentRequired, 402, false)
		if !strings.Contains(err.Error(), "paid Chatra plan") {
			t.Errorf("error does not name the plan: %v", err)
		}
		e.sb.SetPaidPlan(true)
		if _, err := e.client.GetClient(ctx, "c1"); err != nil {
			t.Errorf("after the plan is back: %v", err)
		}
	})
	t.Run("403", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Status: 403})
		err := e.client.UpdateClient(ctx, "c1", chatra.ClientUpdate{Name: "x"})
		chatraError(t, err, chatra.KindForbidden, 403, false)
		if !strings.Contains(err.Error(), "paid Chatra plan") {
			t.Errorf("error does not name the plan: %v", err)
		}
	})
	t.Run("404 unknown client", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.client.GetClient(ctx, "nobody")
		chatraError(t, err, chatra.KindNotFound, 404, false)
		if !strings.Contains(err.Error(), `"nobody"`) {
			t.Errorf("error does not name the visitor: %v", err)
		}
		_, err = e.client.SendMessage(ctx, chatra.SendMessageInput{ClientID: "nobody", Text: "x", AgentID: "a"})
		chatraError(t, err, chatra.KindNotFound, 404, false)
		err = e.client.UpdateClient(ctx, "nobody", chatra.ClientUpdate{Name: "x"})
		chatraError(t, err, chatra.KindNotFound, 404, false)
		_, err = e.client.GetMessage(ctx, "nope")
		chatraError(t, err, chatra.KindNotFound, 404, false)
	})
	t.Run("400 refused body", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.client.SendMessage(ctx, chatra.SendMessageInput{ClientID: "c1", Text: "x", AgentEmail: "not-an-email", AgentName: "A", ReceivedFrom: "t"})
		ce := chatraError(t, err, chatra.KindBadRequest, 400, false)
		if !strings.Contains(ce.Body, "agentEmail is not an email address") {
			t.Errorf("Body = %q, want the answer's excerpt", ce.Body)
		}
	})
	t.Run("429 with Retry-After seconds", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Status: 429, RetryAfter: "7"})
		_, err := e.client.SendMessage(ctx, send)
		ce := chatraError(t, err, chatra.KindRateLimited, 429, true)
		if ce.RetryAfter != 7*time.Second || !strings.Contains(err.Error(), "retry after 7s") {
			t.Errorf("RetryAfter = %v, error %v", ce.RetryAfter, err)
		}
		if _, err := e.client.SendMessage(ctx, send); err != nil {
			t.Errorf("the fault outlived its count: %v", err)
		}
	})
	t.Run("429 with Retry-After date", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Status: 429, RetryAfter: time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)})
		_, err := e.client.GetClient(ctx, "c1")
		ce := chatraError(t, err, chatra.KindRateLimited, 429, true)
		if ce.RetryAfter < 85*time.Second || ce.RetryAfter > 91*time.Second {
			t.Errorf("RetryAfter = %v, want about 90s", ce.RetryAfter)
		}
	})
	t.Run("500 and 503", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Status: 500})
		e.sb.InjectFault(sandbox.ChatraFault{Status: 503, RetryAfter: "3"})
		_, err := e.client.GetClient(ctx, "c1")
		chatraError(t, err, chatra.KindUnavailable, 500, true)
		_, err = e.client.GetClient(ctx, "c1")
		if ce := chatraError(t, err, chatra.KindUnavailable, 503, true); ce.RetryAfter != 3*time.Second {
			t.Errorf("RetryAfter = %v", ce.RetryAfter)
		}
	})
	t.Run("fault limited to a path prefix", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{PathPrefix: "/api/clients/", Status: 500, Count: 2})
		if _, err := e.client.SendMessage(ctx, send); err != nil {
			t.Errorf("messages were hit by a clients fault: %v", err)
		}
		for i := range 2 {
			_, err := e.client.GetClient(ctx, "c1")
			chatraError(t, err, chatra.KindUnavailable, 500, true)
			_ = i
		}
		if _, err := e.client.GetClient(ctx, "c1"); err != nil {
			t.Errorf("third call: %v", err)
		}
	})
}

func TestTimeouts(t *testing.T) {
	ctx := context.Background()
	t.Run("default per-call timeout", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Delay: 5 * time.Second})
		c := chatra.NewClient(chatra.Config{APIURL: e.srv.URL, PublicKey: publicKey, SecretKey: secretKey, Timeout: 150 * time.Millisecond}, nil)
		start := time.Now()
		_, err := c.GetClient(ctx, "c1")
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the call took %v", d)
		}
		chatraError(t, err, chatra.KindNetwork, 0, true)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within 150ms") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Delay: 5 * time.Second})
		dctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		_, err := e.client.SendMessage(dctx, chatra.SendMessageInput{ClientID: "c1", Text: "x", AgentID: "a"})
		chatraError(t, err, chatra.KindNetwork, 0, true)
		if !strings.Contains(err.Error(), "deadline") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Delay: 5 * time.Second})
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := e.client.GetClient(cctx, "c1")
		chatraError(t, err, chatra.KindCanceled, 0, false)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error does not wrap context.Canceled: %v", err)
		}
	})
	t.Run("a latency below the timeout is fine", func(t *testing.T) {
		e := newEnv(t)
		e.sb.InjectFault(sandbox.ChatraFault{Delay: 50 * time.Millisecond})
		if _, err := e.client.GetClient(ctx, "c1"); err != nil {
			t.Errorf("GetClient: %v", err)
		}
	})
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := chatra.NewClient(chatra.Config{APIURL: "http://" + addr, PublicKey: publicKey, SecretKey: secretKey}, nil)
	_, err = c.GetClient(context.Background(), "c1")
	chatraError(t, err, chatra.KindNetwork, 0, true)
	if !strings.Contains(err.Error(), "cannot reach chatra at http://"+addr) {
		t.Errorf("error = %v", err)
	}
}

// TestErrorsNeverCarryTheSecret points the client at a server that echoes the request's
// credentials back in every way it can.
func TestErrorsNeverCarryTheSecret(t *testing.T) {
	for _, status := range []int{400, 401, 404, 418, 429, 500, 302} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/elsewhere?key="+secretKey)
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html>\n\tbad auth header %q, secret %s, again: Chatra.Simple %s:%s\n%s</html>",
				r.Header.Get("Authorization"), secretKey, publicKey, secretKey, strings.Repeat("padding ", 100))
		}))
		c := chatra.NewClient(chatra.Config{APIURL: srv.URL, PublicKey: publicKey, SecretKey: secretKey}, nil)
		_, err := c.GetClient(context.Background(), "c1")
		srv.Close()
		var ce *chatra.Error
		if !errors.As(err, &ce) {
			t.Fatalf("status %d: error %T %v", status, err, err)
		}
		assertNoSecret(t, err)
		if !strings.Contains(ce.Body, "[REDACTED]") {
			t.Errorf("status %d: Body = %q, want the secret replaced", status, ce.Body)
		}
		if n := len([]rune(ce.Body)); n > 201 || strings.ContainsAny(ce.Body, "\n\t") {
			t.Errorf("status %d: Body is %d runes or not one line: %q", status, n, ce.Body)
		}
	}
}

func TestUnreadableSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "<html>maintenance page</html>")
	}))
	defer srv.Close()
	c := chatra.NewClient(chatra.Config{APIURL: srv.URL, PublicKey: publicKey, SecretKey: secretKey}, nil)

	// The message went out: the caller must not retry and send it twice.
	m, err := c.SendMessage(context.Background(), chatra.SendMessageInput{ClientID: "c1", Text: "sent", AgentID: "a", ReceivedFrom: "tag"})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if m.ID != "" || m.Text != "sent" || m.ClientID != "c1" || m.ReceivedFrom != "tag" {
		t.Errorf("message = %+v", m)
	}

	_, err = c.GetClient(context.Background(), "c1")
	ce := chatraError(t, err, chatra.KindBadResponse, 200, true)
	if !strings.Contains(ce.Body, "maintenance page") {
		t.Errorf("Body = %q", ce.Body)
	}
}

func TestConfig(t *testing.T) {
	cfg := chatra.Config{APIURL: "https://app.chatra.io", PublicKey: publicKey, SecretKey: secretKey}
	assertNoSecret(t, cfg)
	assertNoSecret(t, &cfg)
	assertNoSecret(t, struct{ Chatra chatra.Config }{cfg})
	c := chatra.NewClient(cfg, nil)
	assertNoSecret(t, c)

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "chatra", cfg)
	var line struct {
		Chatra map[string]any `json:"chatra"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line.Chatra["secretKey"] != "[REDACTED]" || line.Chatra["publicKey"] != publicKey || line.Chatra["apiUrl"] != cfg.APIURL {
		t.Errorf("logged config = %v", line.Chatra)
	}
	if s := (chatra.Config{}).String(); !strings.Contains(s, "(unset)") {
		t.Errorf("empty config = %s", s)
	}

	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := (chatra.Config{PublicKey: "p", SecretKey: "s"}).Validate(); err != nil {
		t.Errorf("Validate with the default URL: %v", err)
	}
	for _, tt := range []struct {
		cfg   chatra.Config
		field string
	}{
		{chatra.Config{APIURL: "ftp://x", PublicKey: "p", SecretKey: "s"}, "apiUrl"},
		{chatra.Config{APIURL: "app.chatra.io", PublicKey: "p", SecretKey: "s"}, "apiUrl"},
		{chatra.Config{APIURL: "https://u:" + secretKey + "@app.chatra.io", PublicKey: "p", SecretKey: "s"}, "apiUrl"},
		{chatra.Config{APIURL: "https://app.chatra.io?x=1", PublicKey: "p", SecretKey: "s"}, "apiUrl"},
		{chatra.Config{SecretKey: "s"}, "publicKey"},
		{chatra.Config{PublicKey: "p"}, "secretKey"},
		{chatra.Config{PublicKey: "p", SecretKey: "s\n"}, "secretKey"},
	} {
		err := tt.cfg.Validate()
		var ie *chatra.InputError
		if !errors.As(err, &ie) || ie.Field != tt.field {
			t.Errorf("Validate(%v) = %v, want an InputError on %s", tt.cfg, err, tt.field)
			continue
		}
		// A client built from a bad config fails every call the same way, without a request.
		_, callErr := chatra.NewClient(tt.cfg, nil).GetClient(context.Background(), "c1")
		if !errors.As(callErr, &ie) || ie.Field != tt.field {
			t.Errorf("call with %v = %v", tt.cfg, callErr)
		}
		assertNoSecret(t, callErr)
	}
}
