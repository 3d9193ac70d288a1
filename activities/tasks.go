package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// maxPagesInDescription bounds the pages visited listed in a task's description.
const maxPagesInDescription = 20

// FindActiveTask returns the contact's active chat task other than ExcludeTaskID: first
// among the tasks the contact's conversations used (the store, newest first, each checked
// in Planfix), then among the tasks of the chat task template whose assigner is the
// contact (Planfix's list, the newest active one). Found is false when there is none.
// It only reads.
func (a *Activities) FindActiveTask(ctx context.Context, in FindActiveTaskInput) (FindActiveTaskResult, error) {
	ctx = in.priority(ctx, planfix.ClassSetup)
	if in.ContactID <= 0 {
		return FindActiveTaskResult{}, invalidInput("find active task: contactId is required")
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return FindActiveTaskResult{}, err
	}
	defer heartbeat(ctx)()
	pf := a.planfix(i)
	ids, err := a.DB.ContactTaskIDs(ctx, in.IntegrationID, in.ContactID, 5)
	if err != nil {
		return FindActiveTaskResult{}, fail(fmt.Errorf("tasks of contact %d: %w", in.ContactID, err))
	}
	for _, id := range ids {
		if id == in.ExcludeTaskID {
			continue
		}
		t, err := pf.GetTask(ctx, id, "id,status,isDeleted")
		if planfix.IsNotFound(err) {
			continue // deleted in Planfix
		}
		if err != nil {
			return FindActiveTaskResult{}, fail(err)
		}
		if t.IsActive() {
			return FindActiveTaskResult{TaskID: t.ID, Found: true}, nil
		}
	}
	tasks, err := pf.ListTasks(ctx, planfix.TaskQuery{Filters: contactTaskFilters(i, in.ContactID), Fields: "id,status,isDeleted"})
	if err != nil {
		return FindActiveTaskResult{}, fail(err)
	}
	var best int64
	for _, t := range tasks {
		if t.ID != in.ExcludeTaskID && t.IsActive() && t.ID > best {
			best = t.ID
		}
	}
	return FindActiveTaskResult{TaskID: best, Found: best > 0}, nil
}

func contactTaskFilters(i *chatrabridge.Integration, contactID int64) []planfix.Filter {
	f := []planfix.Filter{{Type: planfix.TaskFilterAssigner, Operator: planfix.OpEqual, Value: string(planfix.ContactID(contactID))}}
	if i.Planfix.TaskTemplateID > 0 {
		f = append(f, planfix.Filter{Type: planfix.TaskFilterTemplate, Operator: planfix.OpEqual, Value: i.Planfix.TaskTemplateID})
	}
	return f
}

