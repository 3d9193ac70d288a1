package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
)

// a names the activities for ExecuteActivity and for test mocks.
var a *activities.Activities

// Limits of the work one activity call carries.
const (
	// maxBatch bounds the chat messages one AddComments call carries (its payload stays
	// far below Temporal's 2 MiB limit: a Chatra message has at most 5000 characters).
	maxBatch = 100
	// setupRetryFirst and setupRetryMax space the retries of a conversation whose setup
	// failed for good (a bad template id, say): an admin can fix the integration meanwhile.
	setupRetryFirst = time.Minute
	setupRetryMax   = time.Hour
)

// The comment lane's reorder window (doc.go, "Order"): queued chat messages are written
// once no new message has come for reorderQuiet, or once the oldest has waited
// reorderMaxWait, whichever comes first; at once when the chat is closing.
const (
	reorderQuiet   = 2 * time.Second
	reorderMaxWait = 10 * time.Second
)

// ConversationWorkflow is one Chatra chat, synchronised with its Planfix task. The
// package documentation describes what it does; doc.go says why it is built this way.
func ConversationWorkflow(ctx workflow.Context, in ConversationInput) error {
	if strings.TrimSpace(in.IntegrationID) == "" || strings.TrimSpace(in.ChatID) == "" {
		return temporal.NewNonRetryableApplicationError("a conversation needs integrationId and chatId", "conversation.invalid_input", nil)
	}
	c := newConversation(ctx, in)
	if err := c.setup(ctx); err != nil {
		return err
	}
	return c.run(ctx)
}

// conversation is the workflow's state. Four coroutines share it (they never run at the
// same time): receive takes signals in, lifecycle runs the episodes (set up, close, late
// replies, end), commentLane writes chat messages into the task, replyLane sends
// employees' replies into the chat. run, the root, waits until the conversation ends, is
// cancelled, or should continue as new.
type conversation struct {
	in         ConversationInput
	workflowID string
	settings   activities.Settings
	state      State
	visitor    VisitorInfo
	seen       *keySet

	pending     []Message // messages for the current episode's task
	nextPending []Message // messages of a chat that began after the close, for the next episode
	replies     []ReplySignal

	// The reorder window (workflow times, not carried: a new run starts it again).
	lastMessageAt time.Time // a new message was last queued
	pendingSince  time.Time // the oldest message in pending was queued
	nextSince     time.Time // the oldest message in nextPending was queued

	started        bool // a chat event arrived: the conversation wants an episode
	episodeReady   bool // the current episode's task is known
	newEpisode     bool // a new chat began after the close
	closeRequested bool // the current episode is closing
	closeNext      bool // the next episode's chat has already closed
	contactDirty   bool // the visitor's name, email or phone changed
	emailChanged   bool // the visitor's email changed (may link another contact)

	stopping   bool // the root is ending or continuing as new: start nothing more
	seq        int  // bumped by every signal: restarts the idle timer
	busy       int  // activities in flight
	commenting bool // the comment lane is at work
	inFlight   int  // messages in the AddComments call in flight
	replying   bool // the reply lane is at work
	finished   bool
	finishErr  error

	published published
}

// published is what was last upserted as search attributes and current details.
type published struct {
	integration, chat, client, email, name, status string
	task                                           int64
	details                                        string
}

func newConversation(ctx workflow.Context, in ConversationInput) *conversation {
	c := &conversation{in: in, workflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, seen: newKeySet(MaxSeenKeys)}
	c.state = State{IntegrationID: in.IntegrationID, ChatID: in.ChatID, ClientID: in.ClientID, Status: StatusOpen}
	if cr := in.Carried; cr != nil {
		c.state = cr.State
		c.state.IntegrationID, c.state.ChatID = in.IntegrationID, in.ChatID
		if c.state.ClientID == "" {
			c.state.ClientID = in.ClientID
		}
		c.visitor = cr.Visitor
		for _, k := range cr.SeenKeys {
			c.seen.add(k)
		}
		c.pending, c.nextPending, c.replies = cr.Pending, cr.NextPending, cr.Replies
		c.started, c.episodeReady, c.newEpisode = cr.Started, cr.EpisodeReady, cr.NewEpisode
		c.closeRequested, c.closeNext = cr.CloseRequested, cr.CloseNext
		c.contactDirty, c.emailChanged = cr.ContactDirty, cr.EmailChanged
		c.in.Carried = nil
		// The carried messages may still be in their reorder window: it starts again.
		now := workflow.Now(ctx)
		c.lastMessageAt, c.pendingSince, c.nextSince = now, now, now
	}
	if c.state.Status == "" {
		c.state.Status = StatusOpen
	}
	// What the start (or the run before) set already is not upserted again.
	sa, p := workflow.GetTypedSearchAttributes(ctx), &c.published
	p.integration, _ = sa.GetKeyword(SAIntegration)
	p.chat, _ = sa.GetKeyword(SAChatID)
	p.client, _ = sa.GetKeyword(SAClientID)
	p.email, _ = sa.GetKeyword(SAEmail)
	p.name, _ = sa.GetKeyword(SAName)
	p.status, _ = sa.GetKeyword(SAStatus)
	p.task, _ = sa.GetInt64(SATaskID)
	return c
}

func (c *conversation) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) {
		s := c.state
		s.PendingMessages = len(c.pending) + len(c.nextPending)
		s.PendingReplies = len(c.replies)
		return s, nil
	}); err != nil {
		return err
	}
	c.publish(ctx)
	return nil
}

func (c *conversation) run(ctx workflow.Context) error {
	workflow.Go(ctx, c.receive)
	workflow.Go(ctx, c.lifecycle)
	workflow.Go(ctx, c.commentLane)
	workflow.Go(ctx, c.replyLane)
	for {
		err := workflow.Await(ctx, func() bool {
			return c.finished || (c.busy == 0 && c.continueAsNewDue(ctx))
		})
		if err != nil {
			return c.cleanup(ctx)
		}
		// From here no coroutine starts an activity or receives a signal (they run on in
		// this workflow task after the root returns, and what they did would not be
		// carried). Take in what was signalled and not received yet, so that nothing is
		// lost by ending or continuing as new.
		c.stopping = true
		c.drain(ctx)
		if !workflow.AllHandlersFinished(ctx) {
			c.stopping = false
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return c.cleanup(ctx)
			}
			continue // other coroutines ran meanwhile: decide again
		}
		if c.finished {
			if c.finishErr != nil {
				return c.finishErr
			}
			if !c.hasWork() {
				return nil
			}
			// Work came in at the last moment (a new chat, a reply): a new run does it,
			// from where this one stood before it ended.
			if c.state.Status == StatusEnded {
				c.state.Status = StatusClosed
				if c.state.Episode == 0 {
					c.state.Status = StatusOpen
				}
			}
		}
		return workflow.NewContinueAsNewError(ctx, ConversationWorkflowName, c.next())
	}
}

