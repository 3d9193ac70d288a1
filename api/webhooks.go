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
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/inbox"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// Webhook token kinds, as WebhookTokens.CheckWebhookToken takes them.
const (
	TokenKindChatra  = postgres.WebhookChatra
	TokenKindPlanfix = postgres.WebhookPlanfix
)

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

// conversationFinder is what the Planfix webhook needs of the store.
type conversationFinder interface {
	// FindConversationByTask returns the conversation of a Planfix task, ENOTFOUND when
	// there is none, EUNAVAILABLE when the store cannot be reached.
	FindConversationByTask(ctx context.Context, integrationID string, taskID int64) (*postgres.Conversation, error)
	// HoldReplyAtMost keeps a reply whose task has no conversation yet, for the
	// conversation that saves the task next, unless the integration has max held
	// already (ELIMIT); ECONFLICT when a conversation has the task by now, EUNAVAILABLE
	// when the store cannot be reached.
	HoldReplyAtMost(ctx context.Context, integrationID string, taskID, commentID int64, max int) error
}

// chatraStore is what the Chatra webhook needs of the store: which chats may open a
// conversation, and which deliveries were taken before.
type chatraStore interface {
	// AdmitChat reports whether a delivery of the chat may be taken (postgres.DB.AdmitChat).
	AdmitChat(ctx context.Context, integrationID, chatID string, perMinute int) (bool, time.Duration, error)
	// SeenChatraEvent reports whether a delivery with the event key was taken before.
	SeenChatraEvent(ctx context.Context, integrationID, eventKey string) (bool, error)
	// RecordChatraEvent notes that a delivery with the event key was taken.
	RecordChatraEvent(ctx context.Context, integrationID, eventKey string) error
}

// webhookInbox is where a webhook waits while Temporal cannot take it (internal/inbox
// forwards it).
type webhookInbox interface {
	// QueueWebhook keeps a delivery (inbox.Delivery as JSON) behind the workflow's
	// earlier ones; EUNAVAILABLE when the store cannot be reached.
	QueueWebhook(ctx context.Context, integrationID, workflowID string, delivery []byte) error
	// WebhooksQueued reports whether the inbox holds deliveries for the workflow.
	WebhooksQueued(ctx context.Context, workflowID string) (bool, error)
}

// webhooks holds what the webhook handlers need.
type webhooks struct {
	tokens        WebhookTokens
	conversations conversationFinder
	chatra        chatraStore  // nil without a store: no admission bound, no de-duplication beyond a run
	inbox         webhookInbox // nil without a store: a webhook Temporal cannot take is refused
	temporalDown  downSince    // Temporal failed a webhook moments ago: the next go to the inbox
	temporal      client.Client
	taskQueue     string
	timeout       time.Duration
	logger        *slog.Logger
	outcomes      *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	sites         siteNames
	inFlight      inFlight
	// customerSearch is CUSTOMER_SEARCH: what the start sets as CustomerEmail and
	// CustomerName ("clear", "hash" with searchKey, "off").
	customerSearch string
	searchKey      []byte
}

// siteNameTTL is how long a cached integration's name and options are used (for
// conversation summaries and the webhooks' limits): a changed limit applies within it.
const siteNameTTL = time.Minute

// siteNames caches integrations' names and options, so the Web UI's summary names the
// site ("Chat with Ivan on Example shop") and the limits are known without a store
// round trip on every webhook. Without a store, or when the lookup fails, the
// integration id stands in for the name and the options are the defaults.
type siteNames struct {
	lookup func(ctx context.Context, integrationID string) (*chatrabridge.Integration, error)
	mu     sync.Mutex
	cache  map[string]siteName
}

type siteName struct {
	name    string
	options chatrabridge.Options
	expires time.Time
}

