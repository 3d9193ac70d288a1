// Package conversation is the service between the bridge's HTTP edge and Temporal: it
// turns a Chatra webhook into its conversation's signals and a Planfix scenario's request
// into a reply for the task's conversation, sends them (or keeps them in the inbox while
// Temporal cannot take them), and reads a conversation's state. The edge (package api)
// authorises, reads and parses a request, calls the service and maps its answer; it knows
// nothing of signals, keys, search attributes or the inbox.
package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// ChatraStore is what a Chatra delivery needs of the store: which chats may open a
// conversation, and which deliveries were taken before.
type ChatraStore interface {
	// AdmitChat reports whether a delivery of the chat may be taken (postgres.DB.AdmitChat).
	AdmitChat(ctx context.Context, integrationID, chatID string, perMinute int) (bool, time.Duration, error)
	// SeenChatraEvent reports whether a delivery with the event key was taken before.
	SeenChatraEvent(ctx context.Context, integrationID, eventKey string) (bool, error)
	// RecordChatraEvent notes that a delivery with the event key was taken.
	RecordChatraEvent(ctx context.Context, integrationID, eventKey string) error
}

// ReplyStore is what routing a Planfix reply needs of the store.
type ReplyStore interface {
	// FindConversationByTask returns the conversation of a Planfix task, ENOTFOUND when
	// there is none, EUNAVAILABLE when the store cannot be reached.
	FindConversationByTask(ctx context.Context, integrationID string, taskID int64) (*postgres.Conversation, error)
	// HoldReplyAtMost keeps a reply whose task has no conversation yet, for the
	// conversation that saves the task next, unless the integration has max held
	// already (ELIMIT); ECONFLICT when a conversation has the task by now, EUNAVAILABLE
	// when the store cannot be reached.
	HoldReplyAtMost(ctx context.Context, integrationID string, taskID, commentID int64, max int) error
}

// Inbox is where a delivery waits while Temporal cannot take it (internal/inbox
// forwards it).
type Inbox interface {
	// QueueWebhook keeps a delivery (inbox.Delivery as JSON) behind the workflow's
	// earlier ones; EUNAVAILABLE when the store cannot be reached.
	QueueWebhook(ctx context.Context, integrationID, workflowID string, delivery []byte) error
	// WebhooksQueued reports whether the inbox holds deliveries for the workflow.
	WebhooksQueued(ctx context.Context, workflowID string) (bool, error)
}

// Options are the service's dependencies. Temporal is required; without the stores
// there is no admission bound, no de-duplication beyond a run, no held reply and no inbox
// (what Temporal cannot take is refused).
type Options struct {
	Temporal  client.Client
	TaskQueue string // default workflows.DefaultTaskQueue
	// Timeout bounds keeping a delivery in the inbox once Temporal failed it. Default
	// DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger

	Chatra  ChatraStore
	Replies ReplyStore
	Inbox   Inbox
	// Integrations looks an integration up, for its name (the conversations' summary)
	// and options (its limits).
	Integrations func(ctx context.Context, integrationID string) (*chatrabridge.Integration, error)

	// CustomerSearch is CUSTOMER_SEARCH: what a start sets as CustomerEmail and
	// CustomerName: "clear" (default), "hash" (keyed by SearchKey; nothing without one),
	// "off".
	CustomerSearch string
	SearchKey      []byte
}

// DefaultTimeout is Options.Timeout when it is not set.
const DefaultTimeout = 10 * time.Second

// Service delivers webhooks to conversations and reads their state.
type Service struct {
	temporal       client.Client
	taskQueue      string
	timeout        time.Duration
	logger         *slog.Logger
	chatra         ChatraStore
	replies        ReplyStore
	inbox          Inbox
	sites          siteNames
	temporalDown   downSince // Temporal failed a delivery moments ago: the next go to the inbox
	customerSearch string
	searchKey      []byte
}