// continueAsNewDue reports whether Temporal suggests continuing as new, or the history
// has reached the input's threshold.
func (c *conversation) continueAsNewDue(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	if info.GetContinueAsNewSuggested() {
		return true
	}
	n := c.in.ContinueAsNewAfterEvents
	return n > 0 && info.GetCurrentHistoryLength() >= n
}

func (c *conversation) hasWork() bool {
	return len(c.pending) > 0 || len(c.nextPending) > 0 || len(c.replies) > 0 || c.newEpisode
}

// next is the input of the run that continues this one.
func (c *conversation) next() ConversationInput {
	return ConversationInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.state.ClientID,
		ContinueAsNewAfterEvents: c.in.ContinueAsNewAfterEvents,
		Carried: &Carried{
			State: c.state, Visitor: c.visitor, SeenKeys: c.seen.keys(),
			Pending: c.pending, NextPending: c.nextPending, Replies: c.replies,
			Started: c.started, EpisodeReady: c.episodeReady, NewEpisode: c.newEpisode,
			CloseRequested: c.closeRequested, CloseNext: c.closeNext,
			ContactDirty: c.contactDirty, EmailChanged: c.emailChanged,
		},
	}
}

// cleanup runs when an admin cancels the workflow: on a disconnected context (the
// workflow's own is cancelled) it leaves a note in the task that the sync stopped and
// marks the conversation cancelled in the store; the task itself is left as it is.
func (c *conversation) cleanup(ctx workflow.Context) error {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	c.state.Status = StatusCancelled
	if c.state.TaskID != 0 {
		text := "The sync of this task with its Chatra chat was stopped by an administrator: new chat messages no longer reach this task, and comments here no longer reach the chat."
		if n := len(c.pending) + len(c.nextPending) + c.inFlight; n > 0 {
			text += fmt.Sprintf(" %d chat message(s) received but not yet added here were not added; the workflow's history in Temporal keeps them.", n)
		}
		if n := len(c.replies); n > 0 {
			text += fmt.Sprintf(" %d reply(ies) were not sent to the chat.", n)
		}
		c.addNote(dctx, c.state.TaskID, "cancelled:"+c.state.ChatID+":"+c.episodeKey(ctx), text)
	}
	c.saveConversation(dctx)
	c.publish(dctx)
	return ctx.Err()
}

// ---- Signals ----

// receive takes signals in as they come. It waits on the channels' lengths rather than
// in a Selector: a Selector blocked on a channel takes a value sent to it into its own
// pending branch, where the root's drain (before continue-as-new) could not see it; the
// value would then be handled after the root had already decided, and be lost to the
// next run. Waiting this way leaves every value in its channel until it is received.
func (c *conversation) receive(ctx workflow.Context) {
	channels := c.signalChannels(ctx)
	for {
		if err := workflow.Await(ctx, func() bool {
			if c.stopping {
				return false
			}
			for _, ch := range channels {
				if ch.Len() > 0 {
					return true
				}
			}
			return false
		}); err != nil {
			return
		}
		c.drain(ctx)
	}
}

func (c *conversation) signalChannels(ctx workflow.Context) []workflow.ReceiveChannel {
	return []workflow.ReceiveChannel{
		workflow.GetSignalChannel(ctx, SignalVisitorInfo),
		workflow.GetSignalChannel(ctx, SignalMessage),
		workflow.GetSignalChannel(ctx, SignalChatClosed),
		workflow.GetSignalChannel(ctx, SignalReply),
	}
}

// drain takes in every signal delivered and not yet received, in a fixed order of the
// signal names (a chat's card before its messages, its messages before its close).
// A payload that does not decode is logged by the SDK and dropped.
func (c *conversation) drain(ctx workflow.Context) {
	ch := c.signalChannels(ctx)
	for {
		n := 0
		var v VisitorInfoSignal
		for ch[0].ReceiveAsync(&v) {
			c.onVisitorInfo(ctx, v)
			v, n = VisitorInfoSignal{}, n+1
		}
		var m MessageSignal
		for ch[1].ReceiveAsync(&m) {
			c.onMessage(ctx, m)
			m, n = MessageSignal{}, n+1
		}
		var cl ChatClosedSignal
		for ch[2].ReceiveAsync(&cl) {
			c.onChatClosed(ctx, cl)
			cl, n = ChatClosedSignal{}, n+1
		}
		var r ReplySignal
		for ch[3].ReceiveAsync(&r) {
			c.onReply(ctx, r)
			r, n = ReplySignal{}, n+1
		}
		if n == 0 {
			return
		}
	}
}

// firstDelivery records a delivery key and reports whether it is new; an empty key is
// always new.
func (c *conversation) firstDelivery(key string) bool {
	return key == "" || c.seen.add("signal:"+key)
}

// touch notes activity: it restarts the idle timer.
func (c *conversation) touch(ctx workflow.Context, clientID string) {
	c.seq++
	c.state.LastActivity = workflow.Now(ctx)
	if c.state.ClientID == "" && clientID != "" {
		c.state.ClientID = clientID
	}
}

// over reports whether the last episode is closed (or the conversation ended).
func (c *conversation) over() bool {
	return c.state.Status == StatusClosed || c.state.Status == StatusEnded
}

// closing reports whether the current chat is over or closing: a new visitor message or
// chat start then begins a new episode.
func (c *conversation) closing() bool {
	return c.over() || c.closeRequested
}

