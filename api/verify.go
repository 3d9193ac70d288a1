package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// VerifyResult is the answer of POST /api/v1/integrations/{id}/verify: each check, ok or
// the problem, and what there is to choose from in Planfix. With ?deep=true it also
// tries every call the bridge makes (deepChecks) and says what it found out.
type VerifyResult struct {
	// OK is true when every check passed.
	OK bool `json:"ok"`
	// Deep is true for a deep verify.
	Deep   bool          `json:"deep,omitempty"`
	Checks []VerifyCheck `json:"checks"`
	// Capabilities are what a deep verify found out of Planfix and stored on the
	// integration (the workflow uses them); "" is a finding it could not make.
	Capabilities *Capabilities `json:"capabilities,omitempty"`
	// TaskTemplates and ContactTemplates are the templates the token's employee sees.
	TaskTemplates    []planfix.Template `json:"taskTemplates"`
	ContactTemplates []planfix.Template `json:"contactTemplates"`
	// Statuses are those of the task template's process (empty when it is unknown).
	Statuses []planfix.Status `json:"statuses"`
}

// Capabilities are what the bridge found out about an integration's Planfix from Planfix
// itself (postgres.Capabilities); "" is unknown.
type Capabilities struct {
	// ContactRole is "assigner" or "counterparty": where a task keeps its contact.
	ContactRole string `json:"contactRole"`
	// SourceIDs is "returned" or "not_returned": whether Planfix returns the
	// sourceObjectId the bridge sends with a create.
	SourceIDs string `json:"sourceObjectIds"`
	// DeepVerifiedAt is when a deep verify last recorded its findings; absent if never.
	DeepVerifiedAt *time.Time `json:"deepVerifiedAt,omitempty"`
}

func capabilitiesOf(c postgres.Capabilities) *Capabilities {
	return &Capabilities{ContactRole: c.ContactRole, SourceIDs: c.SourceIDs, DeepVerifiedAt: c.DeepVerifiedAt}
}

// VerifyCheck is one check of a verify.
type VerifyCheck struct {
	// Name is one of the Check constants.
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Problem says what kind of problem, when not OK: one of the Problem constants.
	Problem string `json:"problem,omitempty"`
	// Message says what was found, or what is wrong and how to fix it.
	Message string `json:"message"`
	// Means says what the finding means for the bridge (the checks of a deep verify).
	Means string `json:"means,omitempty"`
}

// The checks of a verify, in the order they are answered.
const (
	CheckChatraKeys             = "chatra.keys"
	CheckPlanfixToken           = "planfix.token"
	CheckPlanfixTaskTemplate    = "planfix.taskTemplate"
	CheckPlanfixContactTemplate = "planfix.contactTemplate"
	CheckPlanfixCompletedStatus = "planfix.completedStatus"
)

// The problems a check reports.
const (
	ProblemBadKeys           = "bad_keys"            // Chatra refused the API keys
	ProblemBadToken          = "bad_token"           // Planfix refused the token
	ProblemUnpaid            = "unpaid"              // the account has no paid plan
	ProblemForbidden         = "forbidden"           // the keys or token lack the rights
	ProblemUnreachable       = "unreachable"         // no answer, or a server error
	ProblemRateLimited       = "rate_limited"        // over a rate or daily limit; try later
	ProblemBadSettings       = "bad_settings"        // the settings cannot work (URL)
	ProblemUnknownTemplate   = "unknown_template"    // no such template
	ProblemNoCompletedStatus = "no_completed_status" // no usable completed status
	ProblemSkipped           = "skipped"             // not checked, because an earlier check failed
	ProblemError             = "error"               // anything else
)

