package workflows

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// The comment lane: chat messages into the task, in the chat's order, combined while
// Planfix's rate limit holds a call back; the visitor's new name, email or phone onto
// the contact card first (and, for an email that belongs to another contact, the move
// into that contact's task).

const (
	// maxBatch bounds the chat messages one AddComments call carries, and maxBatchBytes
	// their size (as the activity's input carries them): a call's payload stays far
	// below Temporal's limit on a payload (2 MiB), however long the messages are.
	maxBatch      = 100
	maxBatchBytes = 256 << 10

	// The reorder window (doc.go, "Order"): queued chat messages are written once no
	// new message has come for reorderQuiet, or once the oldest has waited
	// reorderMaxWait, whichever comes first; at once when the chat is closing.
	reorderQuiet   = 2 * time.Second
	reorderMaxWait = 10 * time.Second
)

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
			replyWaiting := len(c.st.Replies) > 0 && !c.replying // its turn first: replies do not starve
			return c.st.taskReady() && (len(c.st.Pending) > 0 || c.st.ContactChanges.Dirty) && !replyWaiting
		}); err != nil {
			return
		}
		if wait := c.reorderWait(ctx); wait > 0 && !c.st.ContactChanges.Dirty {
			// One timer per window, not one per message: when it fires, the deadline is
			// computed again from the last message, which may have come meanwhile.
			if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      wait,
				TimerOptions: workflow.TimerOptions{Summary: "reorder window: wait for late chat messages before writing them"},
			}, func() bool { return c.st.ContactChanges.Dirty || c.flushNow() }); err != nil {
				return
			}
			continue
		}
		c.commenting = true
		if c.st.ContactChanges.Dirty {
			c.applyContactChanges(ctx)
		}
		if len(c.st.Pending) > 0 && c.st.taskReady() && ctx.Err() == nil && c.reorderWait(ctx) <= 0 {
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
	return c.st.closeRequested() || c.st.NextChat.Begun
}

func (c *conversation) addComments(ctx workflow.Context) {
	slices.SortStableFunc(c.st.Pending, func(x, y Message) int { return x.Time.Compare(y.Time) })
	n := min(len(c.st.Pending), maxBatch)
	if k := batchWithin(c.st.Pending[:n], maxBatchBytes); k < n && patched(ctx, patchPayloadBounds) {
		n = k // the rest goes in the next call
	}
	batch := slices.Clone(c.st.Pending[:n])
	c.st.Pending = slices.Delete(c.st.Pending, 0, n)
	c.publish(ctx)

	msgs := make([]activities.ChatMessage, len(batch))
	for i, m := range batch {
		msgs[i] = chatMessage(m)
	}
	var r activities.AddCommentsResult
	c.inFlight = len(batch)
	// The first messages of a task are what its employees need to answer: they are
	// spent with the chat's setup, the later ones in the class of messages.
	class := planfix.ClassMessages
	if c.commentedTask != c.st.State.TaskID {
		class = planfix.ClassSetup
	}
	err := c.call(ctx, planfixOptions(commentsSummary(batch)), a.AddComments, activities.AddCommentsInput{ChatStart: c.chatStart(ctx),
		IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, TaskID: c.st.State.TaskID, ContactID: c.st.State.ContactID, Messages: msgs,
		Class: class,
	}, &r)
	if err == nil {
		c.commentedTask = c.st.State.TaskID
	}
	c.inFlight = 0
	switch {
	case err != nil && ctx.Err() != nil:
		c.st.Pending = append(batch, c.st.Pending...) // cancelled: the cleanup counts them
	case err != nil:
		c.st.State.MessagesFailed += len(batch)
		c.recordError(ctx, fmt.Sprintf("add %d message(s) to task #%d", len(batch), c.st.State.TaskID), err)
	default:
		c.st.State.MessagesAdded += len(batch)
		c.st.State.CommentsAdded += len(r.CommentIDs)
		for _, id := range r.CommentIDs {
			c.markOwnComment(id)
		}
	}
	c.publish(ctx)
}

func chatMessage(m Message) activities.ChatMessage {
	return activities.ChatMessage{ID: m.ID, Type: m.Type, Text: m.Text, Time: m.Time, AgentName: m.AgentName}
}

// batchWithin returns how many of msgs, from the first, an AddComments call carries
// within max bytes: at least one (a message too large alone is refused by call).
func batchWithin(msgs []Message, max int) int {
	size := 0
	for i, m := range msgs {
		b, _ := json.Marshal(chatMessage(m)) // strings and a time: cannot fail
		if size += len(b) + 1; size > max && i > 0 {
			return i
		}
	}
	return len(msgs)
}

