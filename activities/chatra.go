package activities

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// WriteVisitorNotes adds a line with the task link to the Chatra visitor's notes
// (keeping what the notes already say, wherever the card keeps them: see
// chatra.ClientCard.CurrentNotes), so that an agent in the Chatra app finds the task. It
// is idempotent: a link already there is not added again.
func (a *Activities) WriteVisitorNotes(ctx context.Context, in WriteVisitorNotesInput) error {
	if in.ClientID == "" || in.TaskURL == "" {
		return invalidInput("write visitor notes: clientId and taskUrl are required")
	}
	defer heartbeat(ctx)()
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return err
	}
	cc := a.chatra(i)
	card, err := cc.GetClient(ctx, in.ClientID)
	if err != nil {
		return fail(err)
	}
	line := fmt.Sprintf("Planfix task #%d: %s", in.TaskID, in.TaskURL)
	current := card.CurrentNotes()
	for _, l := range strings.Split(current, "\n") {
		if strings.TrimSpace(l) == line {
			return nil
		}
	}
	notes := strings.TrimSpace(strings.TrimSpace(current) + "\n" + line)
	if err := cc.UpdateClient(ctx, in.ClientID, chatra.ClientUpdate{Notes: notes}); err != nil {
		return fail(err)
	}
	return nil
}

// SendReply delivers an employee's reply into the chat.
//
// For a Planfix comment (CommentID) it reads the comment: one that is deleted, hidden
// (for employees only), empty, not in the conversation's task (TaskID), or not written
// by an employee is skipped; one by an
// employee who is not allowed on the channel (the integration's employee list, when not
// empty) is refused, with the reason. A reply typed by hand (Text, AuthorName) is sent
// as it is.
//
// With the integration's "send as employee" option the message goes out as a Chatra
// agent with the employee's Planfix email and name (Chatra matches the email to the
// agent's account, or creates a placeholder); otherwise, or when the employee has no
// email, as the integration's Chatra user (its agent id, else its agent email and name).
// Every message carries ReceivedFrom, so that it is not taken for a new message when it
// comes back in a webhook; Chatra may ignore that tag on a message sent by agentId, so the
// result also names each message by the id Chatra answered with and by its content and
// agent (EchoKeys). A text longer than Chatra's limit goes as several messages.
//
// Chatra cannot find a sent message again, so each part is recorded in the store after
// it is sent and skipped by a retry. A crash between Chatra's answer and that record, or
// an answer lost on the network, sends the part a second time: the bridge prefers a
// repeated message to a lost one.
func (a *Activities) SendReply(ctx context.Context, in SendReplyInput) (SendReplyResult, error) {
	ctx = in.priority(ctx, planfix.ClassSetup)
	if in.ClientID == "" || in.Key == "" || in.ReceivedFrom == "" {
		return SendReplyResult{}, invalidInput("send reply: clientId, key and receivedFrom are required")
	}
	if in.CommentID <= 0 && strings.TrimSpace(in.Text) == "" {
		return SendReplyResult{}, invalidInput("send reply: a Planfix commentId or a text is required")
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return SendReplyResult{}, err
	}
	defer heartbeat(ctx)()

	var (
		res    SendReplyResult
		text   string
		sender *chatra.SendMessageInput
	)
	if in.CommentID > 0 {
		pf := a.planfix(i)
		cm, err := pf.GetComment(ctx, in.CommentID)
		if planfix.IsNotFound(err) {
			return SendReplyResult{Outcome: ReplySkipped, Reason: fmt.Sprintf("comment %d no longer exists in Planfix", in.CommentID)}, nil
		}
		if err != nil {
			return res, fail(err)
		}
		var skip string
		var uid int64
		switch {
		case cm.IsDeleted:
			skip = "the comment was deleted"
		case cm.IsHidden:
			skip = "the comment is hidden (for employees only)"
		case cm.Task == nil || cm.Task.ID <= 0 || in.TaskID <= 0:
			// A reply goes only to the chat of the task it was written in: a request
			// naming another task's comment (a leaked webhook URL) must not read it out.
			skip = "Planfix did not say which task the comment is in, so it is not known to be this chat's"
		case cm.Task.ID != in.TaskID:
			skip = fmt.Sprintf("the comment belongs to task %d, not to this chat's task %d", cm.Task.ID, in.TaskID)
		case cm.Owner == nil:
			skip = "the comment has no author"
		default:
			var ok bool
			if uid, ok = cm.Owner.ID.User(); !ok {
				skip = "the comment was not written by an employee"
			}
		}
		if skip != "" {
			return SendReplyResult{Outcome: ReplySkipped, Reason: skip}, nil
		}
		res.Author = strings.TrimSpace(cm.Owner.Name)
		if res.Author == "" {
			res.Author = "employee " + strconv.FormatInt(uid, 10)
		}
		if len(i.Planfix.EmployeeUserIDs) > 0 && !slices.Contains(i.Planfix.EmployeeUserIDs, uid) {
			res.Outcome = ReplyRefused
			res.Reason = fmt.Sprintf("%s is not among the employees allowed to answer in this chat (the employees of integration %q)", res.Author, i.Name)
			return res, nil
		}
		text = HTMLToText(cm.Description)
		if text == "" {
			if len(cm.Files) > 0 {
				return SendReplyResult{Outcome: ReplyRefused, Author: res.Author,
					Reason: "the comment has only attachments, and Chatra's API sends text only"}, nil
			}
			return SendReplyResult{Outcome: ReplySkipped, Author: res.Author, Reason: "the comment is empty"}, nil
		}
		if len(cm.Files) > 0 {
			res.Reason = fmt.Sprintf("%d attachment(s) not sent: Chatra's API sends text only", len(cm.Files))
		}
		if i.Options.SendAsEmployee {
			u, err := pf.GetUser(ctx, uid)
			if err != nil && !planfix.IsNotFound(err) {
				return res, fail(err)
			}
			if err == nil && strings.TrimSpace(u.Email) != "" && u.FullName() != "" {
				res.Author = u.FullName()
				sender = &chatra.SendMessageInput{AgentEmail: strings.TrimSpace(u.Email), AgentName: u.FullName(), ReceivedFrom: in.ReceivedFrom}
			}
		}
	} else {
		text = strings.TrimSpace(in.Text)
		res.Author = strings.TrimSpace(in.AuthorName)
		if i.Options.SendAsEmployee && strings.TrimSpace(in.AuthorEmail) != "" && res.Author != "" {
			sender = &chatra.SendMessageInput{AgentEmail: strings.TrimSpace(in.AuthorEmail), AgentName: res.Author, ReceivedFrom: in.ReceivedFrom}
		}
	}
	res.SentAs = "employee"
	if sender == nil {
		res.SentAs = "integration"
		switch c := i.Chatra; {
		case c.AgentID != "":
			sender = &chatra.SendMessageInput{AgentID: c.AgentID, ReceivedFrom: in.ReceivedFrom}
		case c.AgentEmail != "":
			name := c.AgentName
			if name == "" {
				name = i.Name
			}
			sender = &chatra.SendMessageInput{AgentEmail: c.AgentEmail, AgentName: name, ReceivedFrom: in.ReceivedFrom}
		default:
			return res, settingsError("integration %q has no Chatra user to send replies as: set chatra.agentId or chatra.agentEmail", i.Name)
		}
	}

	cc := a.chatra(i)
	for n, part := range chatra.SplitText(text) {
		key := "reply:" + in.Key + "#" + strconv.Itoa(n)
		if id, ok, err := a.effect(ctx, in.IntegrationID, key); err != nil {
			return res, err
		} else if ok {
			res.MessageIDs = append(res.MessageIDs, id)
			res.EchoKeys = append(res.EchoKeys, EchoKeysOf(sender.AgentID, part)...)
			continue
		}
		msg := *sender
		msg.ClientID, msg.Text = in.ClientID, part
		m, err := cc.SendMessage(ctx, msg)
		if err != nil {
			return res, fail(err)
		}
		a.recordEffect(ctx, in.IntegrationID, key, m.ID)
		res.MessageIDs = append(res.MessageIDs, m.ID)
		agent := m.AgentID // the agent Chatra wrote it as, else the one it was sent as
		if agent == "" {
			agent = sender.AgentID
		}
		res.EchoKeys = append(res.EchoKeys, EchoKeysOf(agent, part)...)
	}
	res.Outcome = ReplySent
	return res, nil
}