func (s *siteNames) get(ctx context.Context, integrationID string) siteName {
	fallback := siteName{name: integrationID}
	fallback.options.FillDefaults()
	if s.lookup == nil {
		return fallback
	}
	s.mu.Lock()
	e, ok := s.cache[integrationID]
	s.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e
	}
	i, err := s.lookup(ctx, integrationID)
	if err != nil {
		return fallback
	}
	e = siteName{name: i.Name, options: i.Options, expires: time.Now().Add(siteNameTTL)}
	if e.name == "" {
		e.name = integrationID
	}
	e.options.FillDefaults()
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]siteName{}
	}
	s.cache[integrationID] = e
	s.mu.Unlock()
	return e
}

func (s *siteNames) name(ctx context.Context, integrationID string) string {
	return s.get(ctx, integrationID).name
}

// inFlight counts the deliveries being handled per webhook of each integration (its
// key: "chatra/<id>" or "planfix/<id>"), up to max: a flood through a leaked Chatra URL
// does not crowd out the employees' replies.
type inFlight struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// acquire takes a place for one delivery under key; ok is false when max are being
// handled. release gives the place back.
func (f *inFlight) acquire(key string) (release func(), ok bool) {
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
	routeChatra          = "/webhooks/chatra/:integrationId"
	routeChatraToken     = "/webhooks/chatra/:integrationId/:token"
	routePlanfix         = "/webhooks/planfix/:integrationId"
	routePlanfixToken    = "/webhooks/planfix/:integrationId/:token"
	outcomeContextKey    = "chatrabridge.webhookOutcome"
	outcomeIgnored       = "ignored"
	outcomeHeld          = "held"
	outcomeDuplicate     = "duplicate"
	outcomeRefused       = "refused"
	outcomeQueued        = "queued"
	maxSignalBytes       = 2<<20 - 64<<10
	maxKeywordBytes      = 255
	maxSummaryNameRunes  = 80
	maxLoggedValueRunes  = 100
	planfixReplyKeyStart = "planfix-comment:"
)