func (a *admin) verifyIntegration(c echo.Context) error {
	ctx, cancel := withTimeout(c.Request().Context())
	defer cancel()
	id, err := pathID(c)
	if err != nil {
		return err
	}
	deep := false
	if v := c.QueryParam("deep"); v != "" {
		if deep, err = strconv.ParseBool(v); err != nil {
			return chatrabridge.Invalid("deep", "deep is %q; give true or false", v)
		}
	}
	i, err := a.store.Integration(ctx, id)
	if err != nil {
		return err
	}
	var (
		wg          sync.WaitGroup
		chatraCheck VerifyCheck
	)
	wg.Go(func() { chatraCheck = a.checkChatra(ctx, i) })
	res := a.checkPlanfix(ctx, i)
	wg.Wait()
	res.Checks = append([]VerifyCheck{chatraCheck}, res.Checks...)
	if deep {
		caps := a.deepChecks(ctx, i, &res)
		if err := a.db.RecordDeepVerify(ctx, i.ID, caps); err != nil {
			return fmt.Errorf("record what the deep verify found: %w", err)
		}
		if caps, err = a.db.Capabilities(ctx, i.ID); err != nil {
			return fmt.Errorf("read the integration's capabilities: %w", err)
		}
		res.Deep, res.Capabilities = true, capabilitiesOf(caps)
	}
	res.OK = true
	for _, ch := range res.Checks {
		res.OK = res.OK && ch.OK
	}
	a.logger.Info("integration verified", "id", i.ID, "ok", res.OK, "deep", deep)
	return c.JSON(http.StatusOK, res)
}

// checkChatra reads a visitor that does not exist: Chatra has no ping, and a 404 for it
// means the keys were accepted.
func (a *admin) checkChatra(ctx context.Context, i *chatrabridge.Integration) VerifyCheck {
	cl := chatra.NewClient(chatra.Config{APIURL: i.Chatra.APIURL, PublicKey: i.Chatra.PublicKey, SecretKey: i.Chatra.SecretKey.Reveal()}, a.http)
	var b [8]byte
	_, _ = rand.Read(b[:])
	_, err := cl.GetClient(ctx, "chatrabridge-verify-"+hex.EncodeToString(b[:]))
	check := VerifyCheck{Name: CheckChatraKeys}
	var (
		ce *chatra.Error
		ie *chatra.InputError
	)
	switch {
	case err == nil, errors.As(err, &ce) && ce.Kind == chatra.KindNotFound:
		check.OK, check.Message = true, "Chatra accepted the API keys"
	case errors.As(err, &ce):
		check.Message = ce.Message
		switch ce.Kind {
		case chatra.KindUnauthorized:
			check.Problem = ProblemBadKeys
		case chatra.KindPaymentRequired:
			check.Problem = ProblemUnpaid
		case chatra.KindForbidden:
			check.Problem = ProblemForbidden
		case chatra.KindRateLimited:
			check.Problem = ProblemRateLimited
		case chatra.KindUnavailable, chatra.KindNetwork, chatra.KindCanceled:
			check.Problem = ProblemUnreachable
		default:
			check.Problem = ProblemError
		}
	case errors.As(err, &ie):
		check.Problem, check.Message = ProblemBadSettings, ie.Message
	default:
		a.logger.Warn("verify: chatra check failed", "id", i.ID, "error", err)
		check.Problem, check.Message = ProblemError, "the check could not run"
	}
	return check
}

