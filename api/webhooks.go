package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/conversation"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// Webhook token kinds, as WebhookTokens.CheckWebhookToken takes them.
const (
	TokenKindChatra  = postgres.WebhookChatra
	TokenKindPlanfix = postgres.WebhookPlanfix
)

// MaxMessageRunes is the longest message text a Chatra webhook puts into a conversation
// whole; a longer one is cut, with a note saying so (conversation.MaxMessageRunes).
const MaxMessageRunes = conversation.MaxMessageRunes

// WebhookTokenHeader carries a webhook's token when its URL does not.
const WebhookTokenHeader = "X-Webhook-Token"

// DefaultWebhookTimeout bounds the store and Temporal calls of one webhook delivery.
const DefaultWebhookTimeout = 10 * time.Second

// WebhookTokens checks the tokens that authenticate webhook deliveries.
type WebhookTokens interface {
	// CheckWebhookToken returns nil when token is the integration's current token of the
	// kind (TokenKindChatra or TokenKindPlanfix), compared in constant time. It returns an
	// EUNAUTHORIZED error for a wrong token and for an unknown integration alike, and an
	// EUNAVAILABLE error when the store cannot be reached.
	CheckWebhookToken(ctx context.Context, integrationID, kind, token string) error
}

// WebhookOptions adjust the webhooks. The zero value is what production uses.
type WebhookOptions struct {
	// Tokens checks webhook tokens. Default: the store (Params.DB).
	Tokens WebhookTokens
	// Timeout bounds the store and Temporal calls of one delivery. Default
	// DefaultWebhookTimeout.
	Timeout time.Duration
	// MaxInFlight bounds the deliveries to one webhook (Chatra's, Planfix's) of one
	// integration handled at once (their bodies read and held); beyond it Chatra's get
	// 429, Planfix's a refusal. Default config.Config.WebhookMaxInFlight, else
	// DefaultWebhookMaxInFlight.
	MaxInFlight int
}

// DefaultWebhookMaxInFlight is WebhookOptions.MaxInFlight when neither it nor the
// configuration sets one.
const DefaultWebhookMaxInFlight = 16

// Conversations is what the webhooks need of the conversation service
// (conversation.Service): the edge authorises, reads and parses a delivery, and maps what
// the service answers.
type Conversations interface {
	DeliverChatra(ctx context.Context, integrationID string, hook *chatra.Webhook) (conversation.Outcome, error)
	RouteReply(ctx context.Context, integrationID string, taskID, commentID int64) (conversation.Outcome, error)
	State(ctx context.Context, workflowID string) (*workflows.State, error)
}

// webhooks holds what the webhook handlers need.
type webhooks struct {
	tokens        WebhookTokens
	conversations Conversations
	timeout       time.Duration
	logger        *slog.Logger
	outcomes      *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	inFlight      inFlight
}

// inFlight counts the deliveries being handled per webhook of each integration (its
// key: "chatra/<id>" or "planfix/<id>"), up to max: a flood through a leaked Chatra URL
// does not crowd out the employees' replies.
type inFlight struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// inFlightWait is how long a delivery waits for a place when max are being handled,
// before it is refused: a burst of a busy site (or deliveries held a moment by a stalled
// Temporal, see conversation.TemporalStall) is taken, while a flood is still refused.
const inFlightWait = 2 * time.Second

// acquire takes a place for one delivery under key, waiting up to inFlightWait (and
// while ctx lasts) when max are being handled; ok is false when none came free. release
// gives the place back.
func (f *inFlight) acquire(ctx context.Context, key string) (release func(), ok bool) {
	deadline := time.Now().Add(inFlightWait)
	for {
		if release, ok := f.take(key); ok {
			return release, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, false
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *inFlight) take(key string) (release func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key] >= f.max {
		return nil, false
	}
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[key]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n[key]--; f.n[key] <= 0 {
			delete(f.n, key)
		}
	}, true
}

