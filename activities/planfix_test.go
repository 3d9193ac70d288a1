package activities_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

// A contact is created once: a retry after Planfix created it (but before the store
// mapped it) finds it by its sourceObjectId instead of creating a second one.
func TestEnsureContactCreatesOnceUnderRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		visitor activities.Visitor
	}{
		{"with email", ivan()},
		{"anonymous", activities.Visitor{Name: "Visitor 4521", OS: "iOS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			in := activities.EnsureContactInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Visitor: tc.visitor}
			first := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, in))
			equal(t, "how", first.How, activities.ContactCreated)
			// The crash: Planfix has the contact, the store lost the mapping.
			if _, err := e.db.Pool.Exec(ctx, `DELETE FROM contacts`); err != nil {
				t.Fatal(err)
			}
			second := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, in))
			equal(t, "contact", second.ContactID, first.ContactID)
			if n := len(e.planfix.Contacts()); n != 1 {
				t.Fatalf("planfix has %d contacts, want 1", n)
			}
			c := e.planfix.Contacts()[0]
			equal(t, "template", c.TemplateID, int64(sandbox.PlanfixContactTemplateID))
			equal(t, "name", c.Name, tc.visitor.Name)
			equal(t, "email", c.Email, tc.visitor.Email)
			m, err := e.db.FindContactByClient(ctx, integrationID, clientID)
			if err != nil {
				t.Fatalf("mapping: %v", err)
			}
			equal(t, "mapped contact", m.PlanfixContactID, first.ContactID)
		})
	}
}

// The contact is found by email first (a second device); the email is a claim, so the
// visitor is not mapped to that contact (unless the integration trusts email claims):
// the same visitor without an email later gets a contact of their own, while a visitor
// mapped to a contact (created for them) is found by the mapping. A known contact whose
// email turns out to be another contact's is switched.
func TestEnsureContactFindsByEmailAndClient(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	existing := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan Petrov", Email: "Ivan@Example.com", TemplateID: sandbox.PlanfixContactTemplateID})

	r := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, activities.EnsureContactInput{
		IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Visitor: ivan()}))
	equal(t, "by email", r, activities.EnsureContactResult{ContactID: existing, How: activities.ContactByEmail, Claimed: true})
	if _, err := e.db.FindContactByClient(ctx, integrationID, clientID); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Fatalf("an email claim mapped the visitor to the contact: %v", err)
	}

	// Later, the same visitor without an email: a contact of their own, then mapped.
	r = must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, activities.EnsureContactInput{
		IntegrationID: integrationID, ChatID: "CHAT2", ClientID: clientID, Visitor: activities.Visitor{Name: "Ivan"}}))
	if r.ContactID == existing || r.How != activities.ContactCreated {
		t.Fatalf("without an email: %+v, want a contact created for the visitor", r)
	}
	own := r.ContactID
	r = must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, activities.EnsureContactInput{
		IntegrationID: integrationID, ChatID: "CHAT4", ClientID: clientID, Visitor: activities.Visitor{Name: "Ivan"}}))
	equal(t, "by client", r, activities.EnsureContactResult{ContactID: own, How: activities.ContactByClient})

	// A phone chat with its own contact learns the email: switched.
	r = must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, activities.EnsureContactInput{
		IntegrationID: integrationID, ChatID: "CHAT3", ClientID: "PHONE", ContactID: 999, Visitor: ivan()}))
	equal(t, "switched", r, activities.EnsureContactResult{ContactID: existing, How: activities.ContactByEmail, Switched: true, Claimed: true})
	// With trustEmailClaims the email is proof: not claimed, and the visitor is mapped.
	e.integ.Options.TrustEmailClaims = true
	r = must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, activities.EnsureContactInput{
		IntegrationID: integrationID, ChatID: "CHAT5", ClientID: "TABLET", Visitor: ivan()}))
	equal(t, "trusted", r, activities.EnsureContactResult{ContactID: existing, How: activities.ContactByEmail})
	if m, err := e.db.FindContactByClient(ctx, integrationID, "TABLET"); err != nil || m.PlanfixContactID != existing {
		t.Fatalf("a trusted email did not map the visitor: %+v %v", m, err)
	}
	if n := len(e.planfix.Contacts()); n != 2 {
		t.Errorf("planfix has %d contacts, want 2 (the visitor's own, created once)", n)
	}
}