// New builds the service.
func New(o Options) *Service {
	s := &Service{
		temporal: o.Temporal, taskQueue: o.TaskQueue, timeout: o.Timeout, logger: o.Logger,
		chatra: o.Chatra, replies: o.Replies, inbox: o.Inbox,
		customerSearch: o.CustomerSearch, searchKey: o.SearchKey,
	}
	s.sites.lookup = o.Integrations
	if s.taskQueue == "" {
		s.taskQueue = workflows.DefaultTaskQueue
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.customerSearch == "hash" && len(s.searchKey) == 0 {
		s.customerSearch = "off" // no key to hash with: set nothing rather than the clear values
	}
	return s
}

// Outcome is what became of a delivery that was taken.
type Outcome struct {
	WorkflowID string
	Queued     bool   // kept in the inbox: Temporal takes it later
	Restarted  bool   // a reply started an ended conversation again
	Duplicate  bool   // a Chatra delivery taken before: nothing was signalled again
	Held       string // a reply kept until its task has a conversation: why
	Ignored    string // a reply with nothing to do (its conversation was cancelled): why
}

// Refusal is a delivery a limit or a rule refuses: sending it again as it is, before
// RetryAfter, is refused again. Reason names the limit (for metrics).
type Refusal struct {
	Reason     string
	RetryAfter time.Duration
	Message    string
}

func (r *Refusal) Error() string { return r.Message }

// Options of the integration, as the limits take them (its defaults when the lookup
// fails or there is none).
func (s *Service) Options(ctx context.Context, integrationID string) chatrabridge.Options {
	return s.sites.get(ctx, integrationID).options
}

// signal is one signal to send, in order.
type signal struct {
	name string
	arg  any
}

// Limits of what a delivery may put into Temporal.
const (
	maxSignalBytes      = 2<<20 - 64<<10
	maxKeywordBytes     = 255
	maxSummaryNameRunes = 80
	// MaxLoggedValueRunes bounds what an unauthenticated request can put into a log line.
	MaxLoggedValueRunes = 100
)

// DeliverChatra takes a Chatra webhook (chatStarted, chatFragment, chatTranscript) of the
// integration: it sends the signals it maps to, once Temporal has accepted every one
// (what a visitor controls made storable and bounded first), or keeps them in the inbox
// when Temporal cannot take them (Outcome.Queued). A delivery taken before signals
// nothing (Outcome.Duplicate). Errors: EINVALID naming the field for ids it can never
// route by, ETOOLARGE over Temporal's payload limit, a *Refusal beyond the integration's
// new conversations a minute, EUNAVAILABLE when neither Temporal nor the store can take
// it. A repeated delivery yields the same signals with the same keys, which the workflow
// ignores.
func (s *Service) DeliverChatra(ctx context.Context, integrationID string, hook *chatra.Webhook) (Outcome, error) {
	chatID, clientID, err := chatIDs(hook)
	if err != nil {
		return Outcome{}, err
	}
	workflowID := workflows.ConversationWorkflowID(integrationID, chatID)
	out := Outcome{WorkflowID: workflowID}
	if len(hook.Warnings) > 0 {
		s.logger.Debug("chatra webhook: unexpected shapes", "integration", LogValue(integrationID), "event", hook.EventName, "warnings", len(hook.Warnings))
	}
	signals := chatraSignals(hook, clientID)
	for _, sig := range signals {
		if err := checkPayloadSize(sig); err != nil {
			return Outcome{}, err
		}
	}
	eventKey := hook.EventKey()
	if s.chatra != nil {
		// A delivery taken before is not signalled again: the running conversation
		// would ignore it, and one that has ended would start again for it.
		seen, err := s.chatra.SeenChatraEvent(ctx, integrationID, eventKey)
		switch {
		case err != nil: // the store is down: the running conversation still de-duplicates
			s.logger.Warn("chatra webhook: cannot look up the delivery's event key; taking it", "integration", LogValue(integrationID), "error", err)
		case seen:
			s.logger.Debug("chatra webhook: a delivery taken before", "integration", LogValue(integrationID), "workflow_id", LogValue(workflowID))
			out.Duplicate = true
			return out, nil
		}
		perMinute := s.Options(ctx, integrationID).NewConversationsPerMinute
		admitted, retryAfter, err := s.chatra.AdmitChat(ctx, integrationID, chatID, perMinute)
		switch {
		case err != nil: // the store is down: chats keep being taken (Temporal keeps them)
			s.logger.Warn("chatra webhook: cannot check the new conversations limit; taking the delivery", "integration", LogValue(integrationID), "error", err)
		case !admitted:
			return Outcome{}, &Refusal{Reason: "new_conversations", RetryAfter: retryAfter, Message: fmt.Sprintf(
				"this integration opened %d new conversations in the last minute, its limit (options.newConversationsPerMinute); deliver it again later", perMinute)}
		}
	}
	visitor := visitorInfo(hook.Visitor())
	d := s.delivery(ctx, workflowID, integrationID, chatID, clientID, visitor.Name, visitor.Email)
	for _, sig := range signals {
		d.Signals = append(d.Signals, inbox.Signal{Name: sig.name, Arg: sig.arg})
	}
	if out.Queued, _, err = s.send(ctx, d, "integration", LogValue(integrationID), "workflow_id", LogValue(workflowID)); err != nil {
		return Outcome{}, err
	}
	if s.chatra != nil {
		if err := s.chatra.RecordChatraEvent(ctx, integrationID, eventKey); err != nil {
			s.logger.Warn("chatra webhook: cannot record the delivery's event key (a repeat after the conversation ended would start it again)", "integration", LogValue(integrationID), "error", err)
		}
	}
	s.logger.Debug("chatra webhook accepted", "integration", LogValue(integrationID), "event", hook.EventName, "workflow_id", LogValue(workflowID), "signals", len(signals), "queued", out.Queued)
	return out, nil
}

// RouteReply takes an employee's comment in a task (the Planfix scenario's request) and
// signals reply to the task's conversation, restarting it when it has ended, so that a
// late reply still reaches the customer. A task with no conversation yet gets its reply
// held (Outcome.Held): the conversation that saves the task takes it. A cancelled
// conversation's reply is ignored (Outcome.Ignored). Errors: a *Refusal beyond the
// replies held for tasks without a conversation (held_replies), or when no chat of the
// task may receive its replies (not_verified); EINVALID when Temporal refuses the signal
// as it is; EUNAVAILABLE when the store cannot be reached, or neither Temporal nor the
// store can take the reply.
func (s *Service) RouteReply(ctx context.Context, integrationID string, taskID, commentID int64) (Outcome, error) {
	if s.replies == nil {
		return Outcome{}, chatrabridge.Errorf(chatrabridge.EUNAVAILABLE, "the bridge has no store to find the task's conversation in")
	}
	conv, err := s.replies.FindConversationByTask(ctx, integrationID, taskID)
	if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND {
		maxHeld := s.Options(ctx, integrationID).MaxHeldReplies
		err = s.replies.HoldReplyAtMost(ctx, integrationID, taskID, commentID, maxHeld)
		if err == nil {
			s.logger.Info("planfix reply held: its task has no conversation yet", "integration", LogValue(integrationID), "task_id", taskID, "comment_id", commentID)
			return Outcome{Held: fmt.Sprintf(
				"no conversation for task %d yet: the reply is kept and goes to the chat once the bridge has saved the task's conversation (comments in tasks that are not the bridge's are forgotten after a week)",
				taskID)}, nil
		}
		if chatrabridge.ErrorCode(err) == chatrabridge.ELIMIT {
			return Outcome{}, &Refusal{Reason: "held_replies", Message: fmt.Sprintf(
				"task %d has no conversation, and the bridge already holds %d replies of this integration for tasks without one (options.maxHeldReplies): is the scenario limited to chat tasks?", taskID, maxHeld)}
		}
		if chatrabridge.ErrorCode(err) != chatrabridge.ECONFLICT {
			return Outcome{}, fmt.Errorf("hold reply %d of task %d: %w", commentID, taskID, err)
		}
		// The task's conversation was saved meanwhile: the reply goes to it.
		conv, err = s.replies.FindConversationByTask(ctx, integrationID, taskID)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("find conversation of task %d: %w", taskID, err)
	}
	if conv.Status == postgres.StatusCancelled {
		why := fmt.Sprintf("the conversation of task %d was cancelled", taskID)
		s.logger.Info("planfix webhook ignored", "integration", LogValue(integrationID), "task_id", taskID, "comment_id", commentID, "reason", why)
		return Outcome{Ignored: why}, nil
	}
	if !conv.ReceivesReplies {
		// Only chats that joined the task on an email claim have it: none of them may
		// receive its replies (the chat that created the task has moved on).
		return Outcome{}, &Refusal{Reason: "not_verified", Message: fmt.Sprintf(
			"no chat that may receive the replies of task %d has it: the chats in it joined on an email the visitor typed, which is not a proof (options.trustEmailClaims)", taskID)}
	}
	workflowID := conv.WorkflowID
	if workflowID == "" {
		workflowID = workflows.ConversationWorkflowID(conv.IntegrationID, conv.ChatID)
	}
	sig := workflows.ReplySignal{Key: workflows.ReplyKey(commentID), CommentID: commentID, TaskID: taskID}
	logAttrs := []any{"integration", LogValue(integrationID), "task_id", taskID, "comment_id", commentID, "workflow_id", LogValue(workflowID)}

	// The conversation may have ended (after its late-reply window): then a new run
	// starts with the reply, which delivers it to the chat (Chatra emails a customer who
	// left).
	d := s.delivery(ctx, workflowID, conv.IntegrationID, conv.ChatID, conv.ClientID, conv.CustomerName, conv.CustomerEmail)
	d.SignalFirst = true
	d.Signals = []inbox.Signal{{Name: workflows.SignalReply, Arg: sig}}
	out := Outcome{WorkflowID: workflowID}
	if out.Queued, out.Restarted, err = s.send(ctx, d, logAttrs...); err != nil {
		return Outcome{}, err
	}
	if out.Restarted {
		s.logger.Info("planfix reply restarted an ended conversation", logAttrs...)
	}
	s.logger.Debug("planfix reply accepted", append(logAttrs, "queued", out.Queued)...)
	return out, nil
}

// StateQueryTimeout bounds the "state" query of a conversation.
const StateQueryTimeout = 5 * time.Second

// State asks the conversation's workflow for its state. Its error is a sentence for the
// admin.
func (s *Service) State(ctx context.Context, workflowID string) (*workflows.State, error) {
	if s.temporal == nil {
		return nil, errors.New("Temporal is not configured")
	}
	ctx, cancel := context.WithTimeout(ctx, StateQueryTimeout)
	defer cancel()
	v, err := s.temporal.QueryWorkflow(ctx, workflowID, "", workflows.QueryState)
	if err != nil {
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			return nil, errors.New("the workflow " + workflowID + " does not exist in Temporal (its history may have been deleted after the retention period)")
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			return nil, errors.New("the workflow did not answer the state query within " + StateQueryTimeout.String() + ": is a worker running?")
		}
		return nil, errors.New("the state query failed: " + err.Error())
	}
	var st workflows.State
	if err := v.Get(&st); err != nil {
		return nil, errors.New("the state query's answer cannot be read: " + err.Error())
	}
	return &st, nil
}