var (
	htmlBreakRE    = regexp.MustCompile(`(?i)<br\s*/?>|</(?:p|div|li|h[1-6]|tr|blockquote|pre)\s*>`)
	htmlListItemRE = regexp.MustCompile(`(?i)<li(?:\s[^>]*)?>`)
	htmlTagRE      = regexp.MustCompile(`</?[A-Za-z][^>]*>|<!--[\s\S]*?-->`)
	blankLinesRE   = regexp.MustCompile(`\n{3,}`)
)

// HTMLToText turns the HTML of a Planfix comment into the plain text of a chat message:
// line breaks and block ends become newlines, list items "- ", other tags go, entities
// are decoded, and runs of blank lines shrink to one. A description without any tag is
// taken as plain text, its line breaks kept.
func HTMLToText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if htmlTagRE.MatchString(s) {
		s = strings.ReplaceAll(s, "\n", " ") // in HTML, line breaks are tags and raw newlines are spaces
	}
	s = htmlBreakRE.ReplaceAllString(s, "\n")
	s = htmlListItemRE.ReplaceAllString(s, "- ")
	s = htmlTagRE.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = strings.ReplaceAll(s, "\u00a0", " ")
	lines := strings.Split(s, "\n")
	for n, l := range lines {
		lines[n] = strings.TrimSpace(l)
	}
	s = blankLinesRE.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	return strings.TrimSpace(s)
}
