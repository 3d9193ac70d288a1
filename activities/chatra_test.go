package activities_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

const tag = "chatrabridge"

// replyEnv is an env with a task and a reply comment by employee 5 (Anna Petrova).
func replyEnv(t *testing.T, description string) (*env, int64, int64) {
	t.Helper()
	e := newEnv(t)
	task := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusNew})
	comment, err := e.planfix.AddComment(sandbox.PlanfixComment{TaskID: task, Owner: "user:5", Description: description})
	if err != nil {
		t.Fatal(err)
	}
	return e, task, comment
}

func (e *env) sendReply(t *testing.T, task, comment int64) (activities.SendReplyResult, error) {
	t.Helper()
	return e.acts.SendReply(context.Background(), activities.SendReplyInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID,
		TaskID: task, Key: "planfix-comment:" + itoa(comment), CommentID: comment, ReceivedFrom: tag})
}

// Without "send as employee" the reply goes out as the integration's Chatra user, with
// the bridge's tag; the comment's HTML becomes plain text. A retry does not send it again.
func TestSendReplyAsIntegration(t *testing.T) {
	e, task, comment := replyEnv(t, "<p>Hello&nbsp;<b>Ivan</b>,</p><p>your order ships today.</p>")
	r := must[activities.SendReplyResult](t)(e.sendReply(t, task, comment))
	equal(t, "outcome", r.Outcome, activities.ReplySent)
	equal(t, "sent as", r.SentAs, "integration")
	r2 := must[activities.SendReplyResult](t)(e.sendReply(t, task, comment))
	msgs := e.chatra.Messages()
	if len(msgs) != 1 {
		t.Fatalf("chatra got %d messages, want 1 (the retry must not resend)", len(msgs))
	}
	equal(t, "retry's ids", strings.Join(r2.MessageIDs, ","), strings.Join(r.MessageIDs, ","))
	m := msgs[0]
	equal(t, "text", m.Text, "Hello Ivan,\nyour order ships today.")
	equal(t, "agent", m.AgentID, "AGENT-BRIDGE")
	equal(t, "receivedFrom", m.ReceivedFrom, tag)
	equal(t, "client", m.ClientID, clientID)
	equal(t, "returned id", r.MessageIDs[0], m.ID)
	// Its content and agent name it too, for an echo that comes back without the tag.
	equal(t, "echo keys", strings.Join(r.EchoKeys, ","), activities.EchoKey("AGENT-BRIDGE", "Hello Ivan,\nyour order ships today.")+","+
		activities.EchoAnyAgent+activities.EchoKey("", "Hello Ivan,\nyour order ships today."))
	equal(t, "retry's echo keys", strings.Join(r2.EchoKeys, ","), strings.Join(r.EchoKeys, ","))
	equal(t, "echo key ignores spacing", activities.EchoKey(" AGENT-BRIDGE", "Hello  Ivan, your order\tships today. "), r.EchoKeys[0])
	if activities.EchoKey("AGENT-OTHER", m.Text) == r.EchoKeys[0] || activities.EchoKey("AGENT-BRIDGE", "Hello Ivan") == r.EchoKeys[0] {
		t.Error("echo keys of another agent or another text are the same")
	}
}

// With "send as employee" the reply goes out as a Chatra agent with the employee's
// Planfix email and name.
func TestSendReplyAsEmployee(t *testing.T) {
	e, task, comment := replyEnv(t, "We shipped it.")
	e.integ.Options.SendAsEmployee = true
	r := must[activities.SendReplyResult](t)(e.sendReply(t, task, comment))
	equal(t, "sent as", r.SentAs, "employee")
	equal(t, "author", r.Author, "Anna Petrova")
	msgs := e.chatra.Messages()
	if len(msgs) != 1 {
		t.Fatalf("chatra got %d messages, want 1", len(msgs))
	}
	equal(t, "agent name", msgs[0].AgentName, "Anna Petrova")
	equal(t, "receivedFrom", msgs[0].ReceivedFrom, tag)
	if msgs[0].AgentID == "AGENT-BRIDGE" {
		t.Error("sent as the integration's user")
	}
	// The sandbox made a placeholder agent for anna@example.com; a second reply reuses it.
	comment2, _ := e.planfix.AddComment(sandbox.PlanfixComment{TaskID: task, Owner: "user:5", Description: "Anything else?"})
	must[activities.SendReplyResult](t)(e.sendReply(t, task, comment2))
	msgs = e.chatra.Messages()
	equal(t, "same agent", msgs[1].AgentID, msgs[0].AgentID)
}