// Routes of the webhooks, as Echo reports them in c.Path() (and so in metrics and logs:
// the token is a path parameter, never a label value or a logged string).
const (
	routeChatra       = "/webhooks/chatra/:integrationId"
	routeChatraToken  = "/webhooks/chatra/:integrationId/:token"
	routePlanfix      = "/webhooks/planfix/:integrationId"
	routePlanfixToken = "/webhooks/planfix/:integrationId/:token"
	outcomeContextKey = "chatrabridge.webhookOutcome"
	outcomeIgnored    = "ignored"
	outcomeHeld       = "held"
	outcomeDuplicate  = "duplicate"
	outcomeRefused    = "refused"
	outcomeQueued     = "queued"
)

// newConversations is the conversation service on the server's Temporal client and
// store, as the configuration says.
func newConversations(p Params) *conversation.Service {
	o := conversation.Options{
		Temporal: p.Temporal, TaskQueue: p.Config.TaskQueue, Timeout: p.Webhooks.Timeout, Logger: p.Logger,
		CustomerSearch: p.Config.CustomerSearch,
	}
	if p.Codec != nil {
		o.SearchKey = p.Codec.SearchKey()
	}
	if p.DB != nil {
		o.Chatra, o.Replies, o.Inbox = p.DB, p.DB, p.DB
	}
	if p.Integrations != nil {
		o.Integrations = p.Integrations.IntegrationSettings
	}
	return conversation.New(o)
}

func newWebhooks(p Params, conversations Conversations) *webhooks {
	w := &webhooks{
		tokens:        p.Webhooks.Tokens,
		conversations: conversations,
		timeout:       cmp.Or(p.Webhooks.Timeout, DefaultWebhookTimeout),
		logger:        p.Logger,
	}
	if w.tokens == nil {
		w.tokens = p.DB
	}
	w.tokens = rememberTokens(w.tokens)
	w.inFlight.max = cmp.Or(p.Webhooks.MaxInFlight, p.Config.WebhookMaxInFlight, DefaultWebhookMaxInFlight)
	w.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatrabridge_webhooks_total",
		Help: "Webhook deliveries by source (chatra, planfix) and outcome (accepted; held: a Planfix reply kept until its task has a conversation; duplicate: a Chatra delivery taken before; queued: kept in the inbox until Temporal takes it; refused: a limit or a rule refused it, see chatrabridge_webhook_refusals_total; ignored, invalid, unauthorized, too_large, unavailable, error). Planfix's invalid, unauthorized and too_large are answered 200 {\"ok\":false}.",
	}, []string{"source", "outcome"})
	w.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatrabridge_webhook_refusals_total",
		Help: "Webhook deliveries refused by source and reason (new_conversations: over the integration's new conversations a minute; in_flight: too many of the integration's deliveries at once; held_replies: over the replies held for tasks without a conversation; not_verified: no chat of the task may receive its replies). Chatra's are answered 429, Planfix's 200 {\"ok\":false}.",
	}, []string{"source", "reason"})
	p.Metrics.MustRegister(w.outcomes, w.refusals)
	return w
}

// webhookRoutes registers Chatra's and Planfix's webhooks. The token is taken from the
// URL or, on the routes without it, from the X-Webhook-Token header.
func (s *Server) webhookRoutes(e *echo.Echo) {
	// Pre-router, so that it also sees what the body limit refuses before any handler
	// runs. Planfix's routes are not under the body limit (isPlanfixRoute): their handler
	// reads at most 1 MiB and answers a larger body with a final 200.
	e.Pre(s.webhooks.countOutcomes)
	e.POST(routeChatra, s.chatraWebhook)
	e.POST(routeChatraToken, s.chatraWebhook)
	e.POST(routePlanfix, s.planfixWebhook)
	e.POST(routePlanfixToken, s.planfixWebhook)
}