// A task is created once under retry: the second attempt finds the first one's in the
// store (the first recorded it). The task carries the template, the customer as assigner, the extra
// employees, the site in its name and the escaped visitor details in its description.
func TestCreateTaskIdempotentUnderRetry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()}
	first := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, in))
	second := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, in))
	equal(t, "second attempt's task", second, activities.CreateTaskResult{TaskID: first.TaskID, Existing: true})
	tasks := e.planfix.Tasks()
	if len(tasks) != 1 {
		t.Fatalf("planfix has %d tasks, want 1", len(tasks))
	}
	task := tasks[0]
	equal(t, "template", task.TemplateID, int64(sandbox.PlanfixTaskTemplateID))
	equal(t, "assigner", task.Assigner, "contact:"+itoa(contact))
	equal(t, "assignees", strings.Join(task.Assignees, ","), "user:5")
	equal(t, "name", task.Name, "Chat with Ivan <b>Petrov</b> on Shop")
	for _, want := range []string{"Customer: Ivan &lt;b&gt;Petrov&lt;/b&gt;<br>", "Location: Riga, Latvia", "Source: google",
		"Device: desktop", "OS: macOS", "Browser: Safari", "IP: 203.0.113.5", "Pages visited:<br>- https://shop.example/cart?a=1&amp;b=2",
		"Plan: gold", "Chatra chat CHAT1, visitor V1 (chatrabridge ref "} {
		contains(t, "description", task.Description, want)
	}

	// Another episode is another task; so is the first episode of a later run.
	in.Episode = 2
	third := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, in))
	if third.TaskID == first.TaskID || third.Existing {
		t.Errorf("episode 2 got %+v, want a new task", third)
	}
	in.Episode, in.EpisodeKey = 1, "second-run/1"
	fourth := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, in))
	if fourth.TaskID == first.TaskID || fourth.Existing {
		t.Errorf("a later run's episode 1 got %+v, want a new task", fourth)
	}
}

// A create whose answer was lost (nothing in the store) is found by its retry in Planfix,
// also when Planfix keeps no sourceObjectId: by the reference in the description. The
// same for a contact. Comments have no such reference: the bridge prefers a repeated one
// to a lost one, but a comment it has recorded is never added twice, also after a reset
// (a first attempt again).
func TestCreatesFoundWithoutSourceObjectID(t *testing.T) {
	for _, hide := range []bool{false, true} {
		t.Run(fmt.Sprintf("hide=%v", hide), func(t *testing.T) {
			e := newEnv(t)
			e.planfix.SetHideSourceObjectIDs(hide)
			ctx := context.Background()
			forget := func() {
				if _, err := e.db.Pool.Exec(ctx, `DELETE FROM effects`); err != nil {
					t.Fatal(err)
				}
			}
			contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
			in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()}
			first := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, in))
			forget()
			again := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, in))
			equal(t, "retried task", again, activities.CreateTaskResult{TaskID: first.TaskID, Existing: true})
			if n := len(e.planfix.Tasks()); n != 1 {
				t.Errorf("planfix has %d tasks, want 1", n)
			}

			ec := activities.EnsureContactInput{IntegrationID: integrationID, ChatID: "NEW-CHAT", ClientID: "NEW-V", Visitor: activities.Visitor{Name: "Olga", Email: "olga@example.com"}}
			c1 := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, ec))
			if _, err := e.db.Pool.Exec(ctx, `DELETE FROM contacts WHERE chatra_client_id = 'NEW-V'`); err != nil {
				t.Fatal(err)
			}
			c2 := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, ec))
			equal(t, "retried contact", c2.ContactID, c1.ContactID)

			note := activities.AddNoteInput{IntegrationID: integrationID, TaskID: first.TaskID, Key: "k", Text: "a note"}
			n1 := must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, note))
			n2 := must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, note)) // recorded: not added again
			equal(t, "recorded note", n2.CommentID, n1.CommentID)
			forget()
			n3 := must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, note))
			if want := len(e.planfix.Comments(first.TaskID)); hide != (want == 2) || (!hide && n3.CommentID != n1.CommentID) {
				t.Errorf("a note whose record was lost: %d comments (id %d, first %d); want it found by its sourceObjectId unless Planfix hides it", want, n3.CommentID, n1.CommentID)
			}
		})
	}
}

