package workflows

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
)

// a names the activities for ExecuteActivity and for test mocks.
var a *activities.Activities

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

// conversation is the workflow. Its durable state is st, all of it, and nothing else is
// carried to the next run. Four coroutines share it (they never run at the same time):
// receive takes signals in (signals.go), lifecycle runs the episodes (episode.go),
// commentLane writes chat messages into the task (comments.go), replyLane sends
// employees' replies into the chat (replies.go). run, the root, waits until the
// conversation ends, is cancelled, or should continue as new.
type conversation struct {
	in         ConversationInput // IntegrationID, ChatID, ContinueAsNewAfterEvents
	workflowID string
	settings   activities.Settings // loaded at the start of each run and of each episode
	st         Carried

	// The reorder window (workflow times; a new run starts it again).
	lastMessageAt time.Time // a new message was last queued
	pendingSince  time.Time // the oldest message in st.Pending was queued
	nextSince     time.Time // the oldest message in st.NextChat.Messages was queued

	stopping     bool // the root is ending or continuing as new: start nothing more
	seq          int  // bumped by every signal: restarts the idle timer
	waitSeq      int  // bumped when a wait begins or ends: restarts the reminder timer
	busy         int  // activities in flight
	commenting   bool // the comment lane is at work
	inFlight     int  // messages in the AddComments call in flight
	replying     bool // the reply lane is at work
	finished     bool
	finishErr    error
	chatAfterEnd bool      // a chat event came after a conversation without a chat ended
	chatStarted  time.Time // the current episode began (this run); zero: before this run
	// commentedTask is the task this run last added messages to: the first messages
	// of a task go in the setup's request class (comments.go).
	commentedTask int64

	published published
	carried   carriedSize // the size of what continue-as-new would pass, when last measured
}

func newConversation(ctx workflow.Context, in ConversationInput) *conversation {
	c := &conversation{in: in, workflowID: workflow.GetInfo(ctx).WorkflowExecution.ID}
	c.in.Carried = nil
	if in.Carried != nil {
		c.st = *in.Carried
		c.st.State.IntegrationID, c.st.State.ChatID = in.IntegrationID, in.ChatID
		if c.st.State.ClientID == "" {
			c.st.State.ClientID = in.ClientID
		}
		// The carried messages may still be in their reorder window: it starts again.
		now := workflow.Now(ctx)
		c.lastMessageAt, c.pendingSince, c.nextSince = now, now, now
	} else {
		c.st = Carried{Phase: PhaseWaiting, State: State{IntegrationID: in.IntegrationID, ChatID: in.ChatID, ClientID: in.ClientID}}
	}
	if c.st.Phase == "" {
		c.st.Phase = PhaseWaiting
	}
	c.st.State.Status = c.st.Phase.status()
	c.readPublished(ctx)
	return c
}

// setPhase moves the episode to p, and the status with it.
func (c *conversation) setPhase(p Phase) {
	c.st.Phase = p
	c.st.State.Status = p.status()
}

func (c *conversation) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) {
		s := c.st.State
		s.PendingMessages = len(c.st.Pending) + len(c.st.NextChat.Messages)
		s.PendingReplies = len(c.st.Replies)
		w := c.st.Waiting
		s.WaitingSince, s.UnansweredMessages, s.RemindersSent = w.Since, w.Messages, w.Reminders
		s.NextReminderAt, _ = c.nextReminder()
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
	workflow.Go(ctx, c.reminderLane)
	for {
		err := workflow.Await(ctx, func() bool {
			return c.finished || (c.busy == 0 && c.continueAsNewDue(ctx))
		})
		if err != nil {
			return c.cleanup(ctx)
		}
		if c.finished || !c.carriedOverBound() || !patched(ctx, patchPayloadBounds) {
			break
		}
		// What the next run would get is too large for Temporal to pass: the lanes
		// write what is queued first (the history may grow meanwhile; it has room).
		if err := workflow.Await(ctx, func() bool { return c.finished || !c.carriedOverBound() }); err != nil {
			return c.cleanup(ctx)
		}
	}
	// From here no coroutine starts an activity or receives a signal (they run on in
	// this workflow task after the root returns, and what they did would not be
	// carried). Take in what was signalled and not received yet, so that nothing is
	// lost by ending or continuing as new.
	c.stopping = true
	c.drain(ctx)
	if c.finished {
		if c.finishErr != nil {
			return c.finishErr
		}
		if !c.hasWork() {
			return nil
		}
		// Work came in at the last moment (a new chat, a reply): a new run does it,
		// from where this one stood before it ended.
		if c.st.Phase == PhaseEnded {
			c.setPhase(c.resumePhase())
		}
	}
	return workflow.NewContinueAsNewError(ctx, ConversationWorkflowName, c.next())
}

