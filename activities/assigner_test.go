package activities_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"go.temporal.io/sdk/testsuite"
)

// createFirstAttempt runs CreateTask as an activity's first attempt (which does not look
// for an earlier attempt's task).
func createFirstAttempt(t *testing.T, e *env, in activities.CreateTaskInput) activities.CreateTaskResult {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	aenv := ts.NewTestActivityEnvironment()
	aenv.RegisterActivity(e.acts)
	v, err := aenv.ExecuteActivity(e.acts.CreateTask, in)
	if err != nil {
		t.Fatalf("create task: %v", err)
	}
	var r activities.CreateTaskResult
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// Whether Planfix keeps a contact as a task's assigner is detected, not assumed: in each
// of the sandbox's behaviours the task ends up linked to the contact (as assigner when
// Planfix keeps it, as counterparty otherwise), the finding is stored on the
// integration, the integration's next task spends no request on finding it out again,
// and FindActiveTask finds the contact's active task through the same role.
func TestContactRoleDetected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   func(*sandbox.Planfix)
		role  string
		first string // the first create's requests (%d: the task)
	}{
		{"planfix keeps the contact", func(*sandbox.Planfix) {}, postgres.ContactRoleAssigner,
			"POST /task/; GET /task/%d"},
		{"planfix keeps a user", func(p *sandbox.Planfix) { p.SetKeepUserAsAssigner(true) }, postgres.ContactRoleCounterparty,
			"POST /task/; GET /task/%d"}, // the contact went as counterparty too: no update
		{"planfix refuses the contact in russian", func(p *sandbox.Planfix) { p.SetRefuseContactAsAssigner(true) }, postgres.ContactRoleCounterparty,
			"POST /task/; POST /task/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.set(e.planfix)
			ctx := context.Background()
			contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
			ref := "contact:" + itoa(contact)
			linked := func(id int64) {
				t.Helper()
				task, ok := e.planfix.Task(id)
				if !ok {
					t.Fatalf("planfix has no task %d", id)
				}
				got := task.Counterparty
				if tc.role == postgres.ContactRoleAssigner {
					got = task.Assigner
				}
				if got != ref {
					t.Errorf("task %d: assigner %q, counterparty %q; want the contact as %s", id, task.Assigner, task.Counterparty, tc.role)
				}
			}
			in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()}

			first := createFirstAttempt(t, e, in)
			linked(first.TaskID)
			want := strings.ReplaceAll(tc.first, "%d", itoa(first.TaskID))
			equal(t, "first create's requests", strings.Join(e.requests(), "; "), want)
			role, err := e.db.ContactRole(ctx, integrationID)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "stored role", role, tc.role)

			n := len(e.planfix.RequestLog())
			in.ChatID, in.Episode = "CHAT-2", 1
			second := createFirstAttempt(t, e, in)
			linked(second.TaskID)
			equal(t, "second create's requests", strings.Join(e.requests()[n:], "; "), "POST /task/")

			n = len(e.planfix.RequestLog())
			found := must[activities.FindActiveTaskResult](t)(e.acts.FindActiveTask(ctx, activities.FindActiveTaskInput{IntegrationID: integrationID, ContactID: contact}))
			equal(t, "active task", found, activities.FindActiveTaskResult{TaskID: second.TaskID, Found: true})
			equal(t, "find's requests", strings.Join(e.requests()[n:], "; "), "POST /task/list")
			found = must[activities.FindActiveTaskResult](t)(e.acts.FindActiveTask(ctx, activities.FindActiveTaskInput{IntegrationID: integrationID, ContactID: contact, ExcludeTaskID: second.TaskID}))
			equal(t, "active task but the second", found, activities.FindActiveTaskResult{TaskID: first.TaskID, Found: true})
		})
	}
}