// countOutcomes counts every answer of the webhook routes by source and outcome.
func (w *webhooks) countOutcomes(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := next(c); err != nil {
			c.Error(err) // write the answer now, so that its status is known
		}
		var source string
		switch c.Path() {
		case routeChatra, routeChatraToken:
			source = TokenKindChatra
		case routePlanfix, routePlanfixToken:
			source = TokenKindPlanfix
		default:
			return nil
		}
		outcome, _ := c.Get(outcomeContextKey).(string)
		if outcome == "" {
			outcome = statusOutcome(c.Response().Status)
		}
		w.outcomes.WithLabelValues(source, outcome).Inc()
		return nil
	}
}

// isPlanfixRoute reports whether c is a request to Planfix's webhook: the body limit
// skips it, since its 413 would pause every Planfix request of the account.
func isPlanfixRoute(c echo.Context) bool {
	return c.Path() == routePlanfix || c.Path() == routePlanfixToken
}

func statusOutcome(status int) string {
	switch {
	case status >= 200 && status < 300:
		return "accepted"
	case status == http.StatusUnauthorized || status == http.StatusNotFound:
		return "unauthorized"
	case status == http.StatusRequestEntityTooLarge:
		return "too_large"
	case status == http.StatusTooManyRequests:
		return outcomeRefused
	case status == http.StatusServiceUnavailable:
		return "unavailable"
	case status >= 400 && status < 500:
		return "invalid"
	}
	return "error"
}

// errUnauthorized is the one answer for a wrong token and an unknown integration, so
// that the two cannot be told apart.
func errUnauthorized() error {
	return chatrabridge.Errorf(chatrabridge.EUNAUTHORIZED, "unknown integration or wrong webhook token")
}

// authorize checks the delivery's token. Any refusal is errUnauthorized, whatever the
// store said; a store that cannot answer gives EUNAVAILABLE.
func (w *webhooks) authorize(ctx context.Context, c echo.Context, integrationID, kind string) error {
	token := c.Param("token")
	if token == "" {
		token = c.Request().Header.Get(WebhookTokenHeader)
	}
	if token == "" || !plausibleID(integrationID) {
		return errUnauthorized()
	}
	err := w.tokens.CheckWebhookToken(ctx, integrationID, kind, token)
	switch chatrabridge.ErrorCode(err) {
	case "":
		return nil
	case chatrabridge.EUNAUTHORIZED, chatrabridge.ENOTFOUND, chatrabridge.EINVALID:
		w.logger.Info("webhook refused: unknown integration or wrong token", "source", kind, "integration", conversation.LogValue(integrationID), "remote", c.RealIP())
		return errUnauthorized()
	}
	return fmt.Errorf("check %s webhook token: %w", kind, err)
}

// plausibleID reports whether id could name an integration: what could not (invalid
// UTF-8, a control character, hundreds of bytes) is refused like a wrong token, without
// asking the store, which would fail on it rather than answer "unknown".
func plausibleID(id string) bool {
	return id != "" && len(id) <= 256 && utf8.ValidString(id) && strings.IndexFunc(id, unicode.IsControl) < 0
}

// readBody reads the whole request body, at most MaxBodyBytes (ETOOLARGE beyond).
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxBodyBytes+1))
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge, err == nil && len(body) > MaxBodyBytes:
		return nil, chatrabridge.Errorf(chatrabridge.ETOOLARGE, "request body is larger than 1 MiB")
	case err != nil:
		return nil, chatrabridge.Errorf(chatrabridge.EINVALID, "the request body could not be read")
	}
	return body, nil
}

// signal is one signal to send, in order.
type signal struct {
	name string
	arg  any
}