func newWebhooks(p Params) *webhooks {
	w := &webhooks{
		tokens:        p.Webhooks.Tokens,
		conversations: p.DB,
		temporal:      p.Temporal,
		taskQueue:     p.Config.TaskQueue,
		timeout:       p.Webhooks.Timeout,
		logger:        p.Logger,

		customerSearch: p.Config.CustomerSearch,
	}
	if w.customerSearch == "hash" {
		if p.Codec == nil {
			// No key to hash with: set nothing rather than the clear values.
			w.customerSearch = "off"
		} else {
			w.searchKey = p.Codec.SearchKey()
		}
	}
	if w.tokens == nil {
		w.tokens = p.DB
	}
	w.tokens = rememberTokens(w.tokens)
	if p.DB != nil {
		w.chatra = p.DB
		w.inbox = p.DB
	}
	w.inFlight.max = cmp.Or(p.Webhooks.MaxInFlight, p.Config.WebhookMaxInFlight, DefaultWebhookMaxInFlight)
	if p.Integrations != nil {
		w.sites.lookup = p.Integrations.IntegrationSettings
	}
	if w.taskQueue == "" {
		w.taskQueue = workflows.DefaultTaskQueue
	}
	if w.timeout <= 0 {
		w.timeout = DefaultWebhookTimeout
	}
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
		w.logger.Info("webhook refused: unknown integration or wrong token", "source", kind, "integration", logValue(integrationID), "remote", c.RealIP())
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
	release, ok := w.inFlight.acquire(TokenKindChatra + "/" + integrationID)
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
	chatID, clientID, err := chatIDs(hook)
	if err != nil {
		return err
	}
	workflowID := workflows.ConversationWorkflowID(integrationID, chatID)
	if len(hook.Warnings) > 0 {
		w.logger.Debug("chatra webhook: unexpected shapes", "integration", logValue(integrationID), "event", hook.EventName, "warnings", len(hook.Warnings))
	}

	signals := chatraSignals(hook, clientID)
	for _, sig := range signals {
		if err := checkPayloadSize(sig); err != nil {
			return err
		}
	}
	eventKey := hook.EventKey()
	if w.chatra != nil {
		// A delivery taken before is not signalled again: the running conversation
		// would ignore it, and one that has ended would start again for it.
		seen, err := w.chatra.SeenChatraEvent(ctx, integrationID, eventKey)
		switch {
		case err != nil: // the store is down: the running conversation still de-duplicates
			w.logger.Warn("chatra webhook: cannot look up the delivery's event key; taking it", "integration", logValue(integrationID), "error", err)
		case seen:
			w.logger.Debug("chatra webhook: a delivery taken before", "integration", logValue(integrationID), "workflow_id", logValue(workflowID))
			c.Set(outcomeContextKey, outcomeDuplicate)
			return c.JSON(http.StatusOK, webhookAnswer{OK: true, WorkflowID: workflowID, Duplicate: true})
		}
		site := w.sites.get(ctx, integrationID)
		admitted, retryAfter, err := w.chatra.AdmitChat(ctx, integrationID, chatID, site.options.NewConversationsPerMinute)
		switch {
		case err != nil: // the store is down: chats keep being taken (Temporal keeps them)
			w.logger.Warn("chatra webhook: cannot check the new conversations limit; taking the delivery", "integration", logValue(integrationID), "error", err)
		case !admitted:
			return w.refuseChatra(c, "new_conversations", retryAfter, fmt.Sprintf(
				"this integration opened %d new conversations in the last minute, its limit (options.newConversationsPerMinute); deliver it again later",
				site.options.NewConversationsPerMinute))
		}
	}
	visitor := visitorInfo(hook.Visitor())
	d := w.delivery(ctx, workflowID, integrationID, chatID, clientID, visitor.Name, visitor.Email)
	for _, sig := range signals {
		d.Signals = append(d.Signals, inbox.Signal{Name: sig.name, Arg: sig.arg})
	}
	queued, _, err := w.send(ctx, c, d, "integration", logValue(integrationID), "workflow_id", logValue(workflowID))
	if err != nil {
		return err
	}
	if w.chatra != nil {
		if err := w.chatra.RecordChatraEvent(ctx, integrationID, eventKey); err != nil {
			w.logger.Warn("chatra webhook: cannot record the delivery's event key (a repeat after the conversation ended would start it again)", "integration", logValue(integrationID), "error", err)
		}
	}
	w.logger.Debug("chatra webhook accepted", "integration", logValue(integrationID), "event", hook.EventName, "workflow_id", logValue(workflowID), "signals", len(signals), "queued", queued)
	return c.JSON(http.StatusOK, webhookAnswer{OK: true, WorkflowID: workflowID, Queued: queued})
}