// checkPlanfix runs the Planfix checks in order; after a failed token check the others
// are skipped. The answers' lists are never nil.
func (a *admin) checkPlanfix(ctx context.Context, i *chatrabridge.Integration) VerifyResult {
	res := VerifyResult{TaskTemplates: []planfix.Template{}, ContactTemplates: []planfix.Template{}, Statuses: []planfix.Status{}}
	pf := a.planfixClient(i)
	token := VerifyCheck{Name: CheckPlanfixToken, OK: true, Message: "Planfix accepted the token"}
	if err := pf.Ping(ctx); err != nil {
		token = a.planfixFailure(CheckPlanfixToken, i.ID, err)
	}
	res.Checks = append(res.Checks, token)
	if !token.OK {
		for _, name := range []string{CheckPlanfixTaskTemplate, CheckPlanfixContactTemplate, CheckPlanfixCompletedStatus} {
			res.Checks = append(res.Checks, VerifyCheck{Name: name, Problem: ProblemSkipped, Message: "not checked: the Planfix token check failed"})
		}
		return res
	}

	// Task template.
	var taskTemplate *planfix.Template
	taskCheck := VerifyCheck{Name: CheckPlanfixTaskTemplate}
	if list, err := pf.ListTaskTemplates(ctx); err != nil {
		taskCheck = a.planfixFailure(CheckPlanfixTaskTemplate, i.ID, err)
	} else {
		res.TaskTemplates = list
		if t := findTemplate(list, i.Planfix.TaskTemplateID); t != nil {
			taskTemplate = t
			taskCheck.OK, taskCheck.Message = true, fmt.Sprintf("task template %d %q", t.ID, t.Name)
		} else {
			taskCheck.Problem = ProblemUnknownTemplate
			taskCheck.Message = fmt.Sprintf("Planfix has no task template %d that the token's employee can see; choose one of %s", i.Planfix.TaskTemplateID, templateChoices(list))
		}
	}

	// Contact template.
	contactCheck := VerifyCheck{Name: CheckPlanfixContactTemplate}
	if list, err := pf.ListContactTemplates(ctx); err != nil {
		contactCheck = a.planfixFailure(CheckPlanfixContactTemplate, i.ID, err)
	} else {
		res.ContactTemplates = list
		if t := findTemplate(list, i.Planfix.ContactTemplateID); t != nil {
			contactCheck.OK, contactCheck.Message = true, fmt.Sprintf("contact template %d %q", t.ID, t.Name)
		} else {
			contactCheck.Problem = ProblemUnknownTemplate
			contactCheck.Message = fmt.Sprintf("Planfix has no contact template %d that the token's employee can see; choose one of %s", i.Planfix.ContactTemplateID, templateChoices(list))
		}
	}

	// Completed status, among the statuses of the task template's process.
	statusCheck := VerifyCheck{Name: CheckPlanfixCompletedStatus}
	switch {
	case taskTemplate == nil:
		statusCheck.Problem, statusCheck.Message = ProblemSkipped, "not checked: the task template was not found"
	default:
		statuses, where, err := processStatuses(ctx, pf, *taskTemplate)
		if err != nil {
			statusCheck = a.planfixFailure(CheckPlanfixCompletedStatus, i.ID, err)
			break
		}
		res.Statuses = statuses
		want := i.Planfix.CompletedStatusID
		st := findStatus(statuses, want)
		switch {
		case want == 0:
			statusCheck.Problem = ProblemNoCompletedStatus
			statusCheck.Message = "no completed status is set; " + completedAdvice(statuses, where)
		case st == nil:
			statusCheck.Problem = ProblemNoCompletedStatus
			statusCheck.Message = fmt.Sprintf("status %d is not a status of %s; %s", want, where, completedAdvice(statuses, where))
		case st.IsActive:
			statusCheck.Problem = ProblemNoCompletedStatus
			statusCheck.Message = fmt.Sprintf("status %d %q is active, so a completed chat's task would stay active; %s", st.ID, st.Name, completedAdvice(statuses, where))
		default:
			statusCheck.OK, statusCheck.Message = true, fmt.Sprintf("completed status %d %q", st.ID, st.Name)
		}
	}
	res.Checks = append(res.Checks, taskCheck, contactCheck, statusCheck)
	return res
}

// planfixFailure turns a failed Planfix call into a failed check. The message of a
// *planfix.Error never contains the token; anything else is logged and reported vaguely.
func (a *admin) planfixFailure(name, integrationID string, err error) VerifyCheck {
	check := VerifyCheck{Name: name, Problem: ProblemError}
	var pe *planfix.Error
	if !errors.As(err, &pe) {
		a.logger.Warn("verify: planfix check failed", "id", integrationID, "check", name, "error", err)
		check.Message = "the check could not run: " + chatrabridge.ErrorMessage(err)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			check.Problem, check.Message = ProblemUnreachable, "Planfix did not answer in time"
		}
		return check
	}
	check.Message = pe.Message
	switch pe.Kind {
	case planfix.KindUnauthorized:
		check.Problem = ProblemBadToken
	case planfix.KindUnpaid:
		check.Problem = ProblemUnpaid
	case planfix.KindForbidden:
		check.Problem = ProblemForbidden
	case planfix.KindDailyLimit:
		check.Problem = ProblemRateLimited
	case planfix.KindNetwork, planfix.KindUnavailable:
		check.Problem = ProblemUnreachable
	case planfix.KindBadRequest:
		check.Problem = ProblemBadSettings
	}
	return check
}