// The first attempt of an activity does not spend a Planfix request looking for what
// cannot exist yet (nor, once the contact's role is known, reading the task back).
func TestFirstAttemptCreatesWithoutLooking(t *testing.T) {
	e := newEnv(t)
	if err := e.db.SetContactRole(context.Background(), integrationID, postgres.ContactRoleAssigner); err != nil {
		t.Fatal(err)
	}
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	var ts testsuite.WorkflowTestSuite
	aenv := ts.NewTestActivityEnvironment()
	aenv.RegisterActivity(e.acts)
	if _, err := aenv.ExecuteActivity(e.acts.CreateTask, activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID,
		ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()}); err != nil {
		t.Fatal(err)
	}
	equal(t, "requests", strings.Join(e.requests(), "; "), "POST /task/")
}

// Messages become comments once under retry: visitor runs authored by the contact,
// agent runs marked as written in Chatra, combined lines with their times; a retry after
// a partial failure adds only what is missing.
func TestAddCommentsIdempotentUnderRetry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	task := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusNew})
	if _, err := e.acts.SaveConversation(ctx, activities.SaveConversationInput{IntegrationID: integrationID, ChatID: chatID,
		WorkflowID: "chatra/shop/CHAT1", TaskID: task, ContactID: contact, Status: postgres.StatusOpen}); err != nil {
		t.Fatal(err)
	}
	before := conversationUpdatedAt(t, e)
	t0 := time.Date(2026, 11, 24, 10, 1, 0, 0, time.UTC)
	in := activities.AddCommentsInput{IntegrationID: integrationID, ChatID: chatID, TaskID: task, ContactID: contact,
		Messages: []activities.ChatMessage{
			{ID: "M1", Type: "client", Text: "Hi <there>", Time: t0},
			{ID: "M2", Type: "client", Text: "where is my order?", Time: t0.Add(time.Minute)},
			{ID: "A1", Type: "agent", Text: "Checking now.", Time: t0.Add(2 * time.Minute), AgentName: "Julia"},
			{ID: "M3", Type: "client", Text: "thanks", Time: t0.Add(3 * time.Minute)},
		}}
	// The third comment fails with a 500: the first two are made.
	e.planfix.InjectFaults(sandbox.PlanfixFault{}, sandbox.PlanfixFault{}, sandbox.PlanfixFault{Status: http.StatusInternalServerError})
	_, err := e.acts.AddComments(ctx, in)
	if err == nil {
		t.Fatal("the injected 500 did not fail the call")
	}
	if appError(t, err).NonRetryable() {
		t.Errorf("a 500 is non-retryable: %v", err)
	}
	r := must[activities.AddCommentsResult](t)(e.acts.AddComments(ctx, in))
	again := must[activities.AddCommentsResult](t)(e.acts.AddComments(ctx, in))
	if !slices.Equal(r.CommentIDs, again.CommentIDs) || len(r.CommentIDs) != 3 {
		t.Fatalf("comment ids %v then %v, want the same 3", r.CommentIDs, again.CommentIDs)
	}
	comments := e.planfix.Comments(task)
	if len(comments) != 3 {
		t.Fatalf("task has %d comments, want 3: %+v", len(comments), comments)
	}
	equal(t, "comment 1 owner", comments[0].Owner, "contact:"+itoa(contact))
	equal(t, "comment 1", comments[0].Description, "[10:01 UTC] Hi &lt;there&gt;<br>[10:02 UTC] where is my order?")
	equal(t, "comment 2 owner", comments[1].Owner, "user:1")
	equal(t, "comment 2", comments[1].Description, "Agent Julia in Chatra: Checking now.")
	equal(t, "comment 3", comments[2].Description, "thanks")
	if after := conversationUpdatedAt(t, e); !after.After(before) {
		t.Errorf("the conversation's updated_at did not move (%v, then %v)", before, after)
	}
}

func conversationUpdatedAt(t *testing.T, e *env) time.Time {
	t.Helper()
	c, err := e.db.GetConversation(context.Background(), integrationID, chatID)
	if err != nil {
		t.Fatal(err)
	}
	return c.UpdatedAt
}