// CreateTask creates the task of a chat episode from the integration's task template:
// named after the customer and the site, the customer's contact as assigner, the
// integration's extra employees as assignees, the visitor details in the description.
//
// Its sourceObjectId derives from the integration, the chat and the episode; a retried
// attempt first looks among the contact's tasks for one created with it. Should Planfix
// refuse a contact as assigner (unverified in its documentation), the contact is set as
// the task's counterparty instead; a task made that way is not found again by a retry.
//
// Should Planfix refuse the contact as counterparty too, CreateTask asks Planfix whether
// the contact still exists (one request, on this failure only): when it does not (the
// store mapped the visitor to a contact an employee has since deleted or merged), the
// store's mappings to it are forgotten and the error is ErrContactGone, which tells the
// workflow to set the contact up again. Otherwise Planfix's refusal is returned.
func (a *Activities) CreateTask(ctx context.Context, in CreateTaskInput) (CreateTaskResult, error) {
	ctx = in.priority(ctx, planfix.ClassSetup)
	if in.ContactID <= 0 || in.Episode < 1 || in.ChatID == "" {
		return CreateTaskResult{}, invalidInput("create task: chatId, contactId and episode (from 1) are required")
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return CreateTaskResult{}, err
	}
	defer heartbeat(ctx)()
	pf := a.planfix(i)
	sid := planfix.SourceObjectID(in.IntegrationID, "task", in.ChatID, episodeKey(in.EpisodeKey, in.Episode))
	// Made before? The store knows once a create has answered (also after a reset of the
	// workflow, whose create is a first attempt again); Planfix is asked only on a retry,
	// whose earlier attempt may have made the task without its answer arriving.
	key := "task:" + sid
	if r, ok, err := a.effect(ctx, in.IntegrationID, key); err != nil || ok {
		id, _ := strconv.ParseInt(r, 10, 64)
		return CreateTaskResult{TaskID: id, Existing: ok}, err
	}
	if retried(ctx) {
		t, ok, err := pf.FindTask(ctx, planfix.TaskQuery{Filters: contactTaskFilters(i, in.ContactID)}, func(t planfix.Task) bool {
			return madeWith(t.SourceObjectID, t.Description, sid)
		})
		if err != nil {
			return CreateTaskResult{}, fail(err)
		}
		if ok {
			a.recordEffect(ctx, in.IntegrationID, key, strconv.FormatInt(t.ID, 10))
			return CreateTaskResult{TaskID: t.ID, Existing: true}, nil
		}
	}
	nt := planfix.NewTask{
		TemplateID:     i.Planfix.TaskTemplateID,
		SourceObjectID: sid,
		Name:           TaskName(customerName(in.Visitor, in.ClientID), i.Name),
		Description:    taskDescription(in, sid),
		Assigner:       planfix.ContactID(in.ContactID),
	}
	for _, u := range i.Planfix.AssigneeUserIDs {
		nt.Assignees = append(nt.Assignees, planfix.UserID(u))
	}
	id, err := pf.CreateTask(ctx, nt)
	if pe, ok := asPlanfix(err); ok && pe.Kind == planfix.KindBadRequest && strings.EqualFold(pe.Param, "assigner") {
		a.Logger.Warn("planfix refused the contact as assigner; setting it as counterparty", "integration", in.IntegrationID, "contact", in.ContactID)
		nt.Counterparty, nt.Assigner = nt.Assigner, ""
		id, err = pf.CreateTask(ctx, nt)
		if pe, ok := asPlanfix(err); ok && pe.Kind == planfix.KindBadRequest && strings.EqualFold(pe.Param, "counterparty") {
			if goneErr := a.checkContactGone(ctx, pf, in.IntegrationID, in.ContactID, err); goneErr != nil {
				return CreateTaskResult{}, goneErr
			}
		}
	}
	if err != nil {
		return CreateTaskResult{}, fail(err)
	}
	a.recordEffect(ctx, in.IntegrationID, key, strconv.FormatInt(id, 10))
	return CreateTaskResult{TaskID: id}, nil
}

// madeWith reports whether an object Planfix returned is the one a create with
// sourceObjectId sid made: by its sourceObjectId, or, when Planfix returned none (its
// documentation leaves open whether it keeps one), by the reference to sid that the
// bridge writes into the description of what it creates (refLine).
func madeWith(sourceObjectID, description, sid string) bool {
	if sourceObjectID != "" {
		return strings.EqualFold(sourceObjectID, sid)
	}
	return strings.Contains(strings.ToLower(description), strings.ToLower(sid))
}

// refLine names sid in the description of a task or contact the bridge creates, so that
// a retried create finds it whatever Planfix does with sourceObjectId (madeWith).
func refLine(sid string) string { return "chatrabridge ref " + sid }

// checkContactGone is called once Planfix has refused contactID as the task's assigner
// and as its counterparty (refused is the last refusal). It returns nil when Planfix
// still has the contact (the refusal stands); an ErrContactGone error, after forgetting
// the store's mappings to the contact, when Planfix does not have it or has it deleted;
// and the failure of the check or of the store otherwise (retried when transient).
func (a *Activities) checkContactGone(ctx context.Context, pf *planfix.Client, integrationID string, contactID int64, refused error) error {
	c, err := pf.GetContact(ctx, contactID, "id,isDeleted")
	switch {
	case planfix.IsNotFound(err):
	case err != nil:
		return fail(err)
	case c.IsDeleted:
	default:
		return nil
	}
	n, err := a.DB.ForgetContact(ctx, integrationID, contactID)
	if err != nil {
		return fail(fmt.Errorf("forget contact %d, which planfix no longer has: %w", contactID, err))
	}
	a.Logger.Warn("planfix no longer has the contact; forgot the visitors mapped to it", "integration", integrationID, "contact", contactID, "visitors", n)
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("planfix no longer has contact %d (deleted or merged) and refused it as the task's assigner and counterparty: the store forgot it (%d visitor mapping(s)), so the contact is set up again",
			contactID, n),
		ErrContactGone, refused)
}

