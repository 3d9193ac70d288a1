package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// fakeTemporal records SignalWithStart calls. It fails them as Temporal being down would
// when the workflow id's chat id starts with "unavailable", so that the fuzzer reaches
// the 503 path too. Every other client method panics (the embedded nil interface).
type fakeTemporal struct {
	client.Client
	mu    sync.Mutex
	calls []fakeCall
}

type fakeCall struct {
	workflowID, signal string
	arg                any
	opts               client.StartWorkflowOptions
	workflow           any
	args               []any
}

func (f *fakeTemporal) SignalWithStartWorkflow(_ context.Context, workflowID, signal string, arg any, opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{workflowID, signal, arg, opts, wf, args})
	if strings.HasPrefix(workflowID, workflows.ConversationWorkflowID("shop", "unavailable")) {
		return nil, serviceerror.NewUnavailable("test: temporal is down")
	}
	return nil, nil
}

func (f *fakeTemporal) take() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

type tokenFunc func(ctx context.Context, integrationID, kind, token string) error

func (f tokenFunc) CheckWebhookToken(ctx context.Context, integrationID, kind, token string) error {
	return f(ctx, integrationID, kind, token)
}

// FuzzChatraWebhookHandler feeds arbitrary bodies through the real Chatra webhook handler
// (the real Echo server, parser and mapping; Temporal faked) and checks that nothing
// panics, that the answer is 200, 400, 413 or 503 with a JSON body, and that a 200 was
// given only after every signal went to the chat's workflow, in the contract's order,
// with distinct keys, the client card once, and without the bridge's own messages. Then
// it runs the signals of an accepted body through the real ConversationWorkflow (test
// environment, activities recorded) and checks every activity input it makes: storable
// in PostgreSQL (valid UTF-8, no NUL) and within a Temporal payload. Its seeds are in
// testdata/fuzz and run with every go test.
func FuzzChatraWebhookHandler(f *testing.F) {
	logger := slog.New(slog.DiscardHandler)
	reg := metrics.New(logger)
	f.Cleanup(func() { _ = reg.Close() })
	fake := &fakeTemporal{}
	srv := api.New(api.Params{
		Temporal: fake, Metrics: reg, Logger: logger,
		Config: config.Config{TaskQueue: "fuzz-queue"},
		Webhooks: api.WebhookOptions{Tokens: tokenFunc(func(_ context.Context, id, kind, token string) error {
			if id == "shop" && kind == api.TokenKindChatra && token == "tok" {
				return nil
			}
			return chatrabridge.Errorf(chatrabridge.EUNAUTHORIZED, "no")
		})},
	})

	f.Fuzz(func(t *testing.T, body []byte) {
		fake.take()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/chatra/shop/tok", bytes.NewReader(body)))
		calls := fake.take()
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			checkAccepted(t, rec.Body.Bytes(), calls)
			checkActivityInputs(t, calls)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
			var e api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("error answer %d %s", rec.Code, rec.Body)
			}
			if rec.Code == http.StatusServiceUnavailable && (len(calls) == 0 || e.Error.Code != chatrabridge.EUNAVAILABLE) {
				t.Fatalf("503 without a failed Temporal call: %s", rec.Body)
			}
			if rec.Code != http.StatusServiceUnavailable && len(calls) != 0 {
				t.Fatalf("%d after %d signals were sent", rec.Code, len(calls))
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// checkAccepted checks what a 200 answer promises.
func checkAccepted(t *testing.T, body []byte, calls []fakeCall) {
	t.Helper()
	var ok struct {
		OK         bool   `json:"ok"`
		WorkflowID string `json:"workflowId"`
	}
	if err := json.Unmarshal(body, &ok); err != nil || !ok.OK || !strings.HasPrefix(ok.WorkflowID, "chatra/shop/") {
		t.Fatalf("200 with %s", body)
	}
	if len(calls) == 0 || len(calls) > 2 {
		t.Fatalf("200 after %d signals", len(calls))
	}
	order := map[string]int{workflows.SignalVisitorInfo: 0, workflows.SignalMessage: 1, workflows.SignalChatClosed: 2}
	last, cards := -1, 0
	keys := map[string]bool{}
	for _, c := range calls {
		rank, known := order[c.signal]
		if !known || rank <= last {
			t.Fatalf("signals out of the contract's order: %+v", calls)
		}
		last = rank
		if c.workflowID != ok.WorkflowID || c.opts.ID != ok.WorkflowID || c.workflow != workflows.ConversationWorkflowName ||
			c.opts.TaskQueue != "fuzz-queue" || c.opts.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING ||
			c.opts.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE || c.opts.StaticSummary == "" {
			t.Fatalf("call %+v for answer %s", c, body)
		}
		if len(c.args) != 1 {
			t.Fatalf("workflow args %+v", c.args)
		}
		in, isInput := c.args[0].(workflows.ConversationInput)
		if !isInput || workflows.ConversationWorkflowID(in.IntegrationID, in.ChatID) != ok.WorkflowID || in.ClientID == "" {
			t.Fatalf("input %+v for %s", c.args[0], ok.WorkflowID)
		}
		var key string
		switch s := c.arg.(type) {
		case workflows.VisitorInfoSignal:
			key = s.Key
			cards++
		case workflows.MessageSignal:
			key = s.Key
			if s.Visitor != nil {
				cards++
			}
			if len(s.Messages) == 0 {
				t.Fatal("message signal without messages")
			}
			for _, m := range s.Messages {
				if strings.EqualFold(strings.TrimSpace(m.ReceivedFrom), workflows.ReceivedFromTag) {
					t.Fatalf("the bridge's own message %q was signalled", m.ID)
				}
			}
		case workflows.ChatClosedSignal:
			key = s.Key
			cards++
		default:
			t.Fatalf("signal payload %T", c.arg)
		}
		if key == "" || keys[key] {
			t.Fatalf("empty or shared key %q in %+v", key, calls)
		}
		keys[key] = true
	}
	if cards != 1 {
		t.Fatalf("the client card went out %d times, want once: %+v", cards, calls)
	}
}