func (c *conversation) onMessage(ctx workflow.Context, s MessageSignal) {
	if !c.firstDelivery(s.Key) {
		return
	}
	c.touch(ctx, s.ClientID)
	if s.Visitor != nil {
		c.mergeVisitor(*s.Visitor)
	}
	for _, m := range s.Messages {
		c.addMessage(ctx, m, false)
	}
	c.started = true
	c.publish(ctx)
}

func (c *conversation) onVisitorInfo(ctx workflow.Context, s VisitorInfoSignal) {
	if !c.firstDelivery(s.Key) {
		return
	}
	c.touch(ctx, s.ClientID)
	c.mergeVisitor(s.Visitor)
	if s.Started && c.closing() {
		c.newEpisode = true
	}
	c.started = true
	c.publish(ctx)
}

func (c *conversation) onChatClosed(ctx workflow.Context, s ChatClosedSignal) {
	if !c.firstDelivery(s.Key) {
		return
	}
	c.touch(ctx, s.ClientID)
	c.mergeVisitor(s.Visitor)
	for _, m := range s.Transcript {
		if c.addMessage(ctx, m, true) {
			c.state.TranscriptAdded++
		}
	}
	switch {
	case c.newEpisode:
		c.closeNext = true // the chat that closed is the one begun after the last close
	case c.state.Status == StatusOpen && !c.closeRequested:
		c.closeRequested = true
		c.state.CloseReason = CloseReasonChatClosed
	}
	c.started = true
	c.publish(ctx)
}

func (c *conversation) onReply(ctx workflow.Context, s ReplySignal) {
	key := replyKey(s)
	if key != "" && !c.seen.add(key) {
		return
	}
	if s.CommentID > 0 && c.ownComment(s.CommentID) {
		return // the bridge's own comment: a visitor's message, an agent's, a note
	}
	if s.CommentID <= 0 && strings.TrimSpace(s.Text) == "" {
		c.state.LastError = "a reply signal had neither commentId nor text; ignored"
		c.publish(ctx)
		return
	}
	c.touch(ctx, "")
	c.replies = append(c.replies, s)
	c.publish(ctx)
}

// replyKeyStart begins the key of a reply from a Planfix comment, followed by its id.
const replyKeyStart = "planfix-comment:"

// replyKey is the de-duplication key of a reply: its Planfix comment, else its Key.
func replyKey(s ReplySignal) string {
	if s.CommentID > 0 {
		return replyKeyStart + strconv.FormatInt(s.CommentID, 10)
	}
	if s.Key == "" {
		return ""
	}
	return "reply:" + s.Key
}

func (c *conversation) ownComment(id int64) bool {
	return c.seen.has("own-comment:" + strconv.FormatInt(id, 10))
}

func (c *conversation) markOwnComment(id int64) {
	if id > 0 {
		c.seen.add("own-comment:" + strconv.FormatInt(id, 10))
	}
}

// addMessage queues a chat message for the task unless it was seen before or the bridge
// sent it, and reports whether it queued it. A visitor's new message after the chat
// closed begins a new episode (so does a transcript's, once the episode is closed).
func (c *conversation) addMessage(ctx workflow.Context, m Message, fromTranscript bool) bool {
	if m.ID == "" {
		m.ID = derivedMessageID(m)
	}
	if !c.seen.add("message:" + m.ID) {
		return false
	}
	c.state.MessagesReceived++
	if strings.EqualFold(strings.TrimSpace(m.ReceivedFrom), ReceivedFromTag) {
		c.state.MessagesSkipped++
		return false
	}
	if strings.TrimSpace(m.Text) == "" {
		// An attachment, most likely (the webhook carries no text for it): the task still
		// says that something was sent, so that nothing goes unnoticed.
		m.Text = "(a message without text, such as an attachment: see the chat in Chatra)"
	}
	if m.Time.IsZero() {
		m.Time = workflow.Now(ctx)
	}
	if m.Type == MessageTypeClient && !c.newEpisode {
		if c.over() || (c.closeRequested && !fromTranscript) {
			c.newEpisode = true
		}
	}
	now := workflow.Now(ctx)
	c.lastMessageAt = now
	if c.newEpisode {
		if len(c.nextPending) == 0 {
			c.nextSince = now
		}
		c.nextPending = append(c.nextPending, m)
	} else {
		if len(c.pending) == 0 {
			c.pendingSince = now
		}
		c.pending = append(c.pending, m)
	}
	return true
}

// derivedMessageID identifies a message that came without an id by its content.
func derivedMessageID(m Message) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%s", m.Type, m.Time.UnixMilli(), m.Text)
	return fmt.Sprintf("derived-%016x", h.Sum64())
}

// mergeVisitor takes in what the card now says. A changed name, email or phone marks the
// contact card for an update once the conversation has a contact (before, the contact is
// found or created with them).
func (c *conversation) mergeVisitor(v VisitorInfo) {
	old := c.visitor
	set := func(dst *string, src string) {
		if s := strings.TrimSpace(src); s != "" {
			*dst = s
		}
	}
	n := &c.visitor
	set(&n.Name, v.Name)
	set(&n.Email, v.Email)
	set(&n.Phone, v.Phone)
	set(&n.City, v.City)
	set(&n.Country, v.Country)
	set(&n.Source, v.Source)
	set(&n.Device, v.Device)
	set(&n.OS, v.OS)
	set(&n.Browser, v.Browser)
	set(&n.IP, v.IP)
	if len(v.Pages) > 0 {
		n.Pages = slices.Clone(v.Pages)
	}
	for _, k := range sortedKeys(v.Extra) {
		if n.Extra == nil {
			n.Extra = map[string]string{}
		}
		n.Extra[k] = v.Extra[k]
	}
	emailChanged := !strings.EqualFold(old.Email, n.Email)
	if c.state.ContactID != 0 && (old.Name != n.Name || emailChanged || old.Phone != n.Phone) {
		c.contactDirty = true
		c.emailChanged = c.emailChanged || emailChanged
	}
	c.state.CustomerName, c.state.CustomerEmail = n.Name, n.Email
}

// ---- Lifecycle ----