// A hand-made reply with "send as employee" goes out as its author.
func TestSendReplyByHand(t *testing.T) {
	e := newEnv(t)
	e.integ.Options.SendAsEmployee = true
	r := must[activities.SendReplyResult](t)(e.acts.SendReply(context.Background(), activities.SendReplyInput{IntegrationID: integrationID,
		ChatID: chatID, ClientID: clientID, Key: "reply:manual-1", Text: "We shipped it today.", AuthorName: "Boris", AuthorEmail: "boris@example.com", ReceivedFrom: tag}))
	equal(t, "outcome", r.Outcome, activities.ReplySent)
	m := e.chatra.Messages()[0]
	equal(t, "agent name", m.AgentName, "Boris")
	equal(t, "text", m.Text, "We shipped it today.")
	equal(t, "planfix requests", len(e.planfix.RequestLog()), 0)
}

// Only the employees allowed on the channel may answer; the others are refused with the
// reason, and nothing reaches the chat.
func TestSendReplyRefusesDisallowedEmployee(t *testing.T) {
	e, task, comment := replyEnv(t, "Hi")
	e.integ.Planfix.EmployeeUserIDs = []int64{6}
	r := must[activities.SendReplyResult](t)(e.sendReply(t, task, comment))
	equal(t, "outcome", r.Outcome, activities.ReplyRefused)
	contains(t, "reason", r.Reason, "Anna Petrova is not among the employees allowed")
	equal(t, "chatra messages", len(e.chatra.Messages()), 0)

	e.integ.Planfix.EmployeeUserIDs = []int64{6, 5}
	r = must[activities.SendReplyResult](t)(e.sendReply(t, task, comment))
	equal(t, "allowed outcome", r.Outcome, activities.ReplySent)
}

// Comments that are not replies are skipped: a customer's (a contact's), a hidden one,
// one that no longer exists.
func TestSendReplySkipsNonReplies(t *testing.T) {
	e := newEnv(t)
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	task := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusNew})
	fromContact, _ := e.planfix.AddComment(sandbox.PlanfixComment{TaskID: task, Owner: "contact:" + itoa(contact), Description: "customer text"})
	hidden, _ := e.planfix.AddComment(sandbox.PlanfixComment{TaskID: task, Owner: "user:5", Description: "internal", IsHidden: true})
	for what, id := range map[string]int64{"contact's": fromContact, "hidden": hidden, "missing": 99999} {
		r := must[activities.SendReplyResult](t)(e.sendReply(t, task, id))
		if r.Outcome != activities.ReplySkipped {
			t.Errorf("%s comment: outcome %q (%s), want skipped", what, r.Outcome, r.Reason)
		}
	}
	equal(t, "chatra messages", len(e.chatra.Messages()), 0)
}

// A reply is sent only into the chat of the task it was written in: a comment of
// another task (a forged request through a leaked webhook URL) is refused, and so is one
// whose task is not known (no task given); nothing reaches the chat.
func TestSendReplyRefusesAnotherTasksComment(t *testing.T) {
	e, victimTask, secret := replyEnv(t, "Card ending 4242, address 5 Main St")
	attackerTask := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat 2", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusNew})
	for name, task := range map[string]int64{"another task": attackerTask, "no task": 0} {
		r := must[activities.SendReplyResult](t)(e.sendReply(t, task, secret))
		if r.Outcome != activities.ReplySkipped || !strings.Contains(r.Reason, "task") {
			t.Errorf("%s: outcome %q (%s), want skipped naming the task", name, r.Outcome, r.Reason)
		}
	}
	equal(t, "chatra messages", len(e.chatra.Messages()), 0)
	must[activities.SendReplyResult](t)(e.sendReply(t, victimTask, secret))
	equal(t, "chatra messages from the right task", len(e.chatra.Messages()), 1)
}

// A reply longer than Chatra's limit goes as several messages, each sent once.
func TestSendReplySplitsLongText(t *testing.T) {
	e, task, comment := replyEnv(t, strings.Repeat("word ", 1500)) // 7500 characters
	r := must[activities.SendReplyResult](t)(e.sendReply(t, task, comment))
	equal(t, "parts", len(r.MessageIDs), 2)
	must[activities.SendReplyResult](t)(e.sendReply(t, task, comment))
	equal(t, "chatra messages after a retry", len(e.chatra.Messages()), 2)
}