// siteTTL is how long a cached integration's name and options are used (for
// conversation summaries and the webhooks' limits): a changed limit applies within it.
const siteTTL = time.Minute

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
	e = siteName{name: i.Name, options: i.Options, expires: time.Now().Add(siteTTL)}
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

// delivery is what a webhook sends to a conversation, its signals to be added: the
// search attributes known already and the summary are set at its start.
func (s *Service) delivery(ctx context.Context, workflowID, integrationID, chatID, clientID, customer, email string) inbox.Delivery {
	return inbox.Delivery{
		WorkflowID: workflowID,
		TaskQueue:  s.taskQueue,
		Input:      workflows.ConversationInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID},
		Customer:   s.searchValue(customer),
		Email:      s.searchValue(email),
		Summary:    summary(customer, s.sites.name(ctx, integrationID), chatID),
	}
}

// send sends d to Temporal, or keeps it in the inbox when Temporal cannot take it:
// queued reports the latter (the forwarder sends it later, as it is). A delivery for a
// conversation whose earlier deliveries are still in the inbox is queued behind them
// rather than sent, so that the conversation receives them in order; so is any delivery
// for temporalDownFor after Temporal failed one. It returns an EUNAVAILABLE error only
// when neither Temporal nor the store can take d, EINVALID when Temporal refuses it as
// it is (no retry would help). The outcome is logged with attrs.
func (s *Service) send(ctx context.Context, d inbox.Delivery, attrs ...any) (queued, restarted bool, err error) {
	if s.inbox != nil {
		behind, err := s.inbox.WebhooksQueued(ctx, d.WorkflowID)
		down := s.temporalDown.recently()
		if (err == nil && behind) || down {
			if err := s.queue(ctx, d); err == nil {
				why := "webhook queued behind its conversation's earlier ones in the inbox"
				if !behind {
					why = "webhook kept in the inbox: Temporal failed moments ago"
				}
				s.logger.Info(why, attrs...)
				return true, false, nil
			}
		}
		// An error: the store is down, so nothing waits in the inbox that this one could
		// overtake for long; Temporal may take it.
	}
	sendCtx := ctx
	if s.inbox != nil {
		var stop func()
		sendCtx, stop = s.cutIfDown(ctx)
		defer stop()
	}
	restarted, err = inbox.Send(sendCtx, s.temporal, d)
	if err == nil {
		s.temporalDown.clear()
		return false, restarted, nil
	}
	op := "signal-with-start"
	var se *inbox.SendError
	if errors.As(err, &se) {
		op += " " + se.Signal
		attrs = append(attrs, "signals_accepted", se.Accepted)
	}
	var terr error
	if sendCtx.Err() != nil && ctx.Err() == nil { // cut short: Temporal's health check failed too
		s.logger.Warn("webhook: temporal unavailable: no answer, and its health check failed", append(attrs, "op", op)...)
		terr = &chatrabridge.Error{Code: chatrabridge.EUNAVAILABLE, Message: "Temporal is unavailable; deliver the webhook again later", Err: err}
	} else {
		terr = s.temporalError(err, op, attrs...)
	}
	if s.inbox == nil || chatrabridge.ErrorCode(terr) == chatrabridge.EINVALID {
		return false, false, terr
	}
	s.temporalDown.mark()
	if qerr := s.queue(ctx, d); qerr != nil {
		s.logger.Warn("webhook: neither Temporal nor the store can take it", append(attrs, "error", qerr)...)
		return false, false, terr
	}
	s.logger.Info("webhook kept in the inbox until Temporal takes it", attrs...)
	return true, false, nil
}