// A note is added once under retry.
func TestAddNoteIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusNew})
	in := activities.AddNoteInput{IntegrationID: integrationID, TaskID: task, Key: "reply-note:planfix-comment:7", Text: "This reply was not sent: <reason>"}
	a := must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, in))
	b := must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, in))
	equal(t, "second note", b.CommentID, a.CommentID)
	comments := e.planfix.Comments(task)
	if len(comments) != 1 {
		t.Fatalf("task has %d comments, want 1", len(comments))
	}
	equal(t, "note", comments[0].Description, "This reply was not sent: &lt;reason&gt;")
}

// classLimiter records the request class of each Planfix request.
type classLimiter struct{ classes []planfix.Class }

func (l *classLimiter) Wait(ctx context.Context, _ string) error {
	l.classes = append(l.classes, planfix.ClassOf(ctx))
	return nil
}

func (l *classLimiter) Block(context.Context, string, time.Time) error { return nil }

// A reminder is a note addressed to the task's assignees, whose requests are spent in
// the lowest class (a retry's lookup as well); other notes notify nobody in particular
// and are of the default class.
func TestAddNoteRemindsAssigneesInTheLowClass(t *testing.T) {
	e := newEnv(t)
	lim := &classLimiter{}
	e.acts.Limiter = lim
	ctx := context.Background()
	task := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusNew})
	in := activities.AddNoteInput{IntegrationID: integrationID, TaskID: task, Key: "reminder:1", Text: "Ivan has been waiting 5 min for an answer.",
		NotifyAssignees: true, Class: planfix.ClassLow}
	first := must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, in))
	again := must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, in)) // a retry: looks first
	equal(t, "retried reminder", again.CommentID, first.CommentID)
	must[activities.AddNoteResult](t)(e.acts.AddNote(ctx, activities.AddNoteInput{IntegrationID: integrationID, TaskID: task, Key: "other", Text: "a note"}))
	comments := e.planfix.Comments(task)
	if len(comments) != 2 || !slices.Equal(comments[0].Recipients, []string{"role:assignee"}) || comments[1].Recipients != nil {
		t.Fatalf("comments = %+v", comments)
	}
	// Outside an activity every call looks before it adds (retried): list and add; the
	// second finds the first in the store (no request); then the other note's list and add.
	want := []planfix.Class{planfix.ClassLow, planfix.ClassLow, planfix.ClassDefault, planfix.ClassDefault}
	if !slices.Equal(lim.classes, want) {
		t.Errorf("request classes = %q, want %q", lim.classes, want)
	}
}

// The action on the contact is added once per episode (the store remembers it).
func TestAddContactActionOncePerEpisode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	in := activities.AddContactActionInput{IntegrationID: integrationID, ChatID: chatID, Episode: 1, ContactID: contact, TaskID: 12, Visitor: ivan()}
	a := must[activities.AddContactActionResult](t)(e.acts.AddContactAction(ctx, in))
	b := must[activities.AddContactActionResult](t)(e.acts.AddContactAction(ctx, in))
	equal(t, "retry", b, activities.AddContactActionResult{CommentID: a.CommentID, Existing: true})
	in.Episode = 2
	must[activities.AddContactActionResult](t)(e.acts.AddContactAction(ctx, in))
	// A later run of the same chat counts episodes from 1 again: its key tells it apart.
	in.Episode, in.EpisodeKey = 1, "second-run/1"
	must[activities.AddContactActionResult](t)(e.acts.AddContactAction(ctx, in))
	actions := e.planfix.ContactComments(contact)
	if len(actions) != 3 {
		t.Fatalf("contact has %d actions, want 3 (one per episode)", len(actions))
	}
	for _, want := range []string{"Reached out through the chat on Shop.", "OS: macOS", "Browser: Safari", "IP: 203.0.113.5", "/task/12"} {
		contains(t, "action", actions[0].Description, want)
	}
}