// chatraWebhook receives Chatra's webhooks: chatStarted, chatFragment and chatTranscript.
// It answers 200 {"ok":true,"workflowId":...} only once Temporal has accepted every
// signal the delivery maps to (what a visitor controls made storable and bounded
// first); 200 {"ok":true,...,"duplicate":true} for a delivery taken before, signalling
// nothing; 400 naming the field for a body it can never route; 401 for a wrong token or
// an unknown integration; 413 over 1 MiB or Temporal's payload limit; 429 with
// Retry-After beyond the integration's new conversations a minute or deliveries at
// once; 200 {"ok":true,...,"queued":true} when Temporal cannot take it and the inbox
// keeps it (send); 503 when the store cannot check the token, or neither Temporal nor
// the store can take it, so that Chatra delivers it again. A repeated delivery yields
// the same signals with the same keys, which the workflow ignores.
func (s *Server) chatraWebhook(c echo.Context) error {
	w := s.webhooks
	integrationID := c.Param("integrationId")
	ctx, cancel := context.WithTimeout(c.Request().Context(), w.timeout)
	defer cancel()
	if err := w.authorize(ctx, c, integrationID, TokenKindChatra); err != nil {
		return err
	}
	release, ok := w.inFlight.acquire(ctx, TokenKindChatra+"/"+integrationID)
	if !ok {
		return w.refuseChatra(c, "in_flight", time.Second, fmt.Sprintf("more than %d deliveries of this integration are being handled at once; deliver it again in a second", w.inFlight.max))
	}
	defer release()
	body, err := readBody(c)
	if err != nil {
		return err
	}
	hook, err := chatra.ParseWebhook(body)
	if err != nil {
		var ie *chatra.InputError
		if errors.As(err, &ie) {
			return chatrabridge.Invalid(ie.Field, "%s", ie.Message)
		}
		return fmt.Errorf("parse chatra webhook: %w", err)
	}
	out, err := w.conversations.DeliverChatra(ctx, integrationID, hook)
	var refusal *conversation.Refusal
	switch {
	case errors.As(err, &refusal):
		return w.refuseChatra(c, refusal.Reason, refusal.RetryAfter, refusal.Message)
	case err != nil:
		return err
	case out.Duplicate:
		c.Set(outcomeContextKey, outcomeDuplicate)
	case out.Queued:
		c.Set(outcomeContextKey, outcomeQueued)
	}
	return c.JSON(http.StatusOK, webhookAnswer{OK: true, WorkflowID: out.WorkflowID, Duplicate: out.Duplicate, Queued: out.Queued})
}

// refuseChatra answers a Chatra delivery that a limit refuses: 429 with Retry-After
// (whole seconds, at least one), counted by reason.
func (w *webhooks) refuseChatra(c echo.Context, reason string, retryAfter time.Duration, why string) error {
	secs := min(max(int((retryAfter+time.Second-1)/time.Second), 1), int(postgres.AdmissionWindow/time.Second))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	w.refusals.WithLabelValues(TokenKindChatra, reason).Inc()
	w.logger.Info("chatra webhook refused", "integration", conversation.LogValue(c.Param("integrationId")), "reason", reason, "retry_after_s", secs)
	return chatrabridge.Errorf(chatrabridge.ELIMIT, "%s", why)
}

// webhookAnswer is the body of a webhook's 200 answer.
type webhookAnswer struct {
	OK         bool   `json:"ok"`
	WorkflowID string `json:"workflowId"`
	Restarted  bool   `json:"restarted,omitempty"`
	Duplicate  bool   `json:"duplicate,omitempty"` // taken before: nothing was signalled again
	Queued     bool   `json:"queued,omitempty"`    // kept in the inbox: Temporal takes it later
}

// planfixRequest is what the Planfix scenario's HTTP request carries.
type planfixRequest struct {
	TaskID, CommentID int64
}

