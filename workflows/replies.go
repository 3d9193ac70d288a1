package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
)

// The reply lane: employees' replies into the chat, one at a time, in order; a note in
// the task for a reply that could not be sent.

// replyLane sends queued replies into the chat, one at a time, in order. It waits while
// the comment lane is at work: a reply signal for a comment the bridge is writing itself
// is then recognised as the bridge's own.
func (c *conversation) replyLane(ctx workflow.Context) {
	for {
		if err := c.await(ctx, func() bool { return len(c.st.Replies) > 0 && !c.commenting }); err != nil {
			return
		}
		c.replying = true
		c.sendReply(ctx, c.st.Replies[0])
		if ctx.Err() == nil {
			c.st.Replies = c.st.Replies[1:]
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
	st := &c.st.State
	key := replyKey(s)
	if key == "" {
		key = fmt.Sprintf("reply:%s:%d", workflow.GetInfo(ctx).WorkflowExecution.RunID, st.RepliesSent+st.RepliesFailed+st.RepliesSkipped)
	}
	task := s.TaskID
	if task == 0 {
		task = st.TaskID
	}
	var note string
	summary := "reply: " + s.Text
	if s.CommentID > 0 {
		summary = fmt.Sprintf("reply: Planfix comment %d", s.CommentID)
	}
	if st.ClientID == "" {
		st.RepliesFailed++
		st.LastError = "a reply could not be sent: the conversation does not know its Chatra visitor"
		note = replyNotSentNote("the conversation does not know its Chatra visitor.")
	} else {
		var r activities.SendReplyResult
		err := c.call(ctx, replyOptions(summary), a.SendReply, activities.SendReplyInput{ChatStart: c.chatStart(ctx),
			IntegrationID: c.in.IntegrationID, ChatID: c.in.ChatID, ClientID: st.ClientID, TaskID: task, Key: key,
			CommentID: s.CommentID, Text: s.Text, AuthorName: s.AuthorName, AuthorEmail: s.AuthorEmail, ReceivedFrom: ReceivedFromTag,
		}, &r)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			st.RepliesFailed++
			c.recordError(ctx, "send a reply to the chat", err)
			note = replyNotSentNote(errorText(err))
		case r.Outcome == activities.ReplySent:
			st.RepliesSent++
			c.answered(ctx, workflow.Now(ctx))
			c.markSent(ctx, r)
			if r.Reason != "" {
				note = replySentButNote(r.Reason)
			}
		case r.Outcome == activities.ReplyRefused:
			st.RepliesFailed++
			st.LastError = "a reply was not sent: " + r.Reason
			note = replyNotSentNote(r.Reason + ".")
		default:
			st.RepliesSkipped++
		}
	}
	if note != "" && task != 0 {
		c.addNote(ctx, task, "reply-note:"+key, commentNote(s.CommentID, note))
	}
}