// A retried create whose earlier attempt made the task but was lost before the role was
// stored finds the task (as assigner or, after a fallback, as counterparty) and learns
// the role from where it found it; nothing is created twice.
func TestContactRoleRetryFindsTheTask(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*sandbox.Planfix)
		role string
	}{
		{"planfix keeps the contact", func(*sandbox.Planfix) {}, postgres.ContactRoleAssigner},
		{"planfix refuses the contact", func(p *sandbox.Planfix) { p.SetRefuseContactAsAssigner(true) }, postgres.ContactRoleCounterparty},
		// The task has a user as assigner: it is found as the contact's counterparty.
		{"planfix keeps a user", func(p *sandbox.Planfix) { p.SetKeepUserAsAssigner(true) }, postgres.ContactRoleCounterparty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.set(e.planfix)
			ctx := context.Background()
			contact := e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
			in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()}
			first := createFirstAttempt(t, e, in)
			// The attempt's records are lost: a retry must ask Planfix.
			if _, err := e.db.Pool.Exec(ctx, `DELETE FROM effects; UPDATE integrations SET contact_role = NULL`); err != nil {
				t.Fatal(err)
			}
			// Outside an activity, CreateTask behaves as a retried attempt.
			again := must[activities.CreateTaskResult](t)(e.acts.CreateTask(ctx, in))
			equal(t, "retried task", again, activities.CreateTaskResult{TaskID: first.TaskID, Existing: true})
			if n := len(e.planfix.Tasks()); n != 1 {
				t.Errorf("planfix has %d tasks, want 1", n)
			}
			role, err := e.db.ContactRole(ctx, integrationID)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "stored role", role, tc.role)
		})
	}
}

// lostReadBack is an integration whose Planfix keeps a user as assigner, with a contact,
// and the task of the chat's first episode made by an attempt (its effect recorded) that
// stopped before reading it back.
func lostReadBack(t *testing.T) (e *env, contact, task int64) {
	t.Helper()
	e = newEnv(t)
	e.planfix.SetKeepUserAsAssigner(true)
	contact = e.planfix.AddContact(sandbox.PlanfixContact{Name: "Ivan", TemplateID: sandbox.PlanfixContactTemplateID})
	task = e.planfix.AddTask(sandbox.PlanfixTask{Name: "Chat", TemplateID: sandbox.PlanfixTaskTemplateID, StatusID: sandbox.PlanfixStatusNew})
	sid := planfix.SourceObjectID(integrationID, "task", chatID, "1")
	if err := e.db.RecordEffect(context.Background(), integrationID, "task:"+sid, itoa(task)); err != nil {
		t.Fatal(err)
	}
	return e, contact, task
}

// An attempt that made the task (its effect recorded) but stopped before reading it back
// leaves the role unknown: the retry reads the task back, links the contact as
// counterparty where Planfix kept a user, and stores the finding; nothing is created.
func TestContactRoleDetectedAfterALostReadBack(t *testing.T) {
	e, contact, task := lostReadBack(t)
	ctx := context.Background()
	in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()}
	got := createFirstAttempt(t, e, in)
	equal(t, "task", got, activities.CreateTaskResult{TaskID: task, Existing: true})
	equal(t, "requests", strings.Join(e.requests(), "; "), "GET /task/"+itoa(task)+"; POST /task/"+itoa(task))
	if pt, _ := e.planfix.Task(task); pt.Counterparty != "contact:"+itoa(contact) {
		t.Errorf("counterparty = %q, want the contact", pt.Counterparty)
	}
	if role, err := e.db.ContactRole(ctx, integrationID); err != nil || role != postgres.ContactRoleCounterparty {
		t.Errorf("stored role = %q, %v; want counterparty", role, err)
	}
	if n := len(e.planfix.Tasks()); n != 1 {
		t.Errorf("planfix has %d tasks, want 1", n)
	}
}

// The same, when another chat of the integration found meanwhile that Planfix keeps a
// user as assigner: the retry still reads its task back and links the contact (the role
// it knows now does not say how the earlier attempt made the task).
func TestContactLinkedAfterALostReadBackOnceTheRoleIsKnown(t *testing.T) {
	e, contact, task := lostReadBack(t)
	ctx := context.Background()
	if err := e.db.SetContactRole(ctx, integrationID, postgres.ContactRoleCounterparty); err != nil {
		t.Fatal(err)
	}
	in := activities.CreateTaskInput{IntegrationID: integrationID, ChatID: chatID, ClientID: clientID, Episode: 1, ContactID: contact, Visitor: ivan()}
	got := createFirstAttempt(t, e, in)
	equal(t, "task", got, activities.CreateTaskResult{TaskID: task, Existing: true})
	if pt, _ := e.planfix.Task(task); pt.Counterparty != "contact:"+itoa(contact) {
		t.Errorf("counterparty = %q, want the contact", pt.Counterparty)
	}
	if n := len(e.planfix.Tasks()); n != 1 {
		t.Errorf("planfix has %d tasks, want 1", n)
	}
}