// maxCarriedBytes bounds what continue-as-new passes to the next run (Carried), below
// Temporal's limit on a payload: beyond it, the run waits for its queues to shrink.
const maxCarriedBytes = 3 << 19 // 1.5 MiB

// carriedSize is the size of the next run's input, measured when its queues had the
// shape in shape.
type carriedSize struct {
	shape [7]int
	bytes int
}

// carriedOverBound reports whether the next run's input is over maxCarriedBytes. The
// condition of workflow.Await that calls this is evaluated at every step of the workflow,
// and encoding megabytes of state takes tens of milliseconds: a burst of large messages
// kept workflow tasks busy for over a second on a loaded machine (and Temporal's deadlock
// detector failed them). So the size is measured again only when the queues or the seen
// keys changed, and the queues are measured by carriedBytes, not encoded.
func (c *conversation) carriedOverBound() bool {
	shape := [7]int{len(c.st.Pending), len(c.st.NextChat.Messages), len(c.st.Replies), len(c.st.SeenKeys.order)}
	for _, m := range c.st.Pending {
		shape[4] += len(m.Text)
	}
	for _, m := range c.st.NextChat.Messages {
		shape[5] += len(m.Text)
	}
	for _, r := range c.st.Replies {
		shape[6] += len(r.Text)
	}
	if c.carried.bytes == 0 || shape != c.carried.shape {
		c.carried = carriedSize{shape: shape, bytes: max(carriedBytes(c.next()), 1)}
	}
	return c.carried.bytes > maxCarriedBytes
}

// carriedBytes is at least the size of in as Temporal carries it (JSON): the rest of the
// state encoded, and its queues and seen keys (where the bytes are) counted string by
// string, with room for each element's field names.
func carriedBytes(in ConversationInput) int {
	st := *in.Carried
	n := 0
	for _, m := range slices.Concat(st.Pending, st.NextChat.Messages) {
		n += 160 + jsonStringBytes(m.ID) + jsonStringBytes(m.Type) + jsonStringBytes(m.Text) +
			jsonStringBytes(m.AgentID) + jsonStringBytes(m.AgentName) + jsonStringBytes(m.ReceivedFrom)
	}
	for _, r := range st.Replies {
		n += 120 + jsonStringBytes(r.Key) + jsonStringBytes(r.Text) + jsonStringBytes(r.AuthorName) + jsonStringBytes(r.AuthorEmail)
	}
	for _, k := range st.SeenKeys.order {
		n += 1 + jsonStringBytes(k)
	}
	st.Pending, st.NextChat.Messages, st.Replies, st.SeenKeys = nil, nil, nil, keySet{}
	in.Carried = &st
	return n + payloadSize(in)
}

// jsonStringBytes is the length of s as encoding/json writes it: quoted, with '"' and '\\'
// escaped, control characters, '<', '>', '&', U+2028 and U+2029 as \uXXXX (or \n, \r,
// \t) and each byte of invalid UTF-8 as \ufffd.
func jsonStringBytes(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// resumePhase is where a conversation that ended resumes when work came at the last
// moment: closed after an episode, else waiting for its first chat (or setting it up,
// when a chat event came after the end).
func (c *conversation) resumePhase() Phase {
	switch {
	case c.st.State.Episode > 0:
		return PhaseClosed
	case c.chatAfterEnd:
		return PhaseSettingUp
	}
	return PhaseWaiting
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
	return len(c.st.Pending) > 0 || len(c.st.NextChat.Messages) > 0 || len(c.st.Replies) > 0 || c.st.NextChat.Begun
}

// next is the input of the run that continues this one: the whole state.
func (c *conversation) next() ConversationInput {
	st := c.st
	return ConversationInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.st.State.ClientID,
		ContinueAsNewAfterEvents: c.in.ContinueAsNewAfterEvents,
		Carried:                  &st,
	}
}

// cleanup runs when an admin cancels the workflow: on a disconnected context (the
// workflow's own is cancelled) it leaves a note in the task that the sync stopped and
// marks the conversation cancelled in the store; the task itself is left as it is.
func (c *conversation) cleanup(ctx workflow.Context) error {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	c.setPhase(PhaseCancelled)
	c.stopWaiting()
	if task := c.st.State.TaskID; task != 0 {
		unsent := len(c.st.Pending) + len(c.st.NextChat.Messages) + c.inFlight
		c.addNote(dctx, task, "cancelled:"+c.st.State.ChatID+":"+c.episodeKey(ctx), cancelledNote(unsent, len(c.st.Replies)))
	}
	c.saveConversation(dctx)
	c.publish(dctx)
	return ctx.Err()
}

// customer names the customer for summaries and notes.
func (c *conversation) customer() string {
	if c.st.Visitor.Name != "" {
		return c.st.Visitor.Name
	}
	if c.st.Visitor.Email != "" {
		return c.st.Visitor.Email
	}
	return "visitor " + c.st.State.ClientID
}