func (c *conversation) lifecycle(ctx workflow.Context) {
	if err := c.loadSettings(ctx); err != nil {
		c.finish(err)
		return
	}
	for !c.finished {
		var err error
		switch {
		case c.over():
			err = c.lateReplies(ctx)
		case c.episodeReady:
			err = c.openEpisode(ctx)
		default:
			err = c.awaitFirstEvent(ctx)
		}
		if err != nil {
			if !temporal.IsCanceledError(err) && ctx.Err() == nil {
				c.finish(err)
			}
			return
		}
	}
}

func (c *conversation) finish(err error) {
	c.finished, c.finishErr = true, err
}

func (c *conversation) loadSettings(ctx workflow.Context) error {
	var s activities.Settings
	// A local activity: a short read of the store, on the path to the conversation's
	// task, spared a round trip through the task queue (doc.go, "Latency").
	if err := c.callLocal(ctx, storeLocalOptions(), "LoadSettings", activities.LoadSettingsInput{IntegrationID: c.in.IntegrationID}, &s); err != nil {
		return err
	}
	if s.LateReplyWindow <= 0 {
		s.LateReplyWindow = 72 * time.Hour
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 24 * time.Hour
	}
	c.settings = s
	return nil
}

// awaitFirstEvent waits for a chat event, then sets the first episode up. A run that
// starts without one (an ended conversation restarted by a late reply) delivers its
// replies and ends when none comes within the late-reply window.
func (c *conversation) awaitFirstEvent(ctx workflow.Context) error {
	if !c.started {
		ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      c.settings.LateReplyWindow,
			TimerOptions: workflow.TimerOptions{Summary: "wait for a chat event"},
		}, func() bool { return c.started })
		if err != nil {
			return err
		}
		if !ok {
			return c.end(ctx)
		}
	}
	if c.state.Episode == 0 {
		c.state.Episode = 1
	}
	return c.beginEpisode(ctx)
}

// beginEpisode sets the current episode up (contact, task, action, notes, store row),
// retrying a permanent failure with backoff, or sooner when a new chat event comes (an
// admin may have fixed the integration). It gives up, failing the workflow visibly, once
// the chat has been idle for the idle timeout.
func (c *conversation) beginEpisode(ctx workflow.Context) error {
	if c.state.LastActivity.IsZero() {
		c.state.LastActivity = workflow.Now(ctx)
	}
	for attempt := 0; ; attempt++ {
		err := c.setupEpisode(ctx)
		if err == nil {
			return nil
		}
		if temporal.IsCanceledError(err) || ctx.Err() != nil {
			return err
		}
		c.recordError(ctx, "set up the conversation", err)
		idleUntil := c.state.LastActivity.Add(c.settings.IdleTimeout)
		if !workflow.Now(ctx).Before(idleUntil) {
			return temporal.NewNonRetryableApplicationError(
				"the conversation could not be set up in Planfix and the chat is idle: "+c.state.LastError+"; fix the integration and reset this workflow",
				"conversation.setup_failed", err)
		}
		wait := min(setupRetryFirst<<min(attempt, 10), setupRetryMax, idleUntil.Sub(workflow.Now(ctx)))
		seq := c.seq
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      wait,
			TimerOptions: workflow.TimerOptions{Summary: "retry the setup"},
		}, func() bool { return c.seq != seq }); err != nil {
			return err
		}
	}
}

// setupEpisode sets the current episode up: the contact, the task, the store row, then
// the optional steps. A task refused because Planfix no longer has the contact
// (activities.ErrContactGone: CreateTask has forgotten the store's mappings to it) makes
// it set the contact up again at once (EnsureContact then finds or creates the visitor's
// contact anew) and try the task again, once per call: a second such refusal fails the
// setup like any other error.
func (c *conversation) setupEpisode(ctx workflow.Context) error {
	var task int64
	for again := true; ; again = false {
		if c.state.ContactID == 0 {
			if err := c.ensureContact(ctx); err != nil {
				return err
			}
		}
		var err error
		task, err = c.findOrCreateTask(ctx)
		var app *temporal.ApplicationError
		if err != nil && again && errors.As(err, &app) && app.Type() == activities.ErrContactGone {
			c.recordError(ctx, fmt.Sprintf("create the task for contact %d", c.state.ContactID), err)
			c.state.ContactID = 0
			// The new contact is made from everything the visitor told so far: nothing is
			// left to write onto it, nor an email to look up again.
			c.contactDirty, c.emailChanged = false, false
			c.publish(ctx)
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	c.setTask(ctx, task)
	c.episodeReady = true
	c.publish(ctx)
	// The store first: from now on a Planfix reply in the task finds its chat.
	saved := c.saveConversation(ctx)

	// What follows is useful but not essential: a failure is recorded, not retried here.
	var action activities.AddContactActionResult
	if err := c.call(ctx, planfixOptions("action on the contact: reached out through chat"), a.AddContactAction, activities.AddContactActionInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, Episode: c.state.Episode, EpisodeKey: c.episodeKey(ctx), ContactID: c.state.ContactID,
		TaskID: task, Visitor: c.visitor,
	}, &action); err != nil {
		c.recordError(ctx, "add the action to the contact", err)
	}
	c.writeVisitorNotes(ctx)
	if c.conversationRow() != saved { // a name or an email came meanwhile, or the save failed
		c.saveConversation(ctx)
	}
	return nil
}

// ensureContact finds or creates the visitor's contact and makes it the conversation's.
func (c *conversation) ensureContact(ctx workflow.Context) error {
	known := c.visitor
	var r activities.EnsureContactResult
	if err := c.call(ctx, planfixOptions("find or create the contact: "+c.customer()), a.EnsureContact, activities.EnsureContactInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.state.ClientID, Visitor: c.visitor,
	}, &r); err != nil {
		return err
	}
	c.state.ContactID = r.ContactID
	// What the visitor told while the contact was being found still goes onto it.
	if known.Name != c.visitor.Name || known.Phone != c.visitor.Phone || !strings.EqualFold(known.Email, c.visitor.Email) {
		c.contactDirty = true
		c.emailChanged = !strings.EqualFold(known.Email, c.visitor.Email)
	}
	c.publish(ctx)
	return nil
}