// TemporalStall is how long a delivery's Temporal call may go unanswered before the
// service asks whether Temporal is there at all. Temporal answers a signal in
// milliseconds; when its server is gone, the SDK retries the call until the delivery's
// timeout, and every delivery that comes meanwhile would wait as long, holding its place
// among the integration's deliveries at once (the in-flight bound, beyond which Chatra
// gets 429).
const TemporalStall = 500 * time.Millisecond

// cutIfDown returns ctx for a delivery's Temporal call that is cancelled, and Temporal
// marked down (the next deliveries go to the inbox at once), when the call has gone
// unanswered for TemporalStall and Temporal's health check then fails too. A Temporal
// that answers its health check is only slow, and the call goes on. stop releases it.
func (s *Service) cutIfDown(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-time.After(TemporalStall):
		}
		hctx, hcancel := context.WithTimeout(ctx, TemporalStall)
		_, err := s.temporal.CheckHealth(hctx, &client.CheckHealthRequest{})
		hcancel()
		select {
		case <-done:
		default:
			if err != nil && ctx.Err() == nil {
				s.temporalDown.mark()
				cancel()
			}
		}
	}()
	return ctx, func() { close(done); cancel() }
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

// queue keeps d in the inbox. Its context is the delivery's without its deadline, which
// a Temporal call that timed out may have spent, bounded again by the delivery timeout.
func (s *Service) queue(ctx context.Context, d inbox.Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	return s.inbox.QueueWebhook(ctx, d.Input.IntegrationID, d.WorkflowID, b)
}