// Chatra refusing for good (no paid plan) is a non-retryable error with Chatra's kind;
// a rate limit is retryable after the delay Chatra asked for.
func TestSendReplyErrors(t *testing.T) {
	e, task, comment := replyEnv(t, "Hi")
	e.chatra.SetPaidPlan(false)
	_, err := e.sendReply(t, task, comment)
	app := appError(t, err)
	equal(t, "type", app.Type(), chatra.KindPaymentRequired)
	equal(t, "non-retryable", app.NonRetryable(), true)

	e.chatra.SetPaidPlan(true)
	e.chatra.InjectFault(sandbox.ChatraFault{PathPrefix: "/api/messages/", Status: http.StatusTooManyRequests, RetryAfter: "30"})
	_, err = e.sendReply(t, task, comment)
	app = appError(t, err)
	equal(t, "rate-limit type", app.Type(), chatra.KindRateLimited)
	equal(t, "rate-limit retryable", app.NonRetryable(), false)
	equal(t, "next retry", app.NextRetryDelay(), 30*time.Second)

	// No Chatra user to send as: a settings error naming the fix.
	e.integ.Chatra.AgentID, e.integ.Chatra.AgentEmail = "", ""
	_, err = e.sendReply(t, task, comment)
	app = appError(t, err)
	equal(t, "settings type", app.Type(), activities.ErrIntegrationSettings)
	contains(t, "settings message", app.Message(), "chatra.agentId")
}

// Planfix's errors: a bad token is non-retryable with its kind; an outage retryable; the
// daily limit retryable after Planfix's delay. A deleted integration is non-retryable.
func TestPlanfixErrorMapping(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: 3, Visitor: ivan()}

	e.planfix.FailNext(1, http.StatusUnauthorized, planfix.CodeUnknownToken)
	app := appError(t, second(e.acts.CreateTask(ctx, in)))
	equal(t, "bad token type", app.Type(), planfix.KindUnauthorized)
	equal(t, "bad token non-retryable", app.NonRetryable(), true)

	e.planfix.FailNext(1, http.StatusBadGateway, 0)
	app = appError(t, second(e.acts.CreateTask(ctx, in)))
	equal(t, "outage type", app.Type(), planfix.KindUnavailable)
	equal(t, "outage retryable", app.NonRetryable(), false)

	e.planfix.InjectFaults(sandbox.PlanfixFault{Status: http.StatusTooManyRequests, Code: planfix.CodeDailyLimit,
		Message: "Daily request limit reached", Header: http.Header{"Retry-After": {"120"}}})
	app = appError(t, second(e.acts.CreateTask(ctx, in)))
	equal(t, "daily limit type", app.Type(), planfix.KindDailyLimit)
	equal(t, "daily limit retryable", app.NonRetryable(), false)
	if d := app.NextRetryDelay(); d < 110*time.Second || d > 120*time.Second {
		t.Errorf("daily limit next retry = %v, want about 2m", d)
	}

	in.IntegrationID = "deleted"
	app = appError(t, second(e.acts.CreateTask(ctx, in)))
	equal(t, "missing integration", app.Type(), activities.ErrIntegrationNotFound)
	equal(t, "missing integration non-retryable", app.NonRetryable(), true)

	_, err := e.acts.CreateTask(ctx, activities.CreateTaskInput{IntegrationID: integrationID})
	equal(t, "invalid input", appError(t, err).Type(), activities.ErrInvalidInput)
}

func second[T any](_ T, err error) error { return err }