// findOrCreateTask returns the task of the episode: with "create a new task only if the
// contact has no active task" the contact's active task if it has one, else a new task.
func (c *conversation) findOrCreateTask(ctx workflow.Context) (int64, error) {
	if c.settings.NewTaskOnlyIfNoActiveTask {
		var r activities.FindActiveTaskResult
		if err := c.call(ctx, planfixOptions(fmt.Sprintf("find the active task of contact %d", c.state.ContactID)), a.FindActiveTask, activities.FindActiveTaskInput{
			IntegrationID: c.in.IntegrationID, ContactID: c.state.ContactID,
		}, &r); err != nil {
			return 0, err
		}
		if r.TaskID != 0 {
			return r.TaskID, nil
		}
	}
	var r activities.CreateTaskResult
	if err := c.call(ctx, planfixOptions("create the task: "+activities.TaskName(c.customer(), c.settings.Name)), a.CreateTask, activities.CreateTaskInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.state.ClientID, Episode: c.state.Episode, EpisodeKey: c.episodeKey(ctx),
		ContactID: c.state.ContactID, Visitor: c.visitor,
	}, &r); err != nil {
		return 0, err
	}
	return r.TaskID, nil
}

// episodeKey identifies the current episode among every run of this chat's workflow:
// continue-as-new keeps the first run id, while a new run after the conversation ended
// (a late reply, a chat weeks later) has its own and counts episodes from 1 again. It
// names what the episode creates (its task's sourceObjectId, its action on the contact,
// its notes), so that two episodes never share a name.
func (c *conversation) episodeKey(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	run := info.FirstRunID
	if run == "" { // the test environment sets none
		run = info.WorkflowExecution.RunID
	}
	return run + "/" + strconv.Itoa(c.state.Episode)
}

func (c *conversation) setTask(ctx workflow.Context, id int64) {
	c.state.TaskID = id
	c.state.TaskURL = ""
	if id > 0 && c.settings.AccountURL != "" {
		c.state.TaskURL = activities.TaskURL(c.settings.AccountURL, id)
	}
	c.publish(ctx)
}

func (c *conversation) writeVisitorNotes(ctx workflow.Context) {
	if c.state.ClientID == "" || c.state.TaskURL == "" {
		return
	}
	if err := c.call(ctx, chatraOptions("task link into the visitor's notes"), a.WriteVisitorNotes, activities.WriteVisitorNotesInput{
		IntegrationID: c.in.IntegrationID, ClientID: c.state.ClientID, TaskID: c.state.TaskID, TaskURL: c.state.TaskURL,
	}, nil); err != nil {
		c.recordError(ctx, "write the task link into the visitor's notes", err)
	}
}

// conversationRow is what the store keeps of the conversation.
func (c *conversation) conversationRow() activities.SaveConversationInput {
	return activities.SaveConversationInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, WorkflowID: c.workflowID, ClientID: c.state.ClientID,
		TaskID: c.state.TaskID, ContactID: c.state.ContactID, CustomerName: c.state.CustomerName, CustomerEmail: c.state.CustomerEmail,
		Status: c.state.Status,
	}
}

// saveConversation saves the conversation in the store and returns what it saved (the
// zero value when it could not). The replies the store held for the task, because they
// came before any conversation had it, are queued as if their signals had come now
// (de-duplicated by comment id like any reply: one that also came by signal, or the
// bridge's own comment, is not sent again).
func (c *conversation) saveConversation(ctx workflow.Context) activities.SaveConversationInput {
	row := c.conversationRow()
	var r activities.SaveConversationResult
	if err := c.call(ctx, storeOptions("store: conversation "+row.Status), a.SaveConversation, row, &r); err != nil {
		c.recordError(ctx, "save the conversation in the store", err)
		return activities.SaveConversationInput{}
	}
	for _, id := range r.HeldReplies {
		c.onReply(ctx, ReplySignal{Key: replyKeyStart + strconv.FormatInt(id, 10), CommentID: id, TaskID: row.TaskID})
	}
	return row
}

// openEpisode waits for the chat to close, or to be idle for the idle timeout (then it
// closes as if the chat had), and closes the episode: the messages still queued go into
// the task first (transcript included), then the task is completed.
func (c *conversation) openEpisode(ctx workflow.Context) error {
	// One timer per idle period, not one per signal: when it fires, the deadline is
	// computed again from the last activity, which may have moved meanwhile.
	for !c.closeRequested {
		if c.state.LastActivity.IsZero() {
			c.state.LastActivity = workflow.Now(ctx)
		}
		left := c.state.LastActivity.Add(c.settings.IdleTimeout).Sub(workflow.Now(ctx))
		if left <= 0 {
			c.closeRequested = true
			c.state.CloseReason = CloseReasonIdle
			break
		}
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      left,
			TimerOptions: workflow.TimerOptions{Summary: "idle timeout"},
		}, func() bool { return c.closeRequested }); err != nil {
			return err
		}
	}
	if err := c.await(ctx, func() bool { return len(c.pending) == 0 && !c.contactDirty && !c.commenting }); err != nil {
		return err
	}
	if c.state.TaskID != 0 {
		var r activities.CompleteTaskResult
		summary := fmt.Sprintf("complete task #%d (%s)", c.state.TaskID, c.state.CloseReason)
		if err := c.call(ctx, planfixOptions(summary), a.CompleteTask, activities.CompleteTaskInput{
			IntegrationID: c.in.IntegrationID, TaskID: c.state.TaskID,
		}, &r); err != nil {
			if ctx.Err() != nil {
				return err
			}
			c.recordError(ctx, "complete the task", err)
		}
	}
	c.state.Status = StatusClosed
	c.state.ClosedAt = workflow.Now(ctx)
	c.closeRequested = false
	c.publish(ctx)
	c.saveConversation(ctx)
	return nil
}

