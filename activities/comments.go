package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// MaxMessagesPerComment bounds how many chat messages one task comment combines.
const MaxMessagesPerComment = 50

// AddComments writes chat messages into the task as comments, in order. Consecutive
// visitor messages become one comment authored by the customer's contact; consecutive
// messages agents wrote in the Chatra app become one comment from the bridge, marked
// "Agent Julia in Chatra: ...". A comment that combines several messages gives each its
// own line with its time (UTC). This is how messages that waited behind Planfix's rate
// limit are combined instead of costing a request each.
//
// Each comment's sourceObjectId derives from the chat and the id of its first message,
// and a retried attempt lists the task's comments first and skips those already there,
// so every message lands once (unless Planfix is known to return no sourceObjectId: see
// sourceIDsMayReturn). After the comments it marks the conversation as active
// in the store (replies go to the chat the customer wrote from last).
func (a *Activities) AddComments(ctx context.Context, in AddCommentsInput) (AddCommentsResult, error) {
	ctx = in.priority(ctx, in.Class) // ClassMessages unless the workflow says
	if in.TaskID <= 0 || in.ContactID <= 0 || len(in.Messages) == 0 {
		return AddCommentsResult{}, invalidInput("add comments: taskId, contactId and at least one message are required")
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return AddCommentsResult{}, err
	}
	defer heartbeat(ctx)()
	pf := a.planfix(i)
	comments := taskComments(in)
	var existing map[string]int64
	if retried(ctx) && a.sourceIDsMayReturn(ctx, in.IntegrationID) {
		if existing, err = commentSources(ctx, pf, in.TaskID); err != nil {
			return AddCommentsResult{}, err
		}
	}
	var res AddCommentsResult
	for _, nc := range comments {
		id, ok, err := a.madeComment(ctx, in.IntegrationID, nc.SourceObjectID)
		if err != nil {
			return AddCommentsResult{}, err
		}
		if !ok {
			id, ok = existing[strings.ToLower(nc.SourceObjectID)]
		}
		if !ok {
			if id, err = a.addComment(ctx, pf, in.IntegrationID, in.TaskID, nc); err != nil {
				return AddCommentsResult{}, err
			}
		}
		res.CommentIDs = append(res.CommentIDs, id)
	}
	if err := a.DB.TouchConversation(ctx, in.IntegrationID, in.ChatID); err != nil {
		a.Logger.Warn("mark conversation active", "integration", in.IntegrationID, "chat", in.ChatID, "error", err)
	}
	return res, nil
}

// taskComments groups the messages into the comments AddComments adds.
func taskComments(in AddCommentsInput) []planfix.NewComment {
	var out []planfix.NewComment
	msgs := in.Messages
	for len(msgs) > 0 {
		n := 1
		for n < len(msgs) && n < MaxMessagesPerComment && msgs[n].IsVisitor() == msgs[0].IsVisitor() {
			n++
		}
		run := msgs[:n]
		msgs = msgs[n:]
		nc := planfix.NewComment{SourceObjectID: planfix.SourceObjectID(in.IntegrationID, "comment", in.ChatID, run[0].ID)}
		if run[0].IsVisitor() {
			nc.Owner = planfix.ContactID(in.ContactID)
			nc.Description = planfix.TextToHTML(visitorText(run))
		} else {
			nc.Description = planfix.TextToHTML(agentText(run))
		}
		out = append(out, nc)
	}
	return out
}

// stamp is a message's time as its line in a combined comment starts.
func stamp(m ChatMessage) string {
	if m.Time.IsZero() {
		return ""
	}
	return "[" + m.Time.UTC().Format("15:04") + " UTC] "
}

func visitorText(run []ChatMessage) string {
	if len(run) == 1 {
		return run[0].Text
	}
	lines := make([]string, len(run))
	for n, m := range run {
		lines[n] = stamp(m) + m.Text
	}
	return strings.Join(lines, "\n")
}

func agentName(m ChatMessage) string {
	if n := strings.Join(strings.Fields(m.AgentName), " "); n != "" {
		return n
	}
	return "an agent"
}

func agentText(run []ChatMessage) string {
	same := true
	for _, m := range run[1:] {
		same = same && agentName(m) == agentName(run[0])
	}
	header := fmt.Sprintf("Agent %s in Chatra:", agentName(run[0]))
	if agentName(run[0]) == "an agent" {
		header = "An agent in Chatra:"
	}
	if len(run) == 1 {
		return header + " " + run[0].Text
	}
	if !same {
		header = "Agents in Chatra:"
	}
	lines := []string{header}
	for _, m := range run {
		line := stamp(m)
		if !same {
			line += agentName(m) + ": "
		}
		lines = append(lines, line+m.Text)
	}
	return strings.Join(lines, "\n")
}