// applyContactChanges writes the visitor's new name, email or phone onto the contact. A
// new email that belongs to another contact moves the chat to that contact and, when it
// has an active task, into that task (one contact, one active task: a customer on two
// devices keeps one thread); the other contact's card is then left as it is.
func (c *conversation) applyContactChanges(ctx workflow.Context) {
	c.st.ContactChanges.Dirty = false
	v := c.st.Visitor
	if c.st.ContactChanges.EmailChanged && v.Email != "" {
		c.st.ContactChanges.EmailChanged = false
		var r activities.EnsureContactResult
		if err := c.call(ctx, planfixOptions("find the contact of "+v.Email), a.EnsureContact, activities.EnsureContactInput{ChatStart: c.chatStart(ctx),
			IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: c.st.State.ClientID, ContactID: c.st.State.ContactID, Visitor: c.st.Visitor,
		}, &r); err != nil {
			c.recordError(ctx, "find the contact by email", err)
			return
		}
		if r.Switched {
			c.st.State.ContactID = r.ContactID
			c.st.ContactClaimed = r.Claimed
			c.publish(ctx)
			c.joinContactTask(ctx)
			return
		}
	}
	if (c.st.ClaimUnverified || c.st.ContactClaimed) && patched(ctx, patchClaimNote) {
		// The contact is the one whose email the visitor typed: its card is that
		// customer's, and an unverified claim does not rewrite it.
		return
	}
	if err := c.call(ctx, planfixOptions("update the contact: "+c.customer()), a.UpdateContact, activities.UpdateContactInput{ChatStart: c.chatStart(ctx),
		IntegrationID: c.in.IntegrationID, ContactID: c.st.State.ContactID, Name: v.Name, Email: v.Email, Phone: v.Phone,
	}, nil); err != nil {
		c.recordError(ctx, "update the contact", err)
	}
}

// joinContactTask moves the chat into the active task of its (new) contact, if there is
// one: the old task gets a note where the conversation went and is completed, the
// joined one a note where it came from.
func (c *conversation) joinContactTask(ctx workflow.Context) {
	var r activities.FindActiveTaskResult
	if err := c.call(ctx, planfixOptions(fmt.Sprintf("find the active task of contact %d", c.st.State.ContactID)), a.FindActiveTask, activities.FindActiveTaskInput{ChatStart: c.chatStart(ctx),
		IntegrationID: c.in.IntegrationID, ContactID: c.st.State.ContactID, ExcludeTaskID: c.st.State.TaskID,
	}, &r); err != nil {
		c.recordError(ctx, "find the contact's active task", err)
		c.saveConversation(ctx)
		return
	}
	if !r.Found {
		c.saveConversation(ctx)
		if c.st.ContactClaimed && c.st.State.TaskID != 0 && patched(ctx, patchClaimNote) {
			c.addNote(ctx, c.st.State.TaskID, "claim:"+c.in.ChatID+":"+c.episodeKey(ctx), claimedContactNote(c.st.Visitor.Email))
		}
		return
	}
	old, oldURL := c.st.State.TaskID, c.st.State.TaskURL
	c.st.TaskJoined = true
	c.setTask(ctx, r.TaskID)
	// A reply in the joined task finds this chat from now on, if the claim is trusted.
	saved, elsewhere := c.saveConversation(ctx)
	if old != 0 {
		c.addNote(ctx, old, "moved:"+c.in.ChatID+":"+c.episodeKey(ctx), movedNote(c.st.Visitor.Email, r.TaskID, c.st.State.TaskURL))
		if err := c.call(ctx, planfixOptions(fmt.Sprintf("complete task #%d (continued in #%d)", old, r.TaskID)), a.CompleteTask, activities.CompleteTaskInput{ChatStart: c.chatStart(ctx),
			IntegrationID: c.in.IntegrationID, TaskID: old,
		}, nil); err != nil {
			c.recordError(ctx, "complete the task the chat left", err)
		}
	}
	note := joinedNote(c.customer(), c.in.ChatID, old, oldURL)
	if elsewhere {
		note = claimNote(c.customer(), c.st.Visitor.Email, c.in.ChatID, old, oldURL)
	}
	c.addNote(ctx, r.TaskID, "joined:"+c.in.ChatID+":"+c.episodeKey(ctx), note)
	c.writeVisitorNotes(ctx)
	if c.conversationRow() != saved {
		c.saveConversation(ctx)
	}
}