// lateReplies keeps a closed conversation for the late-reply window: replies are still
// delivered, and a new chat start begins a new episode. Without one it ends.
func (c *conversation) lateReplies(ctx workflow.Context) error {
	if !c.newEpisode {
		left := c.state.ClosedAt.Add(c.settings.LateReplyWindow).Sub(workflow.Now(ctx))
		if left > 0 {
			if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      left,
				TimerOptions: workflow.TimerOptions{Summary: "late-reply window"},
			}, func() bool { return c.newEpisode }); err != nil {
				return err
			}
		}
	}
	if !c.newEpisode {
		return c.end(ctx)
	}
	if err := c.loadSettings(ctx); err != nil { // the integration may have changed since
		if ctx.Err() != nil {
			return err
		}
		c.recordError(ctx, "reload the settings", err)
	}
	// The new episode: the messages of the new chat become the current ones, once the
	// old task has its last ones.
	if err := c.await(ctx, func() bool { return len(c.pending) == 0 && !c.commenting }); err != nil {
		return err
	}
	c.state.Episode++
	c.state.Status = StatusOpen
	c.state.ClosedAt, c.state.CloseReason = time.Time{}, ""
	c.episodeReady, c.newEpisode = false, false
	c.closeRequested, c.closeNext = c.closeNext, false
	if c.closeRequested {
		c.state.CloseReason = CloseReasonChatClosed
	}
	if len(c.nextPending) > 0 {
		c.pendingSince = c.nextSince // pending is empty: the new chat's messages are the oldest
	}
	c.pending = append(c.pending, c.nextPending...)
	c.nextPending = nil
	c.publish(ctx)
	return c.beginEpisode(ctx)
}

// end finishes the conversation once what is queued is done.
func (c *conversation) end(ctx workflow.Context) error {
	firstChat := func() bool { return c.state.Episode == 0 && c.started }
	if err := c.await(ctx, func() bool {
		return c.newEpisode || firstChat() || (len(c.replies) == 0 && !c.replying && len(c.pending) == 0 && !c.commenting)
	}); err != nil {
		return err
	}
	if c.newEpisode || firstChat() {
		return nil // a chat began meanwhile: the lifecycle goes on
	}
	c.state.Status = StatusEnded
	c.publish(ctx)
	c.saveConversation(ctx)
	c.finished = true
	return nil
}

// ---- Comment lane ----

// commentLane writes queued chat messages into the task, one AddComments at a time,
// once their reorder window has passed (reorderWait): what arrives meanwhile, or while a
// call is in flight (waiting at Planfix's rate limit, say), is combined into the next
// call, in the chat's order. It first writes what the visitor told about themselves onto
// the contact card. It lets a waiting reply start before its next call (the reply lane
// waits for it, see replyLane), so that a steady stream of messages cannot hold replies
// back; while it waits out the window it is not at work, so replies go meanwhile.
func (c *conversation) commentLane(ctx workflow.Context) {
	for {
		if err := c.await(ctx, func() bool {
			replyWaiting := len(c.replies) > 0 && !c.replying // its turn first: replies do not starve
			return c.episodeReady && (len(c.pending) > 0 || c.contactDirty) && !replyWaiting
		}); err != nil {
			return
		}
		if wait := c.reorderWait(ctx); wait > 0 && !c.contactDirty {
			// One timer per window, not one per message: when it fires, the deadline is
			// computed again from the last message, which may have come meanwhile.
			if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      wait,
				TimerOptions: workflow.TimerOptions{Summary: "reorder window: wait for late chat messages before writing them"},
			}, func() bool { return c.contactDirty || c.flushNow() }); err != nil {
				return
			}
			continue
		}
		c.commenting = true
		if c.contactDirty {
			c.applyContactChanges(ctx)
		}
		if len(c.pending) > 0 && c.episodeReady && ctx.Err() == nil && c.reorderWait(ctx) <= 0 {
			c.addComments(ctx)
		}
		c.commenting = false
	}
}

// reorderWait is how long the queued messages still wait before they are written: until
// no new message has come for reorderQuiet, or the oldest has waited reorderMaxWait,
// whichever comes first. Chatra may deliver a chat's fragments out of order; a fragment
// that comes late within the window is still written in its place.
func (c *conversation) reorderWait(ctx workflow.Context) time.Duration {
	if c.flushNow() {
		return 0
	}
	quiet := c.lastMessageAt.Add(reorderQuiet)
	if limit := c.pendingSince.Add(reorderMaxWait); limit.Before(quiet) {
		quiet = limit
	}
	return quiet.Sub(workflow.Now(ctx))
}

// flushNow reports whether the queued messages are written without a reorder window:
// the chat is closing (its transcript, the whole chat, is in) or a new chat waits for
// the old task to have its last messages.
func (c *conversation) flushNow() bool {
	return c.closeRequested || c.newEpisode
}

func (c *conversation) addComments(ctx workflow.Context) {
	slices.SortStableFunc(c.pending, func(x, y Message) int { return x.Time.Compare(y.Time) })
	n := min(len(c.pending), maxBatch)
	batch := slices.Clone(c.pending[:n])
	c.pending = slices.Delete(c.pending, 0, n)
	c.publish(ctx)

	msgs := make([]activities.ChatMessage, len(batch))
	for i, m := range batch {
		msgs[i] = activities.ChatMessage{ID: m.ID, Type: m.Type, Text: m.Text, Time: m.Time, AgentName: m.AgentName}
	}
	summary := "comment: " + batch[0].Text
	if m := batch[0]; m.Type != MessageTypeClient {
		summary = "comment: " + agentLabel(m) + " in Chatra: " + m.Text
	}
	if len(batch) > 1 {
		summary = oneLine(summary, 80) + fmt.Sprintf(" (+%d more)", len(batch)-1)
	}
	var r activities.AddCommentsResult
	c.inFlight = len(batch)
	err := c.call(ctx, planfixOptions(summary), a.AddComments, activities.AddCommentsInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, TaskID: c.state.TaskID, ContactID: c.state.ContactID, Messages: msgs,
	}, &r)
	c.inFlight = 0
	switch {
	case err != nil && ctx.Err() != nil:
		c.pending = append(batch, c.pending...) // cancelled: the cleanup counts them
	case err != nil:
		c.state.MessagesFailed += len(batch)
		c.recordError(ctx, fmt.Sprintf("add %d message(s) to task #%d", len(batch), c.state.TaskID), err)
	default:
		c.state.MessagesAdded += len(batch)
		c.state.CommentsAdded += len(r.CommentIDs)
		for _, id := range r.CommentIDs {
			c.markOwnComment(id)
		}
	}
	c.publish(ctx)
}

