package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

// priorityLimiter records the class and chat start of each Planfix request.
type priorityLimiter struct {
	classes []planfix.Class
	chats   []time.Time
}

func (l *priorityLimiter) Wait(ctx context.Context, _ string) error {
	l.classes = append(l.classes, planfix.ClassOf(ctx))
	l.chats = append(l.chats, planfix.ChatOf(ctx))
	return nil
}

func (l *priorityLimiter) Block(context.Context, string, time.Time) error { return nil }

// Each activity spends its Planfix requests in its class, with its chat's start: the
// setup of a chat and the reading of a reply first, then messages, then completion, the
// optional calls last.
func TestActivitiesRequestClasses(t *testing.T) {
	e := newEnv(t)
	lim := &priorityLimiter{}
	e.acts.Limiter = lim
	ctx := context.Background()
	started := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	cs := activities.ChatStart{ChatStartedAt: started}

	check := func(what string, want planfix.Class) {
		t.Helper()
		if len(lim.classes) == 0 {
			t.Fatalf("%s: no Planfix request", what)
		}
		for i, c := range lim.classes {
			if c != want || !lim.chats[i].Equal(started) {
				t.Errorf("%s: request %d in class %q of the chat started %v, want %q of %v", what, i, c, lim.chats[i], want, started)
			}
		}
		lim.classes, lim.chats = nil, nil
	}
	contact := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, activities.EnsureContactInput{
		IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Visitor: ivan(), ChatStart: cs}))
	check("EnsureContact", planfix.ClassSetup)
	must[activities.FindActiveTaskResult](t)(e.acts.FindActiveTask(ctx, activities.FindActiveTaskInput{
		IntegrationID: integrationID, ContactID: contact.ContactID, ChatStart: cs}))
	check("FindActiveTask", planfix.ClassSetup)
	task := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, activities.CreateTaskInput{
		IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact.ContactID, Visitor: ivan(), ChatStart: cs}))
	check("CreateTask", planfix.ClassSetup)
	must[activities.AddCommentsResult](t)(e.acts.AddComments(ctx, activities.AddCommentsInput{
		IntegrationID: integrationID, ChatID: chatID, TaskID: task.TaskID, ContactID: contact.ContactID, ChatStart: cs,
		Messages: []activities.ChatMessage{{ID: "m1", Type: "client", Text: "Hello", Time: started}}}))
	check("AddComments", planfix.ClassMessages)
	must[activities.AddContactActionResult](t)(e.acts.AddContactAction(ctx, activities.AddContactActionInput{
		IntegrationID: integrationID, ChatID: chatID, Episode: 1, ContactID: contact.ContactID, TaskID: task.TaskID, Visitor: ivan(), ChatStart: cs}))
	check("AddContactAction", planfix.ClassLow)
	if err := e.acts.UpdateContact(ctx, activities.UpdateContactInput{IntegrationID: integrationID, ContactID: contact.ContactID, Name: "Ivan P", ChatStart: cs}); err != nil {
		t.Fatal(err)
	}
	check("UpdateContact", planfix.ClassLow)
	cm, err := e.planfix.AddComment(sandbox.PlanfixComment{TaskID: task.TaskID, Description: "Hi", Owner: "user:5"})
	if err != nil {
		t.Fatal(err)
	}
	must[activities.SendReplyResult](t)(e.acts.SendReply(ctx, activities.SendReplyInput{
		IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, TaskID: task.TaskID, Key: "r1", CommentID: cm, ReceivedFrom: "bridge", ChatStart: cs}))
	check("SendReply", planfix.ClassSetup)
	must[activities.CompleteTaskResult](t)(e.acts.CompleteTask(ctx, activities.CompleteTaskInput{IntegrationID: integrationID, TaskID: task.TaskID, ChatStart: cs}))
	check("CompleteTask", planfix.ClassCompletion)
}

// When the account's daily quota runs low, the optional calls are skipped, without a
// request, with a failure that says why; the others go on.
func TestOptionalCallsSkippedWhenQuotaLow(t *testing.T) {
	e := newEnv(t)
	e.acts.OptionalReserve = 100
	ctx := context.Background()
	e.planfix.SetDailyQuota(150)
	contact := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, activities.EnsureContactInput{
		IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Visitor: ivan()}))
	action := activities.AddContactActionInput{IntegrationID: integrationID, ChatID: chatID, Episode: 1, ContactID: contact.ContactID, Visitor: ivan()}
	// Plenty left: the action goes.
	must[activities.AddContactActionResult](t)(e.acts.AddContactAction(ctx, action))

	e.planfix.SetDailyQuota(60) // the next answer says fewer than 100 are left
	task := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, activities.CreateTaskInput{
		IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact.ContactID, Visitor: ivan()}))
	n := len(e.planfix.RequestLog())
	action.Episode = 2
	_, err := e.acts.AddContactAction(ctx, action)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrQuotaLow || !app.NonRetryable() {
		t.Fatalf("AddContactAction on a low quota = %v, want a non-retryable %s", err, activities.ErrQuotaLow)
	}
	contains(t, "reason", app.Error(), "X-RateLimit-Remaining")
	err = e.acts.UpdateContact(ctx, activities.UpdateContactInput{IntegrationID: integrationID, ContactID: contact.ContactID, Name: "Ivan P"})
	if !errors.As(err, &app) || app.Type() != activities.ErrQuotaLow {
		t.Fatalf("UpdateContact on a low quota = %v, want %s", err, activities.ErrQuotaLow)
	}
	equal(t, "requests of the skipped calls", len(e.planfix.RequestLog()), n)
	// What a customer waits for still goes.
	must[activities.AddCommentsResult](t)(e.acts.AddComments(ctx, activities.AddCommentsInput{
		IntegrationID: integrationID, ChatID: chatID, TaskID: task.TaskID, ContactID: contact.ContactID,
		Messages: []activities.ChatMessage{{ID: "m1", Type: "client", Text: "Hello", Time: time.Now()}}}))
	if got := len(e.planfix.ContactComments(contact.ContactID)); got != 1 {
		t.Errorf("contact has %d actions, want 1", got)
	}
}
