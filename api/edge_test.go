package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/conversation"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// fakeConversations answers every call with out and err, and records what it was given.
type fakeConversations struct {
	out   conversation.Outcome
	err   error
	calls []string
}

func (f *fakeConversations) DeliverChatra(_ context.Context, integrationID string, hook *chatra.Webhook) (conversation.Outcome, error) {
	f.calls = append(f.calls, "chatra "+integrationID+" "+hook.EventName+" "+hook.Client.ChatID)
	return f.out, f.err
}

func (f *fakeConversations) RouteReply(_ context.Context, integrationID string, taskID, commentID int64) (conversation.Outcome, error) {
	f.calls = append(f.calls, "reply "+integrationID+" "+itoa(taskID)+" "+itoa(commentID))
	return f.out, f.err
}

func (f *fakeConversations) State(context.Context, string) (*workflows.State, error) {
	return nil, f.err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// anyToken accepts the token "tok" for every integration.
type anyToken struct{}

func (anyToken) CheckWebhookToken(_ context.Context, _, _, token string) error {
	if token != "tok" {
		return chatrabridge.Errorf(chatrabridge.EUNAUTHORIZED, "wrong token")
	}
	return nil
}

// edge is the API with a fake conversation service: no Temporal, no store.
func edge(t *testing.T, f *fakeConversations) *harness {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	reg := metrics.New(logger)
	t.Cleanup(func() { _ = reg.Close() })
	s := api.New(api.Params{
		Metrics: reg, Logger: logger, Config: config.Config{},
		Webhooks:      api.WebhookOptions{Tokens: anyToken{}},
		Conversations: f,
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &harness{url: ts.URL}
}

// The edge maps what the service answers: a refusal of a Chatra delivery is 429 with its
// wait, a kept one 200 queued, the store and Temporal both down 503; a Planfix reply's
// refusal, hold or unavailability are 200 refused, 200 held and 503.
func TestEdgeMapsTheServiceAnswers(t *testing.T) {
	body := []byte(chatraBody("chatStarted", "C1", "V1", "", ""))
	for _, tc := range []struct {
		name   string
		fake   fakeConversations
		path   string
		body   []byte
		status int
		check  func(t *testing.T, a answer, h http.Header)
	}{
		{"chatra refused", fakeConversations{err: &conversation.Refusal{Reason: "new_conversations", RetryAfter: 2500 * time.Millisecond, Message: "over the limit"}},
			"/webhooks/chatra/shop/tok", body, http.StatusTooManyRequests, func(t *testing.T, a answer, h http.Header) {
				if h.Get("Retry-After") != "3" {
					t.Errorf("Retry-After %q, want 3", h.Get("Retry-After"))
				}
				errorAnswer(t, a, http.StatusTooManyRequests, chatrabridge.ELIMIT)
			}},
		{"chatra queued", fakeConversations{out: conversation.Outcome{WorkflowID: "chatra/shop/C1", Queued: true}},
			"/webhooks/chatra/shop/tok", body, http.StatusOK, func(t *testing.T, a answer, _ http.Header) {
				var got struct {
					OK         bool   `json:"ok"`
					WorkflowID string `json:"workflowId"`
					Queued     bool   `json:"queued"`
				}
				if json.Unmarshal(a.body, &got) != nil || !got.OK || !got.Queued || got.WorkflowID != "chatra/shop/C1" {
					t.Errorf("answer %s", a)
				}
			}},
		{"chatra unavailable", fakeConversations{err: chatrabridge.Errorf(chatrabridge.EUNAVAILABLE, "down")},
			"/webhooks/chatra/shop/tok", body, http.StatusServiceUnavailable, nil},
		{"planfix refused", fakeConversations{err: &conversation.Refusal{Reason: "not_verified", Message: "no chat may receive it"}},
			"/webhooks/planfix/shop/tok", []byte(`{"taskId":7,"commentId":9}`), http.StatusOK, func(t *testing.T, a answer, _ http.Header) {
				var got struct {
					OK      bool   `json:"ok"`
					Refused string `json:"refused"`
				}
				if json.Unmarshal(a.body, &got) != nil || got.OK || got.Refused != "no chat may receive it" {
					t.Errorf("answer %s", a)
				}
			}},
		{"planfix held", fakeConversations{out: conversation.Outcome{Held: "kept"}},
			"/webhooks/planfix/shop/tok", []byte(`{"taskId":7,"commentId":9}`), http.StatusOK, func(t *testing.T, a answer, _ http.Header) {
				if string(a.body) != `{"ok":true,"held":"kept"}`+"\n" {
					t.Errorf("answer %s", a)
				}
			}},
		{"planfix unavailable", fakeConversations{err: chatrabridge.Errorf(chatrabridge.EUNAVAILABLE, "down")},
			"/webhooks/planfix/shop/tok", []byte(`{"taskId":7,"commentId":9}`), http.StatusServiceUnavailable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			h := edge(t, &f)
			resp, b := postRaw(t, h.url+tc.path, string(tc.body))
			a := answer{resp.StatusCode, b}
			if a.status != tc.status {
				t.Fatalf("answer %s, want %d", a, tc.status)
			}
			if tc.check != nil {
				tc.check(t, a, resp.Header)
			}
			want := "chatra shop chatStarted C1"
			if tc.path[len("/webhooks/"):][0] == 'p' {
				want = "reply shop 7 9"
			}
			if len(f.calls) != 1 || f.calls[0] != want {
				t.Errorf("the service got %q, want %q", f.calls, want)
			}
		})
	}
}

// A delivery with a wrong token never reaches the service.
func TestEdgeAuthorisesFirst(t *testing.T) {
	f := &fakeConversations{}
	h := edge(t, f)
	a := h.post(t, "/webhooks/chatra/shop/wrong", "application/json", []byte(chatraBody("chatStarted", "C1", "V1", "", "")))
	errorAnswer(t, a, http.StatusUnauthorized, chatrabridge.EUNAUTHORIZED)
	a = h.post(t, "/webhooks/planfix/shop/wrong", "application/json", []byte(`{"taskId":7,"commentId":9}`))
	if a.status != http.StatusOK || len(f.calls) != 0 {
		t.Fatalf("planfix with a wrong token: %s, calls %q; want a 200 refusal and no call", a, f.calls)
	}
}