// applyContactChanges writes the visitor's new name, email or phone onto the contact. A
// new email that belongs to another contact moves the chat to that contact and, when it
// has an active task, into that task (one contact, one active task: a customer on two
// devices keeps one thread); the other contact's card is then left as it is.
func (c *conversation) applyContactChanges(ctx workflow.Context) {
	c.contactDirty = false
	v := c.visitor
	if c.emailChanged && v.Email != "" {
		c.emailChanged = false
		var r activities.EnsureContactResult
		if err := c.call(ctx, planfixOptions("find the contact of "+v.Email), a.EnsureContact, activities.EnsureContactInput{
			IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.state.ClientID, ContactID: c.state.ContactID, Visitor: c.visitor,
		}, &r); err != nil {
			c.recordError(ctx, "find the contact by email", err)
			return
		}
		if r.Switched {
			c.state.ContactID = r.ContactID
			c.publish(ctx)
			c.joinContactTask(ctx)
			return
		}
	}
	if err := c.call(ctx, planfixOptions("update the contact: "+c.customer()), a.UpdateContact, activities.UpdateContactInput{
		IntegrationID: c.in.IntegrationID, ContactID: c.state.ContactID, Name: v.Name, Email: v.Email, Phone: v.Phone,
	}, nil); err != nil {
		c.recordError(ctx, "update the contact", err)
	}
}

// joinContactTask moves the chat into the active task of its (new) contact, if there is
// one: the old task gets a note where the conversation went and is completed, the
// joined one a note where it came from.
func (c *conversation) joinContactTask(ctx workflow.Context) {
	var r activities.FindActiveTaskResult
	if err := c.call(ctx, planfixOptions(fmt.Sprintf("find the active task of contact %d", c.state.ContactID)), a.FindActiveTask, activities.FindActiveTaskInput{
		IntegrationID: c.in.IntegrationID, ContactID: c.state.ContactID, ExcludeTaskID: c.state.TaskID,
	}, &r); err != nil {
		c.recordError(ctx, "find the contact's active task", err)
		c.saveConversation(ctx)
		return
	}
	if !r.Found {
		c.saveConversation(ctx)
		return
	}
	old := c.state.TaskID
	oldURL := c.state.TaskURL
	c.setTask(ctx, r.TaskID)
	saved := c.saveConversation(ctx) // a reply in the joined task finds this chat from now on
	if old != 0 {
		c.addNote(ctx, old, "moved:"+c.in.ChatID+":"+c.episodeKey(ctx), fmt.Sprintf(
			"The customer introduced themselves as %s, who already has task #%d: this chat continues there (%s).", c.visitor.Email, r.TaskID, c.state.TaskURL))
		if err := c.call(ctx, planfixOptions(fmt.Sprintf("complete task #%d (continued in #%d)", old, r.TaskID)), a.CompleteTask, activities.CompleteTaskInput{
			IntegrationID: c.in.IntegrationID, TaskID: old,
		}, nil); err != nil {
			c.recordError(ctx, "complete the task the chat left", err)
		}
	}
	text := fmt.Sprintf("%s also writes from another chat (Chatra chat %s); its messages continue here.", c.customer(), c.in.ChatID)
	if old != 0 {
		text += fmt.Sprintf(" Its earlier messages are in task #%d (%s).", old, oldURL)
	}
	c.addNote(ctx, r.TaskID, "joined:"+c.in.ChatID+":"+c.episodeKey(ctx), text)
	c.writeVisitorNotes(ctx)
	if c.conversationRow() != saved {
		c.saveConversation(ctx)
	}
}

// ---- Reply lane ----

// replyLane sends queued replies into the chat, one at a time, in order. It waits while
// the comment lane is at work: a reply signal for a comment the bridge is writing itself
// is then recognised as the bridge's own.
func (c *conversation) replyLane(ctx workflow.Context) {
	for {
		if err := c.await(ctx, func() bool { return len(c.replies) > 0 && !c.commenting }); err != nil {
			return
		}
		c.replying = true
		c.sendReply(ctx, c.replies[0])
		if ctx.Err() == nil {
			c.replies = c.replies[1:]
		}
		c.replying = false
		c.publish(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}

func (c *conversation) sendReply(ctx workflow.Context, s ReplySignal) {
	if s.CommentID > 0 && c.ownComment(s.CommentID) {
		return
	}
	key := replyKey(s)
	if key == "" {
		key = fmt.Sprintf("reply:%s:%d", workflow.GetInfo(ctx).WorkflowExecution.RunID, c.state.RepliesSent+c.state.RepliesFailed+c.state.RepliesSkipped)
	}
	task := s.TaskID
	if task == 0 {
		task = c.state.TaskID
	}
	var note string
	summary := "reply: " + s.Text
	if s.CommentID > 0 {
		summary = fmt.Sprintf("reply: Planfix comment %d", s.CommentID)
	}
	if c.state.ClientID == "" {
		c.state.RepliesFailed++
		c.state.LastError = "a reply could not be sent: the conversation does not know its Chatra visitor"
		note = "This reply was not sent to the chat: the conversation does not know its Chatra visitor."
	} else {
		var r activities.SendReplyResult
		err := c.call(ctx, replyOptions(summary), a.SendReply, activities.SendReplyInput{
			IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.state.ClientID, TaskID: task, Key: key,
			CommentID: s.CommentID, Text: s.Text, AuthorName: s.AuthorName, AuthorEmail: s.AuthorEmail, ReceivedFrom: ReceivedFromTag,
		}, &r)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			c.state.RepliesFailed++
			c.recordError(ctx, "send a reply to the chat", err)
			note = "This reply was not sent to the chat: " + errorText(err)
		case r.Outcome == activities.ReplySent:
			c.state.RepliesSent++
			for _, id := range r.MessageIDs {
				if id != "" {
					c.seen.add("message:" + id) // its echo in a webhook is not a new message
				}
			}
			if r.Reason != "" {
				note = "The reply was sent to the chat, but " + r.Reason + "."
			}
		case r.Outcome == activities.ReplyRefused:
			c.state.RepliesFailed++
			c.state.LastError = "a reply was not sent: " + r.Reason
			note = "This reply was not sent to the chat: " + r.Reason + "."
		default:
			c.state.RepliesSkipped++
		}
	}
	if note != "" && task != 0 {
		if s.CommentID > 0 {
			note = fmt.Sprintf("Comment %d: %s", s.CommentID, note)
		}
		c.addNote(ctx, task, "reply-note:"+key, note)
	}
}

// ---- Helpers ----

func (c *conversation) addNote(ctx workflow.Context, task int64, key, text string) {
	var r activities.AddNoteResult
	if err := c.call(ctx, planfixOptions("note: "+text), a.AddNote, activities.AddNoteInput{
		IntegrationID: c.in.IntegrationID, TaskID: task, Key: key, Text: text,
	}, &r); err != nil {
		c.recordError(ctx, fmt.Sprintf("add a note to task #%d", task), err)
		return
	}
	c.markOwnComment(r.CommentID)
}

// errStopping is what call returns instead of starting an activity once the root has
// decided to end or continue as new.
var errStopping = temporal.NewCanceledError("the conversation is continuing as new")

// call runs an activity and waits for its result, counting it as in flight.
func (c *conversation) call(ctx workflow.Context, o workflow.ActivityOptions, fn, in, out any) error {
	if c.stopping {
		return errStopping
	}
	c.busy++
	defer func() { c.busy-- }()
	o.Summary = oneLine(o.Summary, 100)
	f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), fn, in)
	if out == nil {
		return f.Get(ctx, nil)
	}
	return f.Get(ctx, out)
}