// planfixWebhook receives the request a Planfix automation scenario sends when an
// employee adds a comment to a chat task, and signals reply to the task's conversation
// (restarting it when it has ended, so a late reply still reaches the customer). It
// answers 200 {"ok":true,...} once Temporal has accepted the signal; 200
// {"ok":true,"held":"..."} once the store keeps the reply of a task with no conversation
// yet (the bridge saves a new task's conversation a moment after Planfix created it,
// later when the worker or Temporal is down: the conversation that saves the task takes
// the reply and sends it); 200 {"ok":true,...,"queued":true} when Temporal cannot take
// it and the inbox keeps it (send); 200 {"ignored":"..."} for a cancelled conversation;
// 200 {"ok":false,"refused":...,"code":...} for what no retry would fix: a wrong token or an
// unknown integration (code unauthorized), a malformed body (invalid, naming the field),
// a body over 1 MiB (too_large), a limit (see refusePlanfix) (planfixFinal); 503 when the
// store cannot be reached, or neither Temporal nor the store can take the reply. Every
// 200 is final: Planfix does not send that request again, and any other answer pauses
// every request of the account for 3 minutes.
func (s *Server) planfixWebhook(c echo.Context) error {
	if err := s.planfixDelivery(c); err != nil {
		return s.webhooks.planfixFinal(c, err)
	}
	return nil
}

// planfixDelivery handles a Planfix request for planfixWebhook, which answers its errors.
func (s *Server) planfixDelivery(c echo.Context) error {
	w := s.webhooks
	integrationID := c.Param("integrationId")
	ctx, cancel := context.WithTimeout(c.Request().Context(), w.timeout)
	defer cancel()
	if err := w.authorize(ctx, c, integrationID, TokenKindPlanfix); err != nil {
		return err
	}
	release, ok := w.inFlight.acquire(ctx, TokenKindPlanfix+"/"+integrationID)
	if !ok {
		return w.refusePlanfix(c, "in_flight", planfixRequest{}, fmt.Sprintf("more than %d requests of this integration are being handled at once", w.inFlight.max))
	}
	defer release()
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := parsePlanfixRequest(c.Request().Header.Get(echo.HeaderContentType), body)
	if err != nil {
		return err
	}

	out, err := w.conversations.RouteReply(ctx, integrationID, req.TaskID, req.CommentID)
	var refusal *conversation.Refusal
	switch {
	case errors.As(err, &refusal):
		return w.refusePlanfix(c, refusal.Reason, req, refusal.Message)
	case err != nil:
		return err
	case out.Held != "":
		c.Set(outcomeContextKey, outcomeHeld)
		return c.JSON(http.StatusOK, heldAnswer{OK: true, Held: out.Held})
	case out.Ignored != "":
		c.Set(outcomeContextKey, outcomeIgnored)
		return c.JSON(http.StatusOK, map[string]string{"ignored": out.Ignored})
	case out.Queued:
		c.Set(outcomeContextKey, outcomeQueued)
	}
	return c.JSON(http.StatusOK, webhookAnswer{OK: true, WorkflowID: out.WorkflowID, Restarted: out.Restarted, Queued: out.Queued})
}

// heldAnswer is the body of the 200 answer for a held reply: ok, since the reply is
// accepted and will reach the chat, like a signalled one; held says why it waits.
type heldAnswer struct {
	OK   bool   `json:"ok"`
	Held string `json:"held"`
}

// refusePlanfix answers a Planfix request that a limit or a rule refuses: 200
// {"ok":false,"refused":why}, since Planfix answers any other status by pausing every
// request of the account, and retrying would be refused again. Counted by reason.
func (w *webhooks) refusePlanfix(c echo.Context, reason string, req planfixRequest, why string) error {
	w.logger.Info("planfix webhook refused", "integration", conversation.LogValue(c.Param("integrationId")), "task_id", req.TaskID, "comment_id", req.CommentID, "reason", reason)
	w.refusals.WithLabelValues(TokenKindPlanfix, reason).Inc()
	c.Set(outcomeContextKey, outcomeRefused)
	return c.JSON(http.StatusOK, refusedAnswer{OK: false, Refused: why})
}

// refusedAnswer is the body of the 200 answer to a refused Planfix request. Code and
// Field say which rule refused it when it is not a limit (invalid, unauthorized,
// too_large; the field of the body at fault).
type refusedAnswer struct {
	OK      bool   `json:"ok"`
	Refused string `json:"refused"`
	Code    string `json:"code,omitempty"`
	Field   string `json:"field,omitempty"`
}

