package planfix_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// classLimiter records the request class of each Wait.
type classLimiter struct{ classes []planfix.Class }

func (l *classLimiter) Wait(ctx context.Context, _ string) error {
	l.classes = append(l.classes, planfix.ClassOf(ctx))
	return nil
}

func (l *classLimiter) Block(context.Context, string, time.Time) error { return nil }

// A request's class reaches the limiter through the context; a context without one is
// of the default class.
func TestClassReachesTheLimiter(t *testing.T) {
	sb := sandbox.NewPlanfix(testToken)
	sb.SetRateInterval(0)
	srv := httptest.NewServer(sb)
	defer srv.Close()
	lim := &classLimiter{}
	c := planfix.NewClient(planfix.Config{BaseURL: srv.URL + "/rest", Token: secrets.String(testToken)}, srv.Client(), lim)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(planfix.WithClass(ctx, planfix.ClassLow)); err != nil {
		t.Fatal(err)
	}
	if want := []planfix.Class{planfix.ClassDefault, planfix.ClassLow}; !slices.Equal(lim.classes, want) {
		t.Errorf("classes = %q, want %q", lim.classes, want)
	}
}

// A comment addressed to the task's assignees carries recipients as the spec's example
// does (roles as an array); Planfix (here the stand-in) keeps who it notifies.
func TestCommentRecipients(t *testing.T) {
	f := newFixture(t, planfix.Config{})
	ctx := context.Background()
	task, err := f.client.CreateTask(ctx, planfix.NewTask{TemplateID: sandbox.PlanfixTaskTemplateID, Name: "chat", Assignees: []planfix.PersonID{planfix.UserID(5)}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.client.AddTaskComment(ctx, task, planfix.NewComment{Description: "Waiting",
		Recipients: &planfix.Recipients{Roles: []string{planfix.RoleAssignee}, Users: []planfix.PersonID{planfix.UserID(6)}}})
	if err != nil {
		t.Fatal(err)
	}
	checkRequest(t, f.last(t), "POST", fmt.Sprintf("/rest/task/%d/comments/", task), nil,
		`{"description":"Waiting","recipients":{"users":[{"id":"user:6"}],"roles":["assignee"]}}`)
	got := f.sb.Comments(task)
	if len(got) != 1 || got[0].ID != id || !slices.Equal(got[0].Recipients, []string{"user:6", "role:assignee"}) {
		t.Errorf("comments = %+v", got)
	}
	// Without recipients nothing is sent for them; a role Planfix does not have is refused.
	if _, err := f.client.AddTaskComment(ctx, task, planfix.NewComment{Description: "plain", Recipients: &planfix.Recipients{}}); err != nil {
		t.Fatal(err)
	}
	checkRequest(t, f.last(t), "POST", fmt.Sprintf("/rest/task/%d/comments/", task), nil, `{"description":"plain"}`)
	_, err = f.client.AddTaskComment(ctx, task, planfix.NewComment{Description: "x", Recipients: &planfix.Recipients{Roles: []string{"boss"}}})
	var pe *planfix.Error
	if !errors.As(err, &pe) || pe.Kind != planfix.KindBadRequest || pe.Retryable {
		t.Errorf("a comment to an unknown role: %v, want a permanent bad request", err)
	}
}