// The task link is added to the visitor's notes, keeping what they say, once.
func TestWriteVisitorNotes(t *testing.T) {
	e := newEnv(t)
	in := activities.WriteVisitorNotesInput{IntegrationID: integrationID, ClientID: clientID, TaskID: 12, TaskURL: "https://acme.planfix.com/task/12"}
	for range 2 {
		if err := e.acts.WriteVisitorNotes(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	card, _ := e.chatra.Client(clientID)
	equal(t, "notes", card.Notes, "VIP customer\nPlanfix task #12: https://acme.planfix.com/task/12")

	in.ClientID = "UNKNOWN"
	err := e.acts.WriteVisitorNotes(context.Background(), in)
	equal(t, "unknown visitor", appError(t, err).Type(), chatra.KindNotFound)
}

// A card that keeps its notes in its basic info keeps what agents wrote there: the link
// is appended to them, once.
func TestWriteVisitorNotesInBasicInfo(t *testing.T) {
	e := newEnv(t)
	if err := e.chatra.PutClient(chatra.ClientCard{ID: "V-basic", Name: "Olga",
		Fields: map[string]any{"basicInfo": map[string]any{"notes": "Agent: wants a call back"}}}); err != nil {
		t.Fatal(err)
	}
	in := activities.WriteVisitorNotesInput{IntegrationID: integrationID, ClientID: "V-basic", TaskID: 13, TaskURL: "https://acme.planfix.com/task/13"}
	for range 2 {
		if err := e.acts.WriteVisitorNotes(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	card, _ := e.chatra.Client("V-basic")
	equal(t, "notes", card.CurrentNotes(), "Agent: wants a call back\nPlanfix task #13: https://acme.planfix.com/task/13")
}

// Settings come with defaults and no secret.
func TestLoadSettings(t *testing.T) {
	e := newEnv(t)
	e.integ.Options.NewTaskOnlyIfNoActiveTask = true
	e.integ.Options.FirstResponse = chatrabridge.FirstResponse{Target: chatrabridge.Duration(5 * time.Minute),
		WorkingHours: &chatrabridge.WorkingHours{TimeZone: "UTC", Days: []string{"mon"}, From: "09:00", To: "18:00"}}
	s := must[activities.Settings](t)(e.acts.LoadSettings(context.Background(), activities.LoadSettingsInput{IntegrationID: integrationID}))
	equal(t, "first-response target", s.FirstResponse.Target, chatrabridge.Duration(5*time.Minute))
	equal(t, "working hours", s.FirstResponse.WorkingHours.String(), "mon 09:00-18:00 UTC")
	equal(t, "name", s.Name, "Shop")
	equal(t, "late-reply window", s.LateReplyWindow, 48*time.Hour)
	equal(t, "idle default", s.IdleTimeout, 24*time.Hour)
	equal(t, "option", s.NewTaskOnlyIfNoActiveTask, true)
	equal(t, "account", s.AccountURL, e.integ.Planfix.AccountURL)
}

// The store row: saved, updated, and a status the table does not know refused for good.
func TestSaveConversation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := activities.SaveConversationInput{IntegrationID: integrationID, ChatID: chatID, WorkflowID: "chatra/shop/CHAT1", ClientID: clientID,
		TaskID: 12, ContactID: 3, CustomerName: "Ivan", Status: "open"}
	if _, err := e.acts.SaveConversation(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.Status, in.TaskID = "closed", 0
	if _, err := e.acts.SaveConversation(ctx, in); err != nil {
		t.Fatal(err)
	}
	c, err := e.db.FindConversationByTask(ctx, integrationID, 12)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "status", c.Status, "closed")
	equal(t, "task kept", *c.PlanfixTaskID, int64(12))
	in.Status = "weird"
	_, err = e.acts.SaveConversation(ctx, in)
	equal(t, "bad status", appError(t, err).Type(), activities.ErrInvalidInput)
}

// The replies held for a task (written before its conversation was saved) come back
// from the first save with the task, and only from it.
func TestSaveConversationTakesHeldReplies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, comment := range []int64{71, 72} {
		if err := e.db.HoldReply(ctx, integrationID, 13, comment); err != nil {
			t.Fatal(err)
		}
	}
	in := activities.SaveConversationInput{IntegrationID: integrationID, ChatID: chatID, WorkflowID: "chatra/shop/CHAT1", ClientID: clientID,
		Status: "open"}
	r, err := e.acts.SaveConversation(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "without a task", len(r.HeldReplies), 0)
	in.TaskID = 13
	if r, err = e.acts.SaveConversation(ctx, in); err != nil {
		t.Fatal(err)
	}
	equal(t, "first save with the task", fmt.Sprint(r.HeldReplies), "[71 72]")
	if r, err = e.acts.SaveConversation(ctx, in); err != nil {
		t.Fatal(err)
	}
	equal(t, "next save", len(r.HeldReplies), 0)
}