// The active task of a contact: from the store's conversations (checked in Planfix),
// else from Planfix's tasks of the template where the contact is the assigner; completed
// tasks and the excluded one do not count.
func TestFindActiveTask(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	assigner := "contact:" + itoa(contact)
	done := e.planfix.AddTask(sandbox.PlanfixTask{Name: "old", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusCompleted, Assigner: assigner})
	active := e.planfix.AddTask(sandbox.PlanfixTask{Name: "now", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusInProgress, Assigner: assigner})
	find := func(exclude int64) activities.FindActiveTaskResult {
		t.Helper()
		return must[activities.FindActiveTaskResult](t)(e.acts.FindActiveTask(ctx, activities.FindActiveTaskInput{
			IntegrationID: integrationID, ContactID: contact, ExcludeTaskID: exclude}))
	}
	equal(t, "from planfix's list", find(0), activities.FindActiveTaskResult{TaskID: active, Found: true})
	equal(t, "excluded", find(active), activities.FindActiveTaskResult{})

	// A conversation of the contact used a task not made from the template (or whose
	// assigner Planfix did not take): the store knows it.
	other := e.planfix.AddTask(sandbox.PlanfixTask{Name: "by hand", StatusID: sandbox.PlanfixStatusNew})
	for n, task := range []int64{done, other} {
		if _, err := e.acts.SaveConversation(ctx, activities.SaveConversationInput{IntegrationID: integrationID, ChatID: "C" + itoa(int64(n)),
			WorkflowID: "chatra/shop/C" + itoa(int64(n)), TaskID: task, ContactID: contact, Status: postgres.StatusOpen}); err != nil {
			t.Fatal(err)
		}
	}
	equal(t, "from the store", find(active), activities.FindActiveTaskResult{TaskID: other, Found: true})
}

// Completing a task: the integration's status, or the process's completed status when
// unset; a task an employee already closed is left as it is.
func TestCompleteTask(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat", TemplateID: sandbox.PlanfixTaskTemplateID, ProcessID: sandbox.PlanfixProcessID, StatusID: sandbox.PlanfixStatusNew})
	r := must[activities.CompleteTaskResult](t)(e.acts.CompleteTask(ctx, activities.CompleteTaskInput{IntegrationID: integrationID, TaskID: task}))
	equal(t, "resolved status", r, activities.CompleteTaskResult{StatusID: sandbox.PlanfixStatusCompleted})
	got, _ := e.planfix.Task(task)
	equal(t, "status", got.StatusID, int64(sandbox.PlanfixStatusCompleted))
	r = must[activities.CompleteTaskResult](t)(e.acts.CompleteTask(ctx, activities.CompleteTaskInput{IntegrationID: integrationID, TaskID: task}))
	equal(t, "again", r, activities.CompleteTaskResult{StatusID: sandbox.PlanfixStatusCompleted, AlreadyInactive: true})

	e.integ.Planfix.CompletedStatusID = sandbox.PlanfixStatusCompleted
	task2 := e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat 2", TemplateID: sandbox.PlanfixTaskTemplateID, ProcessID: sandbox.PlanfixProcessID, StatusID: sandbox.PlanfixStatusInProgress})
	n := len(e.planfix.RequestLog())
	must[activities.CompleteTaskResult](t)(e.acts.CompleteTask(ctx, activities.CompleteTaskInput{IntegrationID: integrationID, TaskID: task2}))
	equal(t, "requests with the status set", strings.Join(e.requests()[n:], "; "), "GET /task/"+itoa(task2)+"; POST /task/"+itoa(task2))
	got, _ = e.planfix.Task(task2)
	equal(t, "status 2", got.StatusID, int64(sandbox.PlanfixStatusCompleted))
}