// planfixFinal turns the error of a Planfix request that no retry would fix (a
// wrong token or an unknown integration, a malformed body, a body over 1 MiB, a request
// Temporal refuses as it is) into 200 {"ok":false,"refused":...,"code":...}: Planfix
// retries every other status and, after a failed answer, sends no request of the
// customer's account for 3 minutes, stalling every scenario of it. The outcome is
// logged (never the token: only the route) and counted. Other errors (the store and
// Temporal both unavailable, an internal error) are returned as they are.
func (w *webhooks) planfixFinal(c echo.Context, err error) error {
	var outcome string
	code, why := chatrabridge.ErrorCode(err), chatrabridge.ErrorMessage(err)
	switch code {
	case chatrabridge.EUNAUTHORIZED:
		outcome = "unauthorized"
	case chatrabridge.EINVALID:
		outcome = "invalid"
	case chatrabridge.ETOOLARGE:
		outcome = "too_large"
	default:
		return err
	}
	field := chatrabridge.ErrorField(err)
	w.logger.Info("planfix webhook not taken; answered 200 since no retry would take it", "integration", conversation.LogValue(c.Param("integrationId")),
		"outcome", outcome, "field", field, "reason", conversation.OneLine(why, 200), "remote", c.RealIP())
	c.Set(outcomeContextKey, outcome)
	return c.JSON(http.StatusOK, refusedAnswer{OK: false, Refused: why, Code: code, Field: field})
}

// parsePlanfixRequest reads {"taskId":..,"commentId":..} (numbers or numeric strings), or
// the same as a form (taskId=..&commentId=..). Key names are matched case-insensitively.
// Errors are EINVALID naming the field.
func parsePlanfixRequest(contentType string, body []byte) (planfixRequest, error) {
	media, _, _ := mime.ParseMediaType(contentType)
	trimmed := strings.TrimSpace(string(body))
	var get func(key string) (any, bool)
	if media == "application/x-www-form-urlencoded" || (media != "application/json" && !strings.HasPrefix(trimmed, "{")) {
		form, err := url.ParseQuery(trimmed)
		if err != nil {
			return planfixRequest{}, chatrabridge.Invalid("", "the body is neither a JSON object nor a form: send {\"taskId\": ..., \"commentId\": ...}")
		}
		get = func(key string) (any, bool) {
			for k, v := range form {
				if strings.EqualFold(k, key) && len(v) > 0 {
					return v[0], true
				}
			}
			return nil, false
		}
	} else {
		var obj map[string]any
		dec := json.NewDecoder(strings.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
			return planfixRequest{}, chatrabridge.Invalid("", "the body is not a JSON object: send {\"taskId\": ..., \"commentId\": ...}")
		}
		get = func(key string) (any, bool) {
			if v, ok := obj[key]; ok {
				return v, true
			}
			for k, v := range obj {
				if strings.EqualFold(k, key) {
					return v, true
				}
			}
			return nil, false
		}
	}
	var req planfixRequest
	var err error
	if req.TaskID, err = planfixID(get, "taskId", "the task number ({{Задача.Номер}})"); err != nil {
		return req, err
	}
	if req.CommentID, err = planfixID(get, "commentId", "the added comment's id"); err != nil {
		return req, err
	}
	return req, nil
}

// planfixID reads a positive whole number given as a JSON number or a string.
func planfixID(get func(string) (any, bool), field, what string) (int64, error) {
	v, ok := get(field)
	if !ok || v == nil {
		return 0, chatrabridge.Invalid(field, "%s is missing: it must carry %s", field, what)
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, chatrabridge.Invalid(field, "%s must be a number or a numeric string, not %s", field, jsonKind(v))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, chatrabridge.Invalid(field, "%s is %s, not a positive whole number (is the Planfix variable spelled right?)", field, strconv.Quote(conversation.OneLine(s, 40)))
	}
	return n, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a " + fmt.Sprintf("%T", v)
}