// commentSources maps the sourceObjectIds (lower-cased) of a task's comments to their
// numbers.
func commentSources(ctx context.Context, pf *planfix.Client, taskID int64) (map[string]int64, error) {
	out := map[string]int64{}
	for c, err := range pf.TaskComments(ctx, taskID, planfix.CommentQuery{Fields: "id,sourceObjectId"}) {
		if err != nil {
			return nil, fail(err)
		}
		if c.SourceObjectID != "" {
			out[strings.ToLower(c.SourceObjectID)] = c.ID
		}
	}
	return out, nil
}

// AddNote adds a comment from the bridge to the task: what an employee must know (a
// reply that was not sent and why, the sync stopped, the chat continuing elsewhere, a
// customer waiting for an answer). Its sourceObjectId derives from Key; a retried
// attempt finds a note an earlier one added. With NotifyAssignees the comment is
// addressed to the task's assignees (Planfix notifies them); its requests are spent in
// in.Class (the context carries it to the rate limiter).
func (a *Activities) AddNote(ctx context.Context, in AddNoteInput) (AddNoteResult, error) {
	if in.TaskID <= 0 || in.Key == "" || strings.TrimSpace(in.Text) == "" {
		return AddNoteResult{}, invalidInput("add note: taskId, key and text are required")
	}
	ctx = in.priority(ctx, in.Class)
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return AddNoteResult{}, err
	}
	defer heartbeat(ctx)()
	pf := a.planfix(i)
	sid := planfix.SourceObjectID(in.IntegrationID, "note", in.Key)
	if id, ok, err := a.madeComment(ctx, in.IntegrationID, sid); err != nil || ok {
		return AddNoteResult{CommentID: id}, err
	}
	if retried(ctx) && a.sourceIDsMayReturn(ctx, in.IntegrationID) {
		existing, err := commentSources(ctx, pf, in.TaskID)
		if err != nil {
			return AddNoteResult{}, err
		}
		if id, ok := existing[sid]; ok {
			return AddNoteResult{CommentID: id}, nil
		}
	}
	nc := planfix.NewComment{Description: planfix.TextToHTML(in.Text), SourceObjectID: sid}
	if in.NotifyAssignees {
		nc.Recipients = &planfix.Recipients{Roles: []string{planfix.RoleAssignee}}
	}
	id, err := a.addComment(ctx, pf, in.IntegrationID, in.TaskID, nc)
	if err != nil {
		return AddNoteResult{}, err
	}
	return AddNoteResult{CommentID: id}, nil
}

// sourceIDsMayReturn reports whether a retry should list the task's comments to find by
// sourceObjectId what an earlier attempt added: not when a deep verify found that the
// integration's Planfix returns no sourceObjectId (postgres.SourceIDsNotReturned), since
// the list, a request a page, could find nothing. A store failure is logged and counts
// as unknown (the list is read).
func (a *Activities) sourceIDsMayReturn(ctx context.Context, integrationID string) bool {
	c, err := a.DB.Capabilities(ctx, integrationID)
	if err != nil {
		a.Logger.Warn("read what is known of planfix's sourceObjectId: the task's comments are listed", "integration", integrationID, "error", err)
		return true
	}
	return c.SourceIDs != postgres.SourceIDsNotReturned
}

// madeComment returns the comment a create with sourceObjectId sid made, as the store
// recorded it (addComment): an earlier attempt's, or the one made before the workflow
// was reset (whose create is a first attempt again). A retry whose earlier attempt's
// answer was lost also asks Planfix (commentSources); when Planfix keeps no
// sourceObjectId that finds nothing, and the comment is added again: a repeated comment
// rather than a lost one.
func (a *Activities) madeComment(ctx context.Context, integrationID, sid string) (int64, bool, error) {
	r, ok, err := a.effect(ctx, integrationID, "comment:"+strings.ToLower(sid))
	if err != nil || !ok {
		return 0, false, err
	}
	id, _ := strconv.ParseInt(r, 10, 64)
	return id, true, nil
}

// addComment adds nc to the task and records it for madeComment.
func (a *Activities) addComment(ctx context.Context, pf *planfix.Client, integrationID string, taskID int64, nc planfix.NewComment) (int64, error) {
	id, err := pf.AddTaskComment(ctx, taskID, nc)
	if err != nil {
		return 0, fail(err)
	}
	a.recordEffect(ctx, integrationID, "comment:"+strings.ToLower(nc.SourceObjectID), strconv.FormatInt(id, 10))
	return id, nil
}