func findTemplate(list []planfix.Template, id int64) *planfix.Template {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

func findStatus(list []planfix.Status, id int64) *planfix.Status {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

// templateChoices lists templates for a message, at most 20.
func templateChoices(list []planfix.Template) string {
	if len(list) == 0 {
		return "none: the token's employee sees no template"
	}
	var b strings.Builder
	for n, t := range list {
		if n == 20 {
			fmt.Fprintf(&b, ", … (%d in all)", len(list))
			break
		}
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %q", t.ID, t.Name)
	}
	return b.String()
}

// planfixLister is what resolving the completed status needs of Planfix.
type planfixLister interface {
	ListTaskTemplates(ctx context.Context) ([]planfix.Template, error)
	ListTaskProcesses(ctx context.Context) ([]planfix.Process, error)
	ListProcessStatuses(ctx context.Context, processID int64) ([]planfix.Status, error)
}

// processStatuses returns the statuses of the task template's process and names the
// process for messages. When Planfix does not say which process the template has, it is
// the only process, or, when there are several, the statuses of all of them.
func processStatuses(ctx context.Context, pf planfixLister, t planfix.Template) ([]planfix.Status, string, error) {
	if t.ProcessID != 0 {
		st, err := pf.ListProcessStatuses(ctx, t.ProcessID)
		return st, "process " + strconv.FormatInt(t.ProcessID, 10) + " (of task template " + strconv.FormatInt(t.ID, 10) + ")", err
	}
	processes, err := pf.ListTaskProcesses(ctx)
	if err != nil {
		return nil, "", err
	}
	var all []planfix.Status
	for _, p := range processes {
		st, err := pf.ListProcessStatuses(ctx, p.ID)
		if err != nil {
			return nil, "", err
		}
		for _, s := range st {
			if findStatus(all, s.ID) == nil {
				all = append(all, s)
			}
		}
	}
	if len(processes) == 1 {
		return all, fmt.Sprintf("process %d %q", processes[0].ID, processes[0].Name), nil
	}
	return all, "any task process (Planfix does not say which process the task template has)", nil
}

// completedAdvice says which status to choose.
func completedAdvice(statuses []planfix.Status, where string) string {
	if s := planfix.CompletedStatus(statuses); s != nil {
		return fmt.Sprintf("set planfix.completedStatusId to %d %q", s.ID, s.Name)
	}
	return "set planfix.completedStatusId to the inactive status a task gets when its chat ends; " + statusChoices(statuses, where)
}

func statusChoices(statuses []planfix.Status, where string) string {
	var inactive []string
	for _, s := range statuses {
		if !s.IsActive {
			inactive = append(inactive, fmt.Sprintf("%d %q", s.ID, s.Name))
		}
	}
	if len(inactive) == 0 {
		return where + " has no inactive status"
	}
	return "the inactive statuses of " + where + ": " + strings.Join(inactive, ", ")
}

// resolveCompletedStatus finds the status a task gets when its chat ends: among the
// statuses of the task template's process, the inactive one named like "Completed"
// ("Завершенная", "Выполненная", "Done", ...). It fails with EINVALID naming
// planfix.taskTemplateId when Planfix has no such template, and planfix.completedStatusId
// with the reason in every other case (no such status, or Planfix refused or did not
// answer), so the admin can set it by hand. Errors that are not Planfix's (the rate
// limiter's store) keep their own code.
func resolveCompletedStatus(ctx context.Context, pf planfixLister, taskTemplateID int64) (int64, error) {
	const field = "planfix.completedStatusId"
	fail := func(err error) (int64, error) {
		var pe *planfix.Error
		if !errors.As(err, &pe) {
			return 0, err
		}
		return 0, &chatrabridge.Error{Code: chatrabridge.EINVALID, Field: field,
			Message: "planfix.completedStatusId was left out and cannot be resolved from Planfix: " + pe.Error() + "; fix that, or set planfix.completedStatusId"}
	}
	templates, err := pf.ListTaskTemplates(ctx)
	if err != nil {
		return fail(err)
	}
	t := findTemplate(templates, taskTemplateID)
	if t == nil {
		return 0, chatrabridge.Invalid("planfix.taskTemplateId", "Planfix has no task template %d that the token's employee can see; choose one of %s", taskTemplateID, templateChoices(templates))
	}
	statuses, where, err := processStatuses(ctx, pf, *t)
	if err != nil {
		return fail(err)
	}
	s := planfix.CompletedStatus(statuses)
	if s == nil {
		return 0, chatrabridge.Invalid(field, "planfix.completedStatusId was left out and %s has no inactive status named like \"Completed\"; set planfix.completedStatusId to the status a task gets when its chat ends (%s)",
			where, statusChoices(statuses, where))
	}
	return s.ID, nil
}