// refuseChatra answers a Chatra delivery that a limit refuses: 429 with Retry-After
// (whole seconds, at least one), counted by reason.
func (w *webhooks) refuseChatra(c echo.Context, reason string, retryAfter time.Duration, why string) error {
	secs := min(max(int((retryAfter+time.Second-1)/time.Second), 1), int(postgres.AdmissionWindow/time.Second))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	w.refusals.WithLabelValues(TokenKindChatra, reason).Inc()
	w.logger.Info("chatra webhook refused", "integration", logValue(c.Param("integrationId")), "reason", reason, "retry_after_s", secs)
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

// chatraSignals maps a Chatra webhook to the signals of its conversation, in the order
// they are sent (visitor-info, message, chat-closed). Each carries the client card as it
// now stands once (the workflow decides what changed):
//
//   - chatStarted: visitor-info with Started, then message when it carries messages;
//   - chatFragment: message with the messages not sent by the bridge itself and the card
//     (MessageSignal.Visitor: one signal, accepted or not as a whole), or visitor-info
//     alone when no such message is left;
//   - chatTranscript: chat-closed with the whole transcript and the card.
//
// Each key is the delivery's EventKey followed by "/" and the signal name: a repeated
// delivery yields the same keys, while the two signals of one delivery never share one
// (the workflow ignores a repeated key whatever the signal). Messages are also
// de-duplicated by their own ids.
func chatraSignals(hook *chatra.Webhook, clientID string) []signal {
	eventKey := hook.EventKey()
	visitor := visitorInfo(hook.Visitor())
	infoSignal := func(started bool) signal {
		return signal{workflows.SignalVisitorInfo, workflows.VisitorInfoSignal{
			Key: eventKey + "/" + workflows.SignalVisitorInfo, ClientID: clientID, Started: started, Visitor: visitor,
		}}
	}
	messageSignal := func(msgs []workflows.Message, card *workflows.VisitorInfo) signal {
		return signal{workflows.SignalMessage, workflows.MessageSignal{
			Key: eventKey + "/" + workflows.SignalMessage, ClientID: clientID, Messages: msgs, Visitor: card,
		}}
	}
	msgs := convertMessages(hook.Messages, true)
	switch hook.EventName {
	case chatra.EventChatStarted:
		sigs := []signal{infoSignal(true)}
		if len(msgs) > 0 {
			sigs = append(sigs, messageSignal(msgs, nil))
		}
		return sigs
	case chatra.EventChatTranscript:
		return []signal{{workflows.SignalChatClosed, workflows.ChatClosedSignal{
			Key: eventKey + "/" + workflows.SignalChatClosed, ClientID: clientID,
			Transcript: convertMessages(hook.Messages, false), Visitor: visitor,
		}}}
	default: // chatFragment: ParseWebhook accepts no other event
		if len(msgs) == 0 {
			return []signal{infoSignal(false)}
		}
		return []signal{messageSignal(msgs, &visitor)}
	}
}

// ownMessage reports whether the bridge itself sent m (its receivedFrom tag): such a
// message coming back in a webhook must not become a task comment again.
func ownMessage(m chatra.Message) bool {
	return strings.EqualFold(strings.TrimSpace(m.ReceivedFrom), workflows.ReceivedFromTag)
}

func convertMessages(in []chatra.Message, skipOwn bool) []workflows.Message {
	out := make([]workflows.Message, 0, len(in))
	for _, m := range in {
		if skipOwn && ownMessage(m) {
			continue
		}
		t := m.CreatedAt
		if t.Year() < 0 || t.Year() > 9999 {
			t = time.Time{} // unknown: JSON, and so Temporal's payloads, cannot carry it
		}
		out = append(out, cleanMessage(workflows.Message{
			ID: m.ID, Type: m.Type, Text: withAttachments(m.Text, m.Attachments), Time: t,
			AgentID: m.AgentID, AgentName: m.AgentName, ReceivedFrom: m.ReceivedFrom,
		}))
	}
	return out
}

// withAttachments is a message's text for the task with what it carries besides (a file,
// an image, a link; chatra.Message.Attachments) after it, so that nothing the visitor
// sent is dropped.
func withAttachments(text, attachments string) string {
	switch {
	case attachments == "":
		return text
	case strings.TrimSpace(text) == "":
		return "Attached in the chat:\n" + attachments
	}
	return text + "\n\nAttached in the chat:\n" + attachments
}

// visitorInfo is the card of a webhook as the conversation takes it: storable and
// bounded (cleanVisitor).
func visitorInfo(v chatra.Visitor) workflows.VisitorInfo {
	return cleanVisitor(workflows.VisitorInfo{
		Name: v.Name, Email: v.Email, Phone: v.Phone, City: v.City, Country: v.Country,
		Pages: v.Pages, Source: v.Source, Device: v.Device, OS: v.OS, Browser: v.Browser,
		IP: v.IP, Extra: v.Extra,
	})
}

// checkPayloadSize refuses a signal whose payload Temporal would refuse (its default
// blob limit is 2 MiB): retrying such a delivery could never succeed. A body under
// 1 MiB only grows past it through JSON escaping (each '<' becomes "\u003c").
func checkPayloadSize(sig signal) error {
	b, err := json.Marshal(sig.arg)
	if err != nil {
		return fmt.Errorf("encode %s signal: %w", sig.name, err)
	}
	if len(b) > maxSignalBytes {
		return chatrabridge.Errorf(chatrabridge.ETOOLARGE, "the %s signal of this webhook would be %d bytes, over the %d a workflow accepts", sig.name, len(b), maxSignalBytes)
	}
	return nil
}

// delivery is what a webhook sends to a conversation, its signals to be added: the
// search attributes known already and the summary are set at its start.
func (w *webhooks) delivery(ctx context.Context, workflowID, integrationID, chatID, clientID, customer, email string) inbox.Delivery {
	return inbox.Delivery{
		WorkflowID: workflowID,
		TaskQueue:  w.taskQueue,
		Input:      workflows.ConversationInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID},
		Customer:   w.searchValue(customer),
		Email:      w.searchValue(email),
		Summary:    summary(customer, w.sites.name(ctx, integrationID), chatID),
	}
}