// The visitor's new name, email and phone go onto the contact card.
func TestUpdateContact(t *testing.T) {
	e := newEnv(t)
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Visitor 4521", TemplateID: sandbox.PlanfixContactTemplateID})
	if err := e.acts.UpdateContact(context.Background(), activities.UpdateContactInput{IntegrationID: integrationID, ContactID: contact,
		Name: "Olga Petrova", Email: " Olga@Example.com ", Phone: "+371 2000 0000"}); err != nil {
		t.Fatal(err)
	}
	c := e.planfix.Contacts()[0]
	equal(t, "name", c.Name, "Olga Petrova")
	equal(t, "email", c.Email, "olga@example.com")
	if len(c.Phones) != 1 || c.Phones[0].Number != "+371 2000 0000" {
		t.Errorf("phones = %+v", c.Phones)
	}
	// Nothing to write: no request.
	n := len(e.planfix.RequestLog())
	if err := e.acts.UpdateContact(context.Background(), activities.UpdateContactInput{IntegrationID: integrationID, ContactID: contact}); err != nil {
		t.Fatal(err)
	}
	equal(t, "requests for an empty update", len(e.planfix.RequestLog()), n)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A visitor mapped to a contact Planfix no longer has: Planfix refuses it as assigner and
// as counterparty, CreateTask checks the contact (one request, on that failure only),
// forgets the mappings to it and reports ErrContactGone, non-retryable, naming the
// contact; the next EnsureContact creates a new contact, for which the task is created.
func TestCreateTaskForgetsAContactPlanfixNoLongerHas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const stale = int64(999)
	for _, c := range []postgres.Contact{
		{IntegrationID: integrationID, ChatraClientID: clientID, Email: "ivan@example.com", PlanfixContactID: stale},
		{IntegrationID: integrationID, ChatraClientID: "PHONE", PlanfixContactID: stale},
	} {
		if err := e.db.SaveContact(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ensure := activities.EnsureContactInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Visitor: ivan()}
	r := must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, ensure))
	equal(t, "contact before (the stale mapping, Planfix not asked)", r.ContactID, stale)

	var ts testsuite.WorkflowTestSuite
	aenv := ts.NewTestActivityEnvironment()
	aenv.RegisterActivity(e.acts)
	in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: stale, Visitor: ivan()}
	_, err := aenv.ExecuteActivity(e.acts.CreateTask, in)
	app := appError(t, err)
	equal(t, "error type", app.Type(), activities.ErrContactGone)
	equal(t, "non-retryable", app.NonRetryable(), true)
	contains(t, "message", app.Error(), "contact 999")
	equal(t, "requests", strings.Join(e.requests(), "; "), "POST /task/; POST /task/; GET /contact/999")
	if n := len(e.planfix.Tasks()); n != 0 {
		t.Errorf("planfix has %d tasks, want none", n)
	}
	for _, client := range []string{clientID, "PHONE"} {
		if m, err := e.db.FindContactByClient(ctx, integrationID, client); err == nil {
			t.Errorf("visitor %s is still mapped: %+v", client, m)
		}
	}
	if m, err := e.db.FindContactByEmail(ctx, integrationID, "ivan@example.com"); err == nil {
		t.Errorf("the email is still mapped: %+v", m)
	}

	// Set up again: a new contact, and the task for it.
	r = must[activities.EnsureContactResult](t)(e.acts.EnsureContact(ctx, ensure))
	equal(t, "how", r.How, activities.ContactCreated)
	if r.ContactID == stale || r.ContactID <= 0 {
		t.Fatalf("contact after = %d, want a new one", r.ContactID)
	}
	in.ContactID = r.ContactID
	v, err := aenv.ExecuteActivity(e.acts.CreateTask, in)
	if err != nil {
		t.Fatalf("create the task for the new contact: %v", err)
	}
	var task activities.CreateTaskResult
	if err := v.Get(&task); err != nil || task.TaskID <= 0 {
		t.Fatalf("task = %+v, %v", task, err)
	}
	got, ok := e.planfix.Task(task.TaskID)
	if !ok || got.Assigner != "contact:"+itoa(r.ContactID) {
		t.Errorf("task %d = %+v, %v; want the new contact as assigner", task.TaskID, got, ok)
	}
}

// A contact Planfix still has but refuses for the task keeps its mapping, and the
// refusal is reported as it was (no ErrContactGone).
func TestCreateTaskKeepsAContactPlanfixHas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	if err := e.db.SaveContact(ctx, postgres.Contact{IntegrationID: integrationID, ChatraClientID: clientID, PlanfixContactID: contact}); err != nil {
		t.Fatal(err)
	}
	e.planfix.InjectFaults(
		sandbox.PlanfixFault{Status: 400, Code: 41, Message: "Wrong value of parameter assigner"},
		sandbox.PlanfixFault{Status: 400, Code: 41, Message: "Wrong value of parameter counterparty"})
	var ts testsuite.WorkflowTestSuite
	aenv := ts.NewTestActivityEnvironment()
	aenv.RegisterActivity(e.acts)
	_, err := aenv.ExecuteActivity(e.acts.CreateTask, activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID,
		ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()})
	app := appError(t, err)
	equal(t, "error type", app.Type(), "planfix.bad_request")
	equal(t, "requests", strings.Join(e.requests(), "; "), "POST /task/; POST /task/; GET /contact/"+itoa(contact))
	if m, err := e.db.FindContactByClient(ctx, integrationID, clientID); err != nil || m.PlanfixContactID != contact {
		t.Errorf("mapping = %+v, %v; want it kept", m, err)
	}
}
