package workflows

import (
	"fmt"
	"time"
)

// The texts employees read in the task: notes the bridge writes, and what stands for a
// message without text.

// textWithoutText stands for a chat message without text: an attachment, most likely
// (the webhook carries no text for it). The task still says that something was sent, so
// that nothing goes unnoticed.
const textWithoutText = "(a message without text, such as an attachment: see the chat in Chatra)"

// cancelledNote tells the task that an admin stopped its sync, and what was left undone.
func cancelledNote(unsentMessages, unsentReplies int) string {
	text := "The sync of this task with its Chatra chat was stopped by an administrator: new chat messages no longer reach this task, and comments here no longer reach the chat."
	if unsentMessages > 0 {
		text += fmt.Sprintf(" %d chat message(s) received but not yet added here were not added; the workflow's history in Temporal keeps them.", unsentMessages)
	}
	if unsentReplies > 0 {
		text += fmt.Sprintf(" %d reply(ies) were not sent to the chat.", unsentReplies)
	}
	return text
}

// movedNote tells the task a chat left where it went: the customer's email belongs to
// a contact who already has an active task.
func movedNote(email string, task int64, taskURL string) string {
	return fmt.Sprintf("The customer introduced themselves as %s, who already has task #%d: this chat continues there (%s).", email, task, taskURL)
}

// joinedNote tells the task a chat joined where it came from.
func joinedNote(customer, chatID string, oldTask int64, oldTaskURL string) string {
	text := fmt.Sprintf("%s also writes from another chat (Chatra chat %s); its messages continue here.", customer, chatID)
	if oldTask != 0 {
		text += fmt.Sprintf(" Its earlier messages are in task #%d (%s).", oldTask, oldTaskURL)
	}
	return text
}

// claimNote tells a task that a chat joined it on an email its visitor typed, which the
// bridge does not take as proof: its messages come here, the replies do not go to it.
func claimNote(customer, email, chatID string, oldTask int64, oldTaskURL string) string {
	who := customer
	if email != "" && email != customer {
		who += " (" + email + ")"
	}
	text := fmt.Sprintf("A visitor in another chat (Chatra chat %s) says they are %s, this task's customer, and their messages continue here. "+
		"An email typed into a chat is not a proof: replies written here keep going to the chat that created this task, not to that chat. "+
		"If it is the same customer, answer them in Chatra.", chatID, who)
	if oldTask != 0 {
		text += fmt.Sprintf(" Their earlier messages are in task #%d (%s).", oldTask, oldTaskURL)
	}
	return text
}

// claimedContactNote tells a task that its chat's visitor typed the email of an
// existing contact, who is now the task's contact, without proof that it is them.
func claimedContactNote(email string) string {
	return fmt.Sprintf("The visitor in this chat typed the email %s, which belongs to this contact: an email typed into a chat is not a proof that the visitor is that customer. Check who you are talking to before sharing the customer's details.", email)
}

// replyNotSentNote says why a reply did not reach the chat (why ends the sentence).
func replyNotSentNote(why string) string {
	return "This reply was not sent to the chat: " + why
}

// replySentButNote says what went wrong with a reply that was sent all the same.
func replySentButNote(reason string) string {
	return "The reply was sent to the chat, but " + reason + "."
}

// reminderNote tells the task's assignees that the customer waits for an answer: for
// how long (and how much of it in working hours, when the clock keeps them), the
// target, and the message that waits. more counts the messages written after it.
func reminderNote(customer string, waited, working time.Duration, hours bool, target time.Duration, quote string, more, n, of int) string {
	text := fmt.Sprintf("Reminder %d of %d: %s has been waiting for an answer for %s", n, of, customer, humanDuration(waited))
	if hours {
		text += fmt.Sprintf(" (%s of it in working hours)", humanDuration(working))
	}
	text += fmt.Sprintf("; the first-response target is %s.", humanDuration(target))
	if quote != "" {
		text += " The message: \u201c" + quote + "\u201d"
		if more > 0 {
			text += fmt.Sprintf(", and %d more since", more)
		}
		text += "."
	}
	return text
}

// commentNote names the Planfix comment a note about a reply is about, if any.
func commentNote(commentID int64, note string) string {
	if commentID > 0 {
		return fmt.Sprintf("Comment %d: %s", commentID, note)
	}
	return note
}
