package workflows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
)

// The episode lifecycle: one chat, one task. lifecycle moves the conversation through
// its phases (state.go): set up, open, closing, closed, ended.

// setupRetryFirst and setupRetryMax space the retries of a conversation whose setup
// failed for good (a bad template id, say): an admin can fix the integration meanwhile.
const (
	setupRetryFirst = time.Minute
	setupRetryMax   = time.Hour
)

func (c *conversation) lifecycle(ctx workflow.Context) {
	if err := c.loadSettings(ctx); err != nil {
		c.finish(err)
		return
	}
	for !c.finished {
		var err error
		switch c.st.Phase {
		case PhaseClosed, PhaseEnded:
			err = c.lateReplies(ctx)
		case PhaseOpen, PhaseClosing:
			err = c.openEpisode(ctx)
		default: // waiting, setting up
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

// loadSettings reads the integration's settings (activities.LoadSettings fills in the
// defaults of the late-reply window and the idle timeout).
func (c *conversation) loadSettings(ctx workflow.Context) error {
	var s activities.Settings
	// A local activity: a short read of the store, on the path to the conversation's
	// task, spared a round trip through the task queue (doc.go, "Latency").
	if err := c.callLocal(ctx, storeLocalOptions(), "LoadSettings", activities.LoadSettingsInput{IntegrationID: c.in.IntegrationID}, &s); err != nil {
		return err
	}
	c.settings = s
	return nil
}

// awaitFirstEvent waits for a chat event, then sets the first episode up. A run that
// starts without one (an ended conversation restarted by a late reply) delivers its
// replies and ends when none comes within the late-reply window.
func (c *conversation) awaitFirstEvent(ctx workflow.Context) error {
	if c.st.Phase == PhaseWaiting {
		ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      c.settings.LateReplyWindow,
			TimerOptions: workflow.TimerOptions{Summary: "wait for a chat event"},
		}, func() bool { return c.st.Phase != PhaseWaiting })
		if err != nil {
			return err
		}
		if !ok {
			return c.end(ctx)
		}
	}
	if c.st.State.Episode == 0 {
		c.st.State.Episode = 1
	}
	return c.beginEpisode(ctx)
}

// beginEpisode sets the current episode up (contact, task, action, notes, store row),
// retrying a permanent failure with backoff, or sooner when a new chat event comes (an
// admin may have fixed the integration). It gives up, failing the workflow visibly, once
// the chat has been idle for the idle timeout.
func (c *conversation) beginEpisode(ctx workflow.Context) error {
	c.chatStarted = workflow.Now(ctx)
	if c.st.State.LastActivity.IsZero() {
		c.st.State.LastActivity = workflow.Now(ctx)
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
		idleUntil := c.st.State.LastActivity.Add(c.settings.IdleTimeout)
		if !workflow.Now(ctx).Before(idleUntil) {
			return temporal.NewNonRetryableApplicationError(
				"the conversation could not be set up in Planfix and the chat is idle: "+c.st.State.LastError+"; fix the integration and reset this workflow",
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
	newContact, joined := false, false
	for again := true; ; again = false {
		if c.st.State.ContactID == 0 {
			var err error
			if newContact, err = c.ensureContact(ctx); err != nil {
				return err
			}
		}
		var err error
		task, joined, err = c.findOrCreateTask(ctx, newContact)
		var app *temporal.ApplicationError
		if err != nil && again && errors.As(err, &app) && app.Type() == activities.ErrContactGone {
			c.recordError(ctx, fmt.Sprintf("create the task for contact %d", c.st.State.ContactID), err)
			c.st.State.ContactID = 0
			// The new contact is made from everything the visitor told so far: nothing is
			// left to write onto it, nor an email to look up again.
			c.st.ContactChanges = ContactChanges{}
			c.publish(ctx)
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	c.st.TaskJoined = joined
	c.setTask(ctx, task)
	if c.st.State.CloseReason != "" { // the chat closed while the task was being set up
		c.setPhase(PhaseClosing)
	} else {
		c.setPhase(PhaseOpen)
	}
	c.publish(ctx)
	// The store first: from now on a Planfix reply in the task finds its chat.
	saved, elsewhere := c.saveConversation(ctx)
	switch {
	case joined && elsewhere && patched(ctx, patchClaimNote):
		// Joined on an email claim: the task's employees learn that this chat does not
		// get their replies.
		c.addNote(ctx, task, "claim:"+c.in.ChatID+":"+c.episodeKey(ctx), claimNote(c.customer(), c.st.Visitor.Email, c.in.ChatID, 0, ""))
	case !joined && c.st.ContactClaimed && patched(ctx, patchClaimNote):
		// A task of its own, for a contact found by the email the visitor typed: the
		// employees learn that the visitor may not be that customer.
		c.addNote(ctx, task, "claim:"+c.in.ChatID+":"+c.episodeKey(ctx), claimedContactNote(c.st.Visitor.Email))
	}

	// What follows is useful but not essential: a failure is recorded, not retried here.
	var action activities.AddContactActionResult
	if err := c.call(ctx, planfixOptions("action on the contact: reached out through chat"), a.AddContactAction, activities.AddContactActionInput{ChatStart: c.chatStart(ctx),
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, Episode: c.st.State.Episode, EpisodeKey: c.episodeKey(ctx), ContactID: c.st.State.ContactID,
		TaskID: task, Visitor: c.st.Visitor,
	}, &action); err != nil {
		c.recordError(ctx, "add the action to the contact", err)
	}
	c.writeVisitorNotes(ctx)
	if c.conversationRow() != saved { // a name or an email came meanwhile, or the save failed
		c.saveConversation(ctx)
	}
	return nil
}

// ensureContact finds or creates the visitor's contact and makes it the conversation's;
// it reports whether the contact was created.
func (c *conversation) ensureContact(ctx workflow.Context) (created bool, err error) {
	known := c.st.Visitor
	var r activities.EnsureContactResult
	if err := c.call(ctx, planfixOptions("find or create the contact: "+c.customer()), a.EnsureContact, activities.EnsureContactInput{ChatStart: c.chatStart(ctx),
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.st.State.ClientID, Visitor: c.st.Visitor,
	}, &r); err != nil {
		return false, err
	}
	c.st.State.ContactID = r.ContactID
	c.st.ContactClaimed = r.Claimed
	// What the visitor told while the contact was being found still goes onto it.
	now := c.st.Visitor
	if known.Name != now.Name || known.Phone != now.Phone || !strings.EqualFold(known.Email, now.Email) {
		c.st.ContactChanges = ContactChanges{Dirty: true, EmailChanged: !strings.EqualFold(known.Email, now.Email)}
	}
	c.publish(ctx)
	return r.How == activities.ContactCreated, nil
}

// findOrCreateTask returns the task of the episode: with "create a new task only if the
// contact has no active task" the contact's active task if it has one (joined: another
// chat created it), else a new task. A contact created in this setup has none: it is
// not searched (once patched).
func (c *conversation) findOrCreateTask(ctx workflow.Context, newContact bool) (task int64, joined bool, err error) {
	if c.settings.NewTaskOnlyIfNoActiveTask && !(newContact && patched(ctx, patchNoTaskSearchForNewContact)) {
		var r activities.FindActiveTaskResult
		if err := c.call(ctx, planfixOptions(fmt.Sprintf("find the active task of contact %d", c.st.State.ContactID)), a.FindActiveTask, activities.FindActiveTaskInput{ChatStart: c.chatStart(ctx),
			IntegrationID: c.in.IntegrationID, ContactID: c.st.State.ContactID,
		}, &r); err != nil {
			return 0, false, err
		}
		if r.TaskID != 0 {
			return r.TaskID, true, nil
		}
	}
	var r activities.CreateTaskResult
	if err := c.call(ctx, planfixOptions("create the task: "+activities.TaskName(c.customer(), c.settings.Name)), a.CreateTask, activities.CreateTaskInput{ChatStart: c.chatStart(ctx),
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.st.State.ClientID, Episode: c.st.State.Episode, EpisodeKey: c.episodeKey(ctx),
		ContactID: c.st.State.ContactID, Visitor: c.st.Visitor,
	}, &r); err != nil {
		return 0, false, err
	}
	return r.TaskID, false, nil
}

// chatStart is the start of the chat the conversation's Planfix requests serve, by which
// the rate limiter serves the older chat first within a request class: when its current
// episode began, or, in a run that continued as new in the middle of one, when the run
// started (an episode older than that is served as if it began then). Not a command:
// recorded histories replay with it.
func (c *conversation) chatStart(ctx workflow.Context) activities.ChatStart {
	t := c.chatStarted
	if t.IsZero() {
		t = workflow.GetInfo(ctx).WorkflowStartTime
	}
	return activities.ChatStart{ChatStartedAt: t}
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
	return run + "/" + strconv.Itoa(c.st.State.Episode)
}

func (c *conversation) setTask(ctx workflow.Context, id int64) {
	c.st.State.TaskID = id
	c.st.State.TaskURL = ""
	if id > 0 && c.settings.AccountURL != "" {
		c.st.State.TaskURL = activities.TaskURL(c.settings.AccountURL, id)
	}
	c.publish(ctx)
}

func (c *conversation) writeVisitorNotes(ctx workflow.Context) {
	if c.st.State.ClientID == "" || c.st.State.TaskURL == "" {
		return
	}
	if err := c.call(ctx, chatraOptions("task link into the visitor's notes"), a.WriteVisitorNotes, activities.WriteVisitorNotesInput{
		IntegrationID: c.in.IntegrationID, ClientID: c.st.State.ClientID, TaskID: c.st.State.TaskID, TaskURL: c.st.State.TaskURL,
	}, nil); err != nil {
		c.recordError(ctx, "write the task link into the visitor's notes", err)
	}
}

// conversationRow is what the store keeps of the conversation.
func (c *conversation) conversationRow() activities.SaveConversationInput {
	s := c.st.State
	return activities.SaveConversationInput{
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, WorkflowID: c.workflowID, ClientID: s.ClientID,
		TaskID: s.TaskID, ContactID: s.ContactID, CustomerName: s.CustomerName, CustomerEmail: s.CustomerEmail,
		Status: s.Status, JoinedTask: c.st.TaskJoined && !c.settings.TrustEmailClaims,
	}
}

// saveConversation saves the conversation in the store and returns what it saved (the
// zero value when it could not), and whether the task's replies go to another chat
// than this one (it joined the task on an email claim). The replies the store held for
// the task, because they came before any conversation had it, are queued as if their
// signals had come now (de-duplicated by comment id like any reply: one that also came
// by signal, or the bridge's own comment, is not sent again).
func (c *conversation) saveConversation(ctx workflow.Context) (saved activities.SaveConversationInput, repliesElsewhere bool) {
	row := c.conversationRow()
	var r activities.SaveConversationResult
	if err := c.call(ctx, storeOptions("store: conversation "+string(row.Status)), a.SaveConversation, row, &r); err != nil {
		c.recordError(ctx, "save the conversation in the store", err)
		return activities.SaveConversationInput{}, false
	}
	for _, id := range r.HeldReplies {
		c.onReply(ctx, ReplySignal{Key: replyKeyStart + strconv.FormatInt(id, 10), CommentID: id, TaskID: row.TaskID})
	}
	if row.TaskID != 0 {
		c.st.ClaimUnverified = r.RepliesElsewhere
	}
	return row, r.RepliesElsewhere
}

// openEpisode waits for the chat to close, or to be idle for the idle timeout (then it
// closes as if the chat had), and closes the episode: the messages still queued go into
// the task first (transcript included), then the task is completed.
func (c *conversation) openEpisode(ctx workflow.Context) error {
	// One timer per idle period, not one per signal: when it fires, the deadline is
	// computed again from the last activity, which may have moved meanwhile.
	for c.st.Phase == PhaseOpen {
		if c.st.State.LastActivity.IsZero() {
			c.st.State.LastActivity = workflow.Now(ctx)
		}
		left := c.st.State.LastActivity.Add(c.settings.IdleTimeout).Sub(workflow.Now(ctx))
		if left <= 0 {
			c.setPhase(PhaseClosing)
			c.st.State.CloseReason = CloseReasonIdle
			c.stopWaiting()
			break
		}
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      left,
			TimerOptions: workflow.TimerOptions{Summary: "idle timeout"},
		}, func() bool { return c.st.Phase != PhaseOpen }); err != nil {
			return err
		}
	}
	if err := c.await(ctx, func() bool { return len(c.st.Pending) == 0 && !c.st.ContactChanges.Dirty && !c.commenting }); err != nil {
		return err
	}
	if task := c.st.State.TaskID; task != 0 {
		var r activities.CompleteTaskResult
		summary := fmt.Sprintf("complete task #%d (%s)", task, c.st.State.CloseReason)
		if err := c.call(ctx, planfixOptions(summary), a.CompleteTask, activities.CompleteTaskInput{ChatStart: c.chatStart(ctx),
			IntegrationID: c.in.IntegrationID, TaskID: task,
		}, &r); err != nil {
			if ctx.Err() != nil {
				return err
			}
			c.recordError(ctx, "complete the task", err)
		}
	}
	c.setPhase(PhaseClosed)
	c.st.State.ClosedAt = workflow.Now(ctx)
	c.publish(ctx)
	c.saveConversation(ctx)
	return nil
}

// lateReplies keeps a closed conversation for the late-reply window: replies are still
// delivered, and a new chat start begins a new episode. Without one it ends.
func (c *conversation) lateReplies(ctx workflow.Context) error {
	next := &c.st.NextChat
	if !next.Begun {
		left := c.st.State.ClosedAt.Add(c.settings.LateReplyWindow).Sub(workflow.Now(ctx))
		if left > 0 {
			if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      left,
				TimerOptions: workflow.TimerOptions{Summary: "late-reply window"},
			}, func() bool { return next.Begun }); err != nil {
				return err
			}
		}
	}
	if !next.Begun {
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
	if err := c.await(ctx, func() bool { return len(c.st.Pending) == 0 && !c.commenting }); err != nil {
		return err
	}
	c.st.State.Episode++
	c.setPhase(PhaseSettingUp)
	c.st.State.ClosedAt, c.st.State.CloseReason = time.Time{}, ""
	if next.Closed { // the new chat has closed already: it closes once its task is known
		c.st.State.CloseReason = CloseReasonChatClosed
	}
	if len(next.Messages) > 0 {
		c.pendingSince = c.nextSince // pending is empty: the new chat's messages are the oldest
	}
	c.st.Pending = append(c.st.Pending, next.Messages...)
	*next = NextChat{}
	c.publish(ctx)
	return c.beginEpisode(ctx)
}

// end finishes the conversation once what is queued is done.
func (c *conversation) end(ctx workflow.Context) error {
	firstChat := func() bool { return c.st.State.Episode == 0 && c.st.Phase != PhaseWaiting }
	if err := c.await(ctx, func() bool {
		return c.st.NextChat.Begun || firstChat() || (len(c.st.Replies) == 0 && !c.replying && len(c.st.Pending) == 0 && !c.commenting)
	}); err != nil {
		return err
	}
	if c.st.NextChat.Begun || firstChat() {
		return nil // a chat began meanwhile: the lifecycle goes on
	}
	c.setPhase(PhaseEnded)
	c.publish(ctx)
	c.saveConversation(ctx)
	c.finished = true
	return nil
}