// send sends d to Temporal, or keeps it in the inbox when Temporal cannot take it:
// queued reports the latter (the forwarder sends it later, as it is). A delivery for a
// conversation whose earlier deliveries are still in the inbox is queued behind them
// rather than sent, so that the conversation receives them in order; so is any delivery
// for temporalDownFor after Temporal failed one. It returns an EUNAVAILABLE error only
// when neither Temporal nor the store can take d, EINVALID when Temporal refuses it as
// it is (no retry would help). The outcome is logged with attrs.
func (w *webhooks) send(ctx context.Context, c echo.Context, d inbox.Delivery, attrs ...any) (queued, restarted bool, err error) {
	if w.inbox != nil {
		behind, err := w.inbox.WebhooksQueued(ctx, d.WorkflowID)
		down := w.temporalDown.recently()
		if (err == nil && behind) || down {
			if err := w.queue(c, d); err == nil {
				why := "webhook queued behind its conversation's earlier ones in the inbox"
				if !behind {
					why = "webhook kept in the inbox: Temporal failed moments ago"
				}
				w.logger.Info(why, attrs...)
				return true, false, nil
			}
		}
		// An error: the store is down, so nothing waits in the inbox that this one could
		// overtake for long; Temporal may take it.
	}
	restarted, err = inbox.Send(ctx, w.temporal, d)
	if err == nil {
		w.temporalDown.clear()
		return false, restarted, nil
	}
	op := "signal-with-start"
	var se *inbox.SendError
	if errors.As(err, &se) {
		op += " " + se.Signal
		attrs = append(attrs, "signals_accepted", se.Accepted)
	}
	terr := w.temporalError(err, op, attrs...)
	if w.inbox == nil || chatrabridge.ErrorCode(terr) == chatrabridge.EINVALID {
		return false, false, terr
	}
	w.temporalDown.mark()
	if qerr := w.queue(c, d); qerr != nil {
		w.logger.Warn("webhook: neither Temporal nor the store can take it", append(attrs, "error", qerr)...)
		return false, false, terr
	}
	w.logger.Info("webhook kept in the inbox until Temporal takes it", attrs...)
	return true, false, nil
}

// temporalDownFor is how long after Temporal failed a webhook the next ones go straight
// to the inbox: during an outage the SDK retries each call until the webhook's timeout,
// which every delivery would otherwise wait out before being kept.
const temporalDownFor = 5 * time.Second

// downSince remembers when a call last failed, for temporalDownFor.
type downSince struct {
	mu    sync.Mutex
	until time.Time
}

func (d *downSince) mark() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.until = time.Now().Add(temporalDownFor)
}

func (d *downSince) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.until = time.Time{}
}

func (d *downSince) recently() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Now().Before(d.until)
}

// queue keeps d in the inbox. Its context is the request's without its deadline, which
// a Temporal call that timed out may have spent, bounded again by the webhook timeout.
func (w *webhooks) queue(c echo.Context, d inbox.Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), w.timeout)
	defer cancel()
	if err := w.inbox.QueueWebhook(ctx, d.Input.IntegrationID, d.WorkflowID, b); err != nil {
		return err
	}
	c.Set(outcomeContextKey, outcomeQueued)
	return nil
}