// callLocal runs a local activity, by its registered name (a.M is a method value on a
// nil receiver, which a local activity would call), and waits for its result.
func (c *conversation) callLocal(ctx workflow.Context, o workflow.LocalActivityOptions, name string, in, out any) error {
	if c.stopping {
		return errStopping
	}
	c.busy++
	defer func() { c.busy-- }()
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, o), name, in).Get(ctx, out)
}

// await waits for cond; it fails only when the workflow is cancelled (also when cond
// already holds, so that a loop around it ends).
func (c *conversation) await(ctx workflow.Context, cond func() bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return !c.stopping && cond() })
}

// recordError keeps the latest failure in the state (the query and the current details
// show it) and logs it; the conversation goes on.
func (c *conversation) recordError(ctx workflow.Context, what string, err error) {
	c.state.LastError = what + ": " + errorText(err)
	workflow.GetLogger(ctx).Warn("conversation: "+what, "error", err)
	c.publish(ctx)
}

// errorText is the cause of an activity failure as a person should read it.
func errorText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "it kept failing until its time ran out (" + timeout.TimeoutType().String() + ")"
	}
	return err.Error()
}

func (c *conversation) customer() string {
	if c.visitor.Name != "" {
		return c.visitor.Name
	}
	if c.visitor.Email != "" {
		return c.visitor.Email
	}
	return "visitor " + c.state.ClientID
}

// publish upserts the search attributes that changed and the current details.
func (c *conversation) publish(ctx workflow.Context) {
	p := &c.published
	var up []temporal.SearchAttributeUpdate
	keyword := func(key temporal.SearchAttributeKeyKeyword, last *string, v string) {
		v = truncateBytes(v, 255)
		if v != "" && v != *last {
			up = append(up, key.ValueSet(v))
			*last = v
		}
	}
	keyword(SAIntegration, &p.integration, c.state.IntegrationID)
	keyword(SAChatID, &p.chat, c.state.ChatID)
	keyword(SAClientID, &p.client, c.state.ClientID)
	keyword(SAEmail, &p.email, c.state.CustomerEmail)
	keyword(SAName, &p.name, c.state.CustomerName)
	keyword(SAStatus, &p.status, c.state.Status)
	if t := c.state.TaskID; t != 0 && t != p.task {
		up = append(up, SATaskID.ValueSet(t))
		p.task = t
	}
	if len(up) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, up...); err != nil {
			workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		}
	}
	if d := c.details(); d != p.details {
		workflow.SetCurrentDetails(ctx, d)
		p.details = d
	}
}

// details is the conversation's current details for the Web UI (markdown).
func (c *conversation) details() string {
	s := c.state
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**", s.Status)
	if s.Episode > 0 {
		fmt.Fprintf(&b, " · episode %d", s.Episode)
	}
	switch {
	case s.TaskID != 0 && s.TaskURL != "":
		fmt.Fprintf(&b, " · [task #%d](%s)", s.TaskID, s.TaskURL)
	case s.TaskID != 0:
		fmt.Fprintf(&b, " · task #%d", s.TaskID)
	}
	if name := strings.TrimSpace(s.CustomerName + " " + angle(s.CustomerEmail)); name != "" {
		fmt.Fprintf(&b, "\n\n%s", name)
	}
	fmt.Fprintf(&b, "\n\n%d message(s) received, %d added to the task; %d reply(ies) sent", s.MessagesReceived, s.MessagesAdded, s.RepliesSent)
	if s.RepliesFailed > 0 {
		fmt.Fprintf(&b, ", %d not sent", s.RepliesFailed)
	}
	if n := len(c.pending) + len(c.nextPending); n > 0 {
		fmt.Fprintf(&b, "; %d message(s) waiting", n)
	}
	if s.LastError != "" {
		fmt.Fprintf(&b, "\n\nLast error: %s", oneLine(s.LastError, 300))
	}
	return b.String()
}

func angle(email string) string {
	if email == "" {
		return ""
	}
	return "<" + email + ">"
}

func agentLabel(m Message) string {
	if n := strings.TrimSpace(m.AgentName); n != "" {
		return "Agent " + n
	}
	return "an agent"
}

// oneLine collapses white space and cuts s to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// truncateBytes cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// keySet is a set of strings that keeps at most max of them, forgetting the oldest first.
type keySet struct {
	order []string
	set   map[string]bool
	max   int
}

func newKeySet(max int) *keySet { return &keySet{set: map[string]bool{}, max: max} }

func (s *keySet) has(k string) bool { return s.set[k] }

// add records k and reports whether it was new.
func (s *keySet) add(k string) bool {
	if s.set[k] {
		return false
	}
	s.set[k] = true
	s.order = append(s.order, k)
	if len(s.order) > s.max {
		delete(s.set, s.order[0])
		s.order = slices.Delete(s.order, 0, 1)
	}
	return true
}

func (s *keySet) keys() []string { return slices.Clone(s.order) }