// searchValue is what the CustomerName or CustomerEmail search attribute holds of v, by
// CUSTOMER_SEARCH: v, its keyed hash (codec.SearchHash, which `chatrabridge search-key`
// prints), or nothing.
func (s *Service) searchValue(v string) string {
	switch s.customerSearch {
	case "hash":
		return codec.SearchHash(s.searchKey, v)
	case "off":
		return ""
	}
	return v
}

// summary is the conversation's static summary in the Web UI: "Chat with Ivan on
// Example shop".
func summary(customer, site, chatID string) string {
	name := OneLine(customer, maxSummaryNameRunes)
	if name == "" {
		name = "visitor " + OneLine(chatID, 40)
	}
	// The Web UI renders summaries as Markdown: a name is text, never a link or markup.
	return workflows.CutSummary("Chat with " + workflows.EscapeMarkdown(name) + " on " + workflows.EscapeMarkdown(OneLine(site, 60)))
}

// temporalError classifies a failed Temporal call: unreachable, overloaded or timed out
// is EUNAVAILABLE (503, the sender retries); anything else is internal (500). Both are
// logged, without the token.
func (s *Service) temporalError(err error, op string, attrs ...any) error {
	switch serviceerror.ToStatus(err).Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Canceled:
		s.logger.Warn("webhook: temporal unavailable", append(attrs, "op", op, "error", err)...)
		return &chatrabridge.Error{Code: chatrabridge.EUNAVAILABLE, Message: "Temporal is unavailable; deliver the webhook again later", Err: err}
	case codes.InvalidArgument:
		// Temporal refuses the request itself: sending it again cannot help.
		s.logger.Warn("webhook: temporal refused the request", append(attrs, "op", op, "error", err)...)
		return &chatrabridge.Error{Code: chatrabridge.EINVALID, Message: "Temporal refuses this delivery as it is (" + OneLine(serviceerror.ToStatus(err).Message(), 200) + ")", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// OneLine returns s with its whitespace runs collapsed to single spaces and cut to at
// most n runes ("…" marking a cut).
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// LogValue bounds what an unauthenticated URL can put into a log line.
func LogValue(s string) string {
	if utf8.RuneCountInString(s) <= MaxLoggedValueRunes && utf8.ValidString(s) {
		return s
	}
	return OneLine(strings.ToValidUTF8(s, "?"), MaxLoggedValueRunes)
}
