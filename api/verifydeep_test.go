package api_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

// A deep verify against the sandbox in each of its Planfix modes, over real HTTP: every
// check passes (what Planfix does with a contact as assigner or with sourceObjectId is a
// finding, not a failure), each finding is the mode's, it is stored on the integration,
// the test task ends completed, and a second run finds the test contact again instead of
// making another. A plain verify makes nothing.
func TestAdminVerifyDeep(t *testing.T) {
	for _, mode := range []struct {
		name                  string
		set                   func(*sandbox.Planfix)
		role, sourceIDs, says string
	}{
		{"normal", func(*sandbox.Planfix) {}, postgres.ContactRoleAssigner, postgres.SourceIDsReturned, "kept contact"},
		{"no sourceObjectId", func(p *sandbox.Planfix) { p.SetHideSourceObjectIDs(true) }, postgres.ContactRoleAssigner, postgres.SourceIDsNotReturned, "kept contact"},
		{"keeps a user as assigner", func(p *sandbox.Planfix) { p.SetKeepUserAsAssigner(true) }, postgres.ContactRoleCounterparty, postgres.SourceIDsReturned, "kept user:1 instead"},
		{"refuses a contact as assigner", func(p *sandbox.Planfix) { p.SetRefuseContactAsAssigner(true) }, postgres.ContactRoleCounterparty, postgres.SourceIDsReturned, "refused contact 1 as a task's assigner (HTTP 400, code 41) and took it as counterparty"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newAdminEnv(t)
			mode.set(e.planfix)
			in := e.create(t)

			plain := decodeAnswer[api.VerifyResult](t, e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/verify", ""), http.StatusOK)
			if !plain.OK || plain.Deep || plain.Capabilities != nil || len(e.planfix.Tasks()) != 0 || len(e.planfix.Contacts()) != 0 {
				t.Fatalf("plain verify: %+v; tasks %d, contacts %d, want none made", plain, len(e.planfix.Tasks()), len(e.planfix.Contacts()))
			}

			deep := func() (api.VerifyResult, map[string]api.VerifyCheck) {
				t.Helper()
				r := decodeAnswer[api.VerifyResult](t, e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/verify?deep=true", ""), http.StatusOK)
				want := []string{api.CheckChatraKeys, api.CheckPlanfixToken, api.CheckPlanfixTaskTemplate, api.CheckPlanfixContactTemplate, api.CheckPlanfixCompletedStatus,
					api.CheckChatraAgent, api.CheckPlanfixContactSearch, api.CheckPlanfixContactCreate, api.CheckPlanfixTaskCreate, api.CheckPlanfixContactAsAssigner,
					api.CheckPlanfixCommentAsContact, api.CheckPlanfixCommentRead, api.CheckPlanfixCompleteTask, api.CheckPlanfixSourceObjectID}
				m := map[string]api.VerifyCheck{}
				var names []string
				for _, c := range r.Checks {
					m[c.Name], names = c, append(names, c.Name)
					if !c.OK || c.Message == "" {
						t.Errorf("check %+v failed", c)
					}
					if slices.Index(want, c.Name) >= 5 && c.Means == "" {
						t.Errorf("check %s does not say what it means for the bridge", c.Name)
					}
				}
				if !slices.Equal(names, want) || !r.OK || !r.Deep {
					t.Fatalf("deep verify: ok %t deep %t, checks %v, want %v", r.OK, r.Deep, names, want)
				}
				return r, m
			}
			r, checks := deep()
			if r.Capabilities == nil || r.Capabilities.ContactRole != mode.role || r.Capabilities.SourceIDs != mode.sourceIDs || r.Capabilities.DeepVerifiedAt == nil {
				t.Fatalf("capabilities = %+v, want contact role %q, sourceObjectIds %q", r.Capabilities, mode.role, mode.sourceIDs)
			}
			if msg := checks[api.CheckPlanfixContactAsAssigner].Message; !strings.Contains(msg, mode.says) {
				t.Errorf("contact as assigner: %q, want it to say %q", msg, mode.says)
			}
			stored, err := e.db.Capabilities(t.Context(), in.ID)
			if err != nil || stored.ContactRole != mode.role || stored.SourceIDs != mode.sourceIDs {
				t.Fatalf("stored capabilities = %+v, %v", stored, err)
			}
			// The integration's page shows what was found.
			got := decodeAnswer[api.IntegrationAnswer](t, e.call(t, http.MethodGet, "/api/v1/integrations/"+in.ID, ""), http.StatusOK)
			if c := got.Capabilities; c == nil || c.ContactRole != mode.role || c.SourceIDs != mode.sourceIDs || c.DeepVerifiedAt == nil {
				t.Fatalf("GET integration: capabilities %+v, want contact role %q, sourceObjectIds %q, verified", c, mode.role, mode.sourceIDs)
			}

			tasks, contacts := e.planfix.Tasks(), e.planfix.Contacts()
			if len(tasks) != 1 || len(contacts) != 1 {
				t.Fatalf("the deep verify made %d tasks and %d contacts, want one each", len(tasks), len(contacts))
			}
			task, contact := tasks[0], "contact:"+strconv.FormatInt(contacts[0].ID, 10)
			if task.StatusID != sandbox.PlanfixStatusCompleted || !strings.HasPrefix(task.Name, "Chatrabridge self-check") || contacts[0].Email != api.SelfCheckEmail {
				t.Fatalf("test task %+v, test contact %+v", task, contacts[0])
			}
			// The contact is on the task in the role found.
			if mode.role == postgres.ContactRoleAssigner && task.Assigner != contact || mode.role == postgres.ContactRoleCounterparty && task.Counterparty != contact {
				t.Fatalf("test task %+v: contact %s not its %s", task, contact, mode.role)
			}
			cms := e.planfix.Comments(task.ID)
			if len(cms) != 1 || cms[0].Owner != contact {
				t.Fatalf("test task's comments: %+v, want one by %s", cms, contact)
			}

			// Again: the test contact is found, a new test task is made and completed.
			_, checks = deep()
			if !strings.Contains(checks[api.CheckPlanfixContactSearch].Message, "earlier deep verify") || len(e.planfix.Contacts()) != 1 {
				t.Fatalf("second run: %+v, %d contacts", checks[api.CheckPlanfixContactSearch], len(e.planfix.Contacts()))
			}
			for _, tk := range e.planfix.Tasks() {
				if tk.StatusID != sandbox.PlanfixStatusCompleted {
					t.Fatalf("task %+v left active", tk)
				}
			}
		})
	}
}

// A deep verify whose plain checks fail runs nothing in Planfix; a bad deep is refused.
func TestAdminVerifyDeepRefused(t *testing.T) {
	e := newAdminEnv(t)
	in := e.create(t, set("chatra.agentEmail", ""), set("planfix.completedStatusId", 2))
	r := decodeAnswer[api.VerifyResult](t, e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/verify?deep=1", ""), http.StatusOK)
	if r.OK || !r.Deep {
		t.Fatalf("deep verify with an active completed status: %+v", r)
	}
	for _, c := range r.Checks {
		switch {
		case c.Name == api.CheckChatraAgent:
			if c.OK || c.Problem != api.ProblemBadSettings || !strings.Contains(c.Message, "chatra.agentId") {
				t.Errorf("agent check without a Chatra user: %+v", c)
			}
		case slices.Contains([]string{api.CheckPlanfixContactSearch, api.CheckPlanfixTaskCreate, api.CheckPlanfixSourceObjectID}, c.Name):
			if c.Problem != api.ProblemSkipped {
				t.Errorf("check %+v ran after a failed plain check", c)
			}
		}
	}
	if n := len(e.planfix.Tasks()) + len(e.planfix.Contacts()); n != 0 {
		t.Fatalf("%d objects made in Planfix", n)
	}
	adminError(t, e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/verify?deep=very", ""), http.StatusBadRequest, "invalid", "deep")

	// Planfix stops answering at the task's create (its daily limit, after the plain
	// checks' 4 requests and the contact's 3): the create fails with the reason, the
	// checks after it are skipped, in their order, and no finding is made.
	good := e.create(t)
	e.planfix.SetDailyQuota(7)
	r = decodeAnswer[api.VerifyResult](t, e.call(t, http.MethodPost, "/api/v1/integrations/"+good.ID+"/verify?deep=true", ""), http.StatusOK)
	var got []string
	for _, c := range r.Checks[5:] {
		result := "ok"
		if !c.OK {
			result = c.Problem
		}
		got = append(got, c.Name+" "+result)
	}
	want := []string{"chatra.agent ok", "planfix.contactSearch ok", "planfix.contactCreate ok", "planfix.taskCreate rate_limited",
		"planfix.contactAsAssigner skipped", "planfix.commentAsContact skipped", "planfix.commentRead skipped", "planfix.completeTask skipped", "planfix.sourceObjectId skipped"}
	if r.OK || !slices.Equal(got, want) {
		t.Fatalf("deep verify over Planfix's limit: ok %t\n%s\nwant\n%s", r.OK, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.Capabilities == nil || r.Capabilities.ContactRole != "" || r.Capabilities.SourceIDs != "" || len(e.planfix.Tasks()) != 0 {
		t.Fatalf("capabilities %+v, %d tasks; want nothing found or made", r.Capabilities, len(e.planfix.Tasks()))
	}
}
