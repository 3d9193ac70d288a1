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
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// maxPagesInDescription bounds the pages visited listed in a task's description.
const maxPagesInDescription = 20

// FindActiveTask returns the contact's active chat task other than ExcludeTaskID: first
// among the tasks the contact's conversations used (the store, newest first, each checked
// in Planfix), then among the tasks of the chat task template that name the contact as
// the integration's Planfix keeps it (contactTaskFilters: as assigner, or as counterparty
// once the bridge found that Planfix does not keep a contact as assigner), the newest
// active one in Planfix's list. Found is false when there is none. It only reads.
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
	role, err := a.contactRole(ctx, in.IntegrationID)
	if err != nil {
		return FindActiveTaskResult{}, err
	}
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
	tasks, err := pf.ListTasks(ctx, planfix.TaskQuery{Filters: contactTaskFilters(i, role, in.ContactID), Fields: "id,status,isDeleted"})
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

// contactTaskFilters select the tasks of the chat task template that name the contact in
// the role the integration's Planfix keeps it in (role, from contactRole): as
// counterparty when the bridge found that Planfix does not keep a contact as assigner,
// as assigner otherwise (also while unknown: the bridge then creates with the contact as
// assigner). The counterparty filter (type 7) takes the contact's number, as the spec's
// example shows.
func contactTaskFilters(i *chatrabridge.Integration, role string, contactID int64) []planfix.Filter {
	f := []planfix.Filter{{Type: planfix.TaskFilterAssigner, Operator: planfix.OpEqual, Value: string(planfix.ContactID(contactID))}}
	if role == postgres.ContactRoleCounterparty {
		f[0] = planfix.Filter{Type: planfix.TaskFilterCounterparty, Operator: planfix.OpEqual, Value: contactID}
	}
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
// attempt first looks among the contact's tasks for one created with it.
//
// Whether Planfix keeps a contact as a task's assigner is unverified, so it is detected,
// never assumed, and remembered per integration (the store's contact role, which
// `integrations verify --deep` may have found before the first chat): until it is
// known, the task is created with the contact as assigner (and as counterparty) and read
// back once. Should
// Planfix have kept someone else as assigner, the contact is set as the task's
// counterparty; should Planfix refuse the create (any bad request, whatever its wording),
// the same create is made with the contact as counterparty instead, and only its success
// counts as the finding. Once the role is known, creates use it directly and spend no
// request on finding it out again.
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
	role, err := a.contactRole(ctx, in.IntegrationID)
	if err != nil {
		return CreateTaskResult{}, err
	}
	contact := planfix.ContactID(in.ContactID)
	if r, ok, err := a.effect(ctx, in.IntegrationID, key); err != nil || ok {
		id, _ := strconv.ParseInt(r, 10, 64)
		if err == nil && role != postgres.ContactRoleAssigner && id > 0 {
			// An earlier attempt made the task and stopped before returning: it may have
			// made it with the contact as assigner (the role was unknown then) and not read
			// it back, while another chat of the integration since found that Planfix keeps
			// a user instead. So unless a contact is known to stay assigner, the task is
			// read back (one request, on this rare path) and the contact linked.
			if err := a.detectContactRole(ctx, pf, in.IntegrationID, id, contact); err != nil {
				return CreateTaskResult{}, err
			}
		}
		return CreateTaskResult{TaskID: id, Existing: ok}, err
	}
	if retried(ctx) {
		t, found, err := a.findMadeTask(ctx, pf, i, role, in.IntegrationID, in.ContactID, sid)
		if err != nil {
			return CreateTaskResult{}, err
		}
		if found {
			a.recordEffect(ctx, in.IntegrationID, key, strconv.FormatInt(t.ID, 10))
			return CreateTaskResult{TaskID: t.ID, Existing: true}, nil
		}
	}
	nt := planfix.NewTask{
		TemplateID:     i.Planfix.TaskTemplateID,
		SourceObjectID: sid,
		Name:           TaskName(customerName(in.Visitor, in.ClientID), i.Name),
		Description:    taskDescription(in, sid),
	}
	for _, u := range i.Planfix.AssigneeUserIDs {
		nt.Assignees = append(nt.Assignees, planfix.UserID(u))
	}
	switch role {
	case postgres.ContactRoleCounterparty:
		nt.Counterparty = contact
	case postgres.ContactRoleAssigner:
		nt.Assigner = contact
	default:
		// Unknown: as assigner, and as counterparty too, so that a retry whose earlier
		// attempt's answer was lost finds the task by the contact whatever Planfix did
		// with the assigner (findMadeTask), and a user kept instead costs no update.
		nt.Assigner, nt.Counterparty = contact, contact
	}
	id, err := pf.CreateTask(ctx, nt)
	var fellBack bool
	if pe, ok := planfix.AsError(err); ok && pe.Kind == planfix.KindBadRequest && role == "" {
		// Refused with the contact as assigner: whether for the contact's role is told by
		// the same create without it, never by the wording of the refusal.
		a.Logger.Warn("planfix refused a task with the contact as assigner; trying it as counterparty", "integration", in.IntegrationID, "contact", in.ContactID, "error", err)
		nt.Counterparty, nt.Assigner = contact, ""
		id, err = pf.CreateTask(ctx, nt)
		fellBack = err == nil
	}
	if pe, ok := planfix.AsError(err); ok && pe.Kind == planfix.KindBadRequest {
		if goneErr := a.checkContactGone(ctx, pf, in.IntegrationID, in.ContactID, err); goneErr != nil {
			return CreateTaskResult{}, goneErr
		}
	}
	if err != nil {
		return CreateTaskResult{}, fail(err)
	}
	a.recordEffect(ctx, in.IntegrationID, key, strconv.FormatInt(id, 10))
	switch {
	case fellBack:
		a.setContactRole(ctx, in.IntegrationID, postgres.ContactRoleCounterparty)
	case role == "":
		if err := a.detectContactRole(ctx, pf, in.IntegrationID, id, contact); err != nil {
			return CreateTaskResult{}, err
		}
	}
	return CreateTaskResult{TaskID: id}, nil
}