// TaskName is the name of a chat's task: "Chat with Ivan on Example shop".
func TaskName(customer, site string) string {
	customer = strings.Join(strings.Fields(customer), " ")
	site = strings.Join(strings.Fields(site), " ")
	if site == "" {
		return "Chat with " + customer
	}
	return "Chat with " + customer + " on " + site
}

// taskDescription lists what is known of the visitor, as HTML (each value escaped, one
// per line), and ends with the chat, the visitor and the create's reference (refLine).
func taskDescription(in CreateTaskInput, sid string) string {
	v := in.Visitor
	var lines []string
	add := func(label, value string) {
		if value = strings.TrimSpace(value); value != "" {
			lines = append(lines, label+": "+value)
		}
	}
	add("Customer", v.Name)
	add("Email", v.Email)
	add("Phone", v.Phone)
	location := strings.Trim(strings.TrimSpace(v.City)+", "+strings.TrimSpace(v.Country), ", ")
	add("Location", location)
	add("Source", v.Source)
	add("Device", v.Device)
	add("OS", v.OS)
	add("Browser", v.Browser)
	add("IP", v.IP)
	if len(v.Pages) > 0 {
		lines = append(lines, "Pages visited:")
		for n, p := range v.Pages {
			if n == maxPagesInDescription {
				lines = append(lines, fmt.Sprintf("- … and %d more", len(v.Pages)-n))
				break
			}
			lines = append(lines, "- "+strings.TrimSpace(p))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(v.Extra)) {
		add(k, v.Extra[k])
	}
	lines = append(lines, "", fmt.Sprintf("Chatra chat %s, visitor %s (%s).", in.ChatID, in.ClientID, refLine(sid)))
	return planfix.TextToHTML(strings.Join(lines, "\n"))
}

// CompleteTask sets the task to the integration's completed status (resolved from the
// task's process when the integration leaves it unset: the inactive status named like
// "completed", else the first inactive one). A task an employee has already moved to an
// inactive status is left as it is. It is idempotent.
func (a *Activities) CompleteTask(ctx context.Context, in CompleteTaskInput) (CompleteTaskResult, error) {
	ctx = in.priority(ctx, planfix.ClassCompletion)
	if in.TaskID <= 0 {
		return CompleteTaskResult{}, invalidInput("complete task: taskId is required")
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return CompleteTaskResult{}, err
	}
	defer heartbeat(ctx)()
	pf := a.planfix(i)
	t, err := pf.GetTask(ctx, in.TaskID, "id,status,processId,isDeleted")
	if err != nil {
		return CompleteTaskResult{}, fail(err)
	}
	if t.Status != nil && !t.Status.IsActive {
		return CompleteTaskResult{StatusID: t.Status.ID, AlreadyInactive: true}, nil
	}
	status := i.Planfix.CompletedStatusID
	if status <= 0 {
		if t.ProcessID <= 0 {
			return CompleteTaskResult{}, settingsError("task %d has no process to find a completed status in: set planfix.completedStatusId in the integration", in.TaskID)
		}
		statuses, err := pf.ListProcessStatuses(ctx, t.ProcessID)
		if err != nil {
			return CompleteTaskResult{}, fail(err)
		}
		if status = completedStatus(statuses); status == 0 {
			return CompleteTaskResult{}, settingsError("the process of task %d has no inactive status: set planfix.completedStatusId in the integration", in.TaskID)
		}
	}
	if _, err := pf.UpdateTask(ctx, in.TaskID, planfix.TaskUpdate{StatusID: status}); err != nil {
		return CompleteTaskResult{}, fail(err)
	}
	return CompleteTaskResult{StatusID: status}, nil
}

// completedStatus picks the status that completes a task: an inactive status whose name
// says so, else the first inactive one, else 0.
func completedStatus(statuses []planfix.Status) int64 {
	var first int64
	for _, s := range statuses {
		if s.IsActive {
			continue
		}
		name := strings.ToLower(s.Name)
		for _, w := range []string{"complete", "done", "finish", "завершен", "выполнен"} {
			if strings.Contains(name, w) {
				return s.ID
			}
		}
		if first == 0 {
			first = s.ID
		}
	}
	return first
}