// searchValue is what the CustomerName or CustomerEmail search attribute holds of v, by
// CUSTOMER_SEARCH: v, its keyed hash (codec.SearchHash, which `chatrabridge search-key`
// prints), or nothing.
func (w *webhooks) searchValue(v string) string {
	switch w.customerSearch {
	case "hash":
		return codec.SearchHash(w.searchKey, v)
	case "off":
		return ""
	}
	return v
}

// summary is the conversation's static summary in the Web UI: "Chat with Ivan on
// Example shop".
func summary(customer, site, chatID string) string {
	name := oneLine(customer, maxSummaryNameRunes)
	if name == "" {
		name = "visitor " + oneLine(chatID, 40)
	}
	// The Web UI renders summaries as Markdown: a name is text, never a link or markup.
	return workflows.CutSummary("Chat with " + workflows.EscapeMarkdown(name) + " on " + workflows.EscapeMarkdown(oneLine(site, 60)))
}

// temporalError classifies a failed Temporal call: unreachable, overloaded or timed out
// is EUNAVAILABLE (503, the sender retries); anything else is internal (500). Both are
// logged, without the token.
func (w *webhooks) temporalError(err error, op string, attrs ...any) error {
	switch serviceerror.ToStatus(err).Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Canceled:
		w.logger.Warn("webhook: temporal unavailable", append(attrs, "op", op, "error", err)...)
		return &chatrabridge.Error{Code: chatrabridge.EUNAVAILABLE, Message: "Temporal is unavailable; deliver the webhook again later", Err: err}
	case codes.InvalidArgument:
		// Temporal refuses the request itself: sending it again cannot help.
		w.logger.Warn("webhook: temporal refused the request", append(attrs, "op", op, "error", err)...)
		return &chatrabridge.Error{Code: chatrabridge.EINVALID, Message: "Temporal refuses this delivery as it is (" + oneLine(serviceerror.ToStatus(err).Message(), 200) + ")", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
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
	release, ok := w.inFlight.acquire(TokenKindPlanfix + "/" + integrationID)
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

	conv, err := w.conversations.FindConversationByTask(ctx, integrationID, req.TaskID)
	if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND {
		maxHeld := w.sites.get(ctx, integrationID).options.MaxHeldReplies
		err = w.conversations.HoldReplyAtMost(ctx, integrationID, req.TaskID, req.CommentID, maxHeld)
		if err == nil {
			return w.hold(c, integrationID, req)
		}
		if chatrabridge.ErrorCode(err) == chatrabridge.ELIMIT {
			return w.refusePlanfix(c, "held_replies", req, fmt.Sprintf(
				"task %d has no conversation, and the bridge already holds %d replies of this integration for tasks without one (options.maxHeldReplies): is the scenario limited to chat tasks?", req.TaskID, maxHeld))
		}
		if chatrabridge.ErrorCode(err) != chatrabridge.ECONFLICT {
			return fmt.Errorf("hold reply %d of task %d: %w", req.CommentID, req.TaskID, err)
		}
		// The task's conversation was saved meanwhile: the reply goes to it.
		conv, err = w.conversations.FindConversationByTask(ctx, integrationID, req.TaskID)
	}
	if err != nil {
		return fmt.Errorf("find conversation of task %d: %w", req.TaskID, err)
	}
	if conv.Status == postgres.StatusCancelled {
		return w.ignore(c, integrationID, req, fmt.Sprintf("the conversation of task %d was cancelled", req.TaskID))
	}
	if !conv.ReceivesReplies {
		// Only chats that joined the task on an email claim have it: none of them may
		// receive its replies (the chat that created the task has moved on).
		return w.refusePlanfix(c, "not_verified", req, fmt.Sprintf(
			"no chat that may receive the replies of task %d has it: the chats in it joined on an email the visitor typed, which is not a proof (options.trustEmailClaims)", req.TaskID))
	}
	workflowID := conv.WorkflowID
	if workflowID == "" {
		workflowID = workflows.ConversationWorkflowID(conv.IntegrationID, conv.ChatID)
	}
	sig := workflows.ReplySignal{
		Key:       planfixReplyKeyStart + strconv.FormatInt(req.CommentID, 10),
		CommentID: req.CommentID,
		TaskID:    req.TaskID,
	}
	logAttrs := []any{"integration", logValue(integrationID), "task_id", req.TaskID, "comment_id", req.CommentID, "workflow_id", logValue(workflowID)}

	// The conversation may have ended (after its late-reply window): then a new run
	// starts with the reply, which delivers it to the chat (Chatra emails a customer who
	// left).
	d := w.delivery(ctx, workflowID, conv.IntegrationID, conv.ChatID, conv.ClientID, conv.CustomerName, conv.CustomerEmail)
	d.SignalFirst = true
	d.Signals = []inbox.Signal{{Name: workflows.SignalReply, Arg: sig}}
	queued, restarted, err := w.send(ctx, c, d, logAttrs...)
	if err != nil {
		return err
	}
	if restarted {
		w.logger.Info("planfix reply restarted an ended conversation", logAttrs...)
	}
	w.logger.Debug("planfix reply accepted", append(logAttrs, "queued", queued)...)
	return c.JSON(http.StatusOK, webhookAnswer{OK: true, WorkflowID: workflowID, Restarted: restarted, Queued: queued})
}

// hold answers 200 {"ok":true,"held":...} for a reply the store keeps until a
// conversation takes its task: Planfix need not retry (the reply is not lost), and an
// admin reading the scenario's log learns where it went.
func (w *webhooks) hold(c echo.Context, integrationID string, req planfixRequest) error {
	w.logger.Info("planfix reply held: its task has no conversation yet", "integration", logValue(integrationID), "task_id", req.TaskID, "comment_id", req.CommentID)
	c.Set(outcomeContextKey, outcomeHeld)
	return c.JSON(http.StatusOK, heldAnswer{OK: true, Held: fmt.Sprintf(
		"no conversation for task %d yet: the reply is kept and goes to the chat once the bridge has saved the task's conversation (comments in tasks that are not the bridge's are forgotten after a week)",
		req.TaskID)})
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
	w.logger.Info("planfix webhook refused", "integration", logValue(c.Param("integrationId")), "task_id", req.TaskID, "comment_id", req.CommentID, "reason", reason)
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
	w.logger.Info("planfix webhook not taken; answered 200 since no retry would take it", "integration", logValue(c.Param("integrationId")),
		"outcome", outcome, "field", field, "reason", oneLine(why, 200), "remote", c.RealIP())
	c.Set(outcomeContextKey, outcome)
	return c.JSON(http.StatusOK, refusedAnswer{OK: false, Refused: why, Code: code, Field: field})
}

// ignore answers 200 {"ignored": why}: Planfix retries anything but 200, and there is
// nothing to retry.
func (w *webhooks) ignore(c echo.Context, integrationID string, req planfixRequest, why string) error {
	w.logger.Info("planfix webhook ignored", "integration", logValue(integrationID), "task_id", req.TaskID, "comment_id", req.CommentID, "reason", why)
	c.Set(outcomeContextKey, outcomeIgnored)
	return c.JSON(http.StatusOK, map[string]string{"ignored": why})
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
		return 0, chatrabridge.Invalid(field, "%s is %s, not a positive whole number (is the Planfix variable spelled right?)", field, strconv.Quote(oneLine(s, 40)))
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

// oneLine returns s with its whitespace runs collapsed to single spaces and cut to at
// most n runes ("…" marking a cut).
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// logValue bounds what an unauthenticated URL can put into a log line.
func logValue(s string) string {
	if utf8.RuneCountInString(s) <= maxLoggedValueRunes && utf8.ValidString(s) {
		return s
	}
	return oneLine(strings.ToValidUTF8(s, "?"), maxLoggedValueRunes)
}