// contactRole returns the recorded role of a contact on the integration's tasks
// (postgres.ContactRoleAssigner or ContactRoleCounterparty), "" while unknown.
func (a *Activities) contactRole(ctx context.Context, integrationID string) (string, error) {
	role, err := a.DB.ContactRole(ctx, integrationID)
	if err != nil {
		return "", fail(fmt.Errorf("contact role of integration %s: %w", integrationID, err))
	}
	return role, nil
}

// setContactRole records a finding. A failure is logged, not returned: the task is made
// and linked, and the finding is made again by the next create.
func (a *Activities) setContactRole(ctx context.Context, integrationID, role string) {
	if err := a.DB.SetContactRole(ctx, integrationID, role); err != nil {
		a.Logger.Warn("record the contact's role on tasks: the next create finds it out again", "integration", integrationID, "role", role, "error", err)
		return
	}
	a.Logger.Info("found how planfix keeps the customer's contact on a task", "integration", integrationID, "role", role)
}

// detectContactRole reads back task id, created with contact as assigner, and records
// what Planfix kept: the contact as assigner, or someone else, in which case the contact
// is set as the task's counterparty first (one update), so that the task is linked to it
// either way. It is idempotent.
func (a *Activities) detectContactRole(ctx context.Context, pf *planfix.Client, integrationID string, id int64, contact planfix.PersonID) error {
	t, err := pf.GetTask(ctx, id, "id,assigner,counterparty")
	if err != nil {
		return fail(err)
	}
	if t.Assigner != nil && t.Assigner.ID.Same(contact) {
		a.setContactRole(ctx, integrationID, postgres.ContactRoleAssigner)
		return nil
	}
	var kept planfix.PersonID
	if t.Assigner != nil {
		kept = t.Assigner.ID
	}
	a.Logger.Warn("planfix kept someone else as the task's assigner; setting the contact as its counterparty", "integration", integrationID, "task", id, "assigner", kept)
	if t.Counterparty == nil || !t.Counterparty.ID.Same(contact) {
		if _, err := pf.UpdateTask(ctx, id, planfix.TaskUpdate{Counterparty: contact}); err != nil {
			return fail(err)
		}
	}
	a.setContactRole(ctx, integrationID, postgres.ContactRoleCounterparty)
	return nil
}

// findMadeTask looks among the contact's tasks for the one an earlier attempt made with
// sourceObjectId sid: in the recorded role, or, while the role is unknown, as assigner
// (how the attempt created it), then as counterparty (where a fallback or a read-back
// put it). A task found while the role is unknown tells the role: no request more.
func (a *Activities) findMadeTask(ctx context.Context, pf *planfix.Client, i *chatrabridge.Integration, role, integrationID string, contactID int64, sid string) (planfix.Task, bool, error) {
	match := func(t planfix.Task) bool { return madeWith(t.SourceObjectID, t.Description, sid) }
	roles := []string{role}
	if role == "" {
		roles = []string{postgres.ContactRoleAssigner, postgres.ContactRoleCounterparty}
	}
	for _, r := range roles {
		t, ok, err := pf.FindTask(ctx, planfix.TaskQuery{Filters: contactTaskFilters(i, r, contactID)}, match)
		if err != nil {
			return planfix.Task{}, false, fail(err)
		}
		if ok {
			if role == "" {
				a.setContactRole(ctx, integrationID, r)
			}
			return t, true, nil
		}
	}
	return planfix.Task{}, false, nil
}

// madeWith reports whether an object Planfix returned is the one a create with
// sourceObjectId sid made: by its sourceObjectId, or, when Planfix returned none (its
// documentation leaves open whether it keeps one), by the reference to sid that the
// bridge writes into the description of what it creates (planfix.RefLine).
func madeWith(sourceObjectID, description, sid string) bool {
	if sourceObjectID != "" {
		return strings.EqualFold(sourceObjectID, sid)
	}
	return strings.Contains(strings.ToLower(description), strings.ToLower(sid))
}

// checkContactGone is called once Planfix has refused a task naming contactID (as its
// assigner or its counterparty, in the role the integration's Planfix keeps contacts in,
// or as both while the role is unknown; refused is the last refusal). It returns nil when Planfix
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
		fmt.Sprintf("planfix no longer has contact %d (deleted or merged) and refused it on the task: the store forgot it (%d visitor mapping(s)), so the contact is set up again",
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
// per line), and ends with the chat, the visitor and the create's reference (planfix.RefLine).
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
	lines = append(lines, "", fmt.Sprintf("Chatra chat %s, visitor %s (%s).", in.ChatID, in.ClientID, planfix.RefLine(sid)))
	return planfix.TextToHTML(strings.Join(lines, "\n"))
}

// CompleteTask sets the task to the integration's completed status (resolved from the
// task's process when the integration leaves it unset: planfix.CompletedStatus). A task an employee has already moved to an
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
		s := planfix.CompletedStatus(statuses)
		if s == nil {
			return CompleteTaskResult{}, settingsError("the process of task %d has no inactive status named like \"Completed\": set planfix.completedStatusId in the integration", in.TaskID)
		}
		status = s.ID
	}
	if _, err := pf.UpdateTask(ctx, in.TaskID, planfix.TaskUpdate{StatusID: status}); err != nil {
		return CompleteTaskResult{}, fail(err)
	}
	return CompleteTaskResult{StatusID: status}, nil
}
