package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// The checks a deep verify adds (POST /api/v1/integrations/{id}/verify?deep=true), in
// the order they are answered, after those of a plain verify.
const (
	CheckChatraAgent              = "chatra.agent"
	CheckPlanfixContactSearch     = "planfix.contactSearch"
	CheckPlanfixContactCreate     = "planfix.contactCreate"
	CheckPlanfixTaskCreate        = "planfix.taskCreate"
	CheckPlanfixContactAsAssigner = "planfix.contactAsAssigner"
	CheckPlanfixCommentAsContact  = "planfix.commentAsContact"
	CheckPlanfixCommentRead       = "planfix.commentRead"
	CheckPlanfixCompleteTask      = "planfix.completeTask"
	CheckPlanfixSourceObjectID    = "planfix.sourceObjectId"
)

// ProblemUnexpected: Planfix took the call but did not keep what the bridge needs.
const ProblemUnexpected = "unexpected"

// SelfCheckEmail is the email of the test contact a deep verify uses: it finds the one
// an earlier deep verify made, or makes it.
const SelfCheckEmail = "chatrabridge-selfcheck@example.com"

// selfCheckNote says what the test objects are, in their descriptions.
const selfCheckNote = "Made by `chatrabridge integrations verify --deep` to try the calls the chat bridge makes; safe to delete."

// deepChecks runs every call the bridge makes on the customer's own accounts, on a test
// contact (SelfCheckEmail, made once and found again by later runs) and a test task
// that it completes at the end (Planfix's REST API deletes neither tasks nor contacts),
// and appends a check for each to res. It returns what it found out of Planfix; a
// finding it could not make is "". It runs the Planfix calls only when the plain checks
// of the token, the templates and the completed status passed (the test task needs
// them). It never fails: each problem is a failed check.
func (a *admin) deepChecks(ctx context.Context, i *chatrabridge.Integration, res *VerifyResult) postgres.Capabilities {
	res.Checks = append(res.Checks, chatraAgentCheck(i))
	var caps postgres.Capabilities
	deep := []string{CheckPlanfixContactSearch, CheckPlanfixContactCreate, CheckPlanfixTaskCreate, CheckPlanfixContactAsAssigner,
		CheckPlanfixCommentAsContact, CheckPlanfixCommentRead, CheckPlanfixCompleteTask, CheckPlanfixSourceObjectID}
	skip := func(from int, why string) {
		for _, name := range deep[from:] {
			res.Checks = append(res.Checks, VerifyCheck{Name: name, Problem: ProblemSkipped, Message: "not run: " + why})
		}
	}
	for _, c := range res.Checks {
		if strings.HasPrefix(c.Name, "planfix.") && !c.OK {
			skip(0, "the Planfix checks above must pass first (the test task needs the token, the templates and the completed status)")
			return caps
		}
	}
	pf := a.planfixClient(i)
	fail := func(name string, err error) VerifyCheck { return a.planfixFailure(name, i.ID, err) }

	// The test contact: found by its email (as the bridge finds a returning customer),
	// else created from the contact template and looked for again.
	contactID, found, err := findSelfCheckContact(ctx, pf)
	if err != nil {
		res.Checks = append(res.Checks, withMeans(fail(CheckPlanfixContactSearch, err), "the bridge cannot look customers up by email"))
		skip(1, "the contact search failed")
		return caps
	}
	search := VerifyCheck{Name: CheckPlanfixContactSearch, OK: true}
	create := VerifyCheck{Name: CheckPlanfixContactCreate, OK: true}
	if found {
		search.Message = fmt.Sprintf("found the test contact %d (%s) of an earlier deep verify by its email", contactID, SelfCheckEmail)
		create.Message = fmt.Sprintf("not repeated: contact %d, made from the contact template by an earlier deep verify, is used again", contactID)
	} else {
		contactID, err = pf.CreateContact(ctx, planfix.NewContact{
			TemplateID: i.Planfix.ContactTemplateID, SourceObjectID: planfix.SourceObjectID(i.ID, "verify-contact"),
			Name: "Chatrabridge", Lastname: "Self-check (test contact)", Email: SelfCheckEmail, Description: selfCheckNote,
		})
		if err != nil {
			res.Checks = append(res.Checks, VerifyCheck{Name: CheckPlanfixContactSearch, OK: true, Message: "no test contact yet: the search answered"},
				withMeans(fail(CheckPlanfixContactCreate, err), "the bridge cannot create a contact for a new customer"))
			skip(2, "the test contact could not be created")
			return caps
		}
		create.Message = fmt.Sprintf("created the test contact %d from contact template %d", contactID, i.Planfix.ContactTemplateID)
		again, ok, err := findSelfCheckContact(ctx, pf)
		switch {
		case err != nil:
			search = fail(CheckPlanfixContactSearch, err)
		case !ok || again != contactID:
			search.OK, search.Problem = false, ProblemUnexpected
			search.Message = fmt.Sprintf("the search by email did not find contact %d, just created with that email", contactID)
		default:
			search.Message = fmt.Sprintf("found contact %d, just created, by its email", contactID)
		}
	}
	search.Means = "a returning customer who gives the same email gets the same contact"
	if !search.OK {
		search.Means = "the bridge would create a new contact for every chat of a returning customer"
	}
	create.Means = "the bridge can create a contact for a new customer"
	res.Checks = append(res.Checks, search, create)

	// The test task, as CreateTask makes it: the contact as assigner, read back.
	contact := planfix.ContactID(contactID)
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	sid := planfix.SourceObjectID(i.ID, "verify-task", hex.EncodeToString(nonce[:]))
	ref := planfix.RefLine(sid)
	nt := planfix.NewTask{
		TemplateID: i.Planfix.TaskTemplateID, SourceObjectID: sid, Assigner: contact,
		Name:        "Chatrabridge self-check " + time.Now().UTC().Format("2006-01-02 15:04:05 UTC"),
		Description: planfix.TextToHTML(selfCheckNote + "\n\n" + ref),
	}
	for _, u := range i.Planfix.AssigneeUserIDs {
		nt.Assignees = append(nt.Assignees, planfix.UserID(u))
	}
	taskID, err := pf.CreateTask(ctx, nt)
	var refusal *planfix.Error
	if pe, ok := planfix.AsError(err); ok && pe.Kind == planfix.KindBadRequest {
		// Whether the refusal is about the contact as assigner is told by the same create
		// with the contact as counterparty, never by the refusal's wording.
		refusal = pe
		nt.Assigner, nt.Counterparty = "", contact
		taskID, err = pf.CreateTask(ctx, nt)
	}
	if err != nil {
		c := withMeans(fail(CheckPlanfixTaskCreate, err), "the bridge cannot create a chat's task")
		if refusal != nil {
			c.Message = "Planfix refused the task with the contact as assigner (" + refusal.Message + ") and as counterparty: " + c.Message
		}
		res.Checks = append(res.Checks, c)
		skip(3, "the test task could not be created")
		return caps
	}
	t, err := pf.GetTask(ctx, taskID, "id,assigner,counterparty,sourceObjectId,description")
	if err != nil {
		res.Checks = append(res.Checks, withMeans(fail(CheckPlanfixTaskCreate, err), "the bridge cannot read a task back"))
		res.Checks = append(res.Checks, skipped(CheckPlanfixContactAsAssigner, CheckPlanfixCommentAsContact, CheckPlanfixCommentRead)...)
		res.Checks = append(res.Checks, a.completeTestTask(ctx, pf, i, taskID), VerifyCheck{Name: CheckPlanfixSourceObjectID, Problem: ProblemSkipped, Message: "not run: the test task could not be read back"})
		return caps
	}
	res.Checks = append(res.Checks, VerifyCheck{Name: CheckPlanfixTaskCreate, OK: true,
		Message: fmt.Sprintf("created the test task %d from task template %d and read it back", taskID, i.Planfix.TaskTemplateID),
		Means:   "the bridge can create a chat's task"})
	role := VerifyCheck{Name: CheckPlanfixContactAsAssigner, OK: true}
	switch {
	case refusal != nil:
		caps.ContactRole = postgres.ContactRoleCounterparty
		role.Message = fmt.Sprintf("Planfix refused contact %d as a task's assigner (HTTP %d, code %d) and took it as counterparty", contactID, refusal.HTTPStatus, refusal.Code)
	case t.Assigner != nil && t.Assigner.ID.Same(contact):
		caps.ContactRole = postgres.ContactRoleAssigner
		role.Message = fmt.Sprintf("Planfix kept contact %d as the task's assigner", contactID)
	default:
		kept := "no one"
		if t.Assigner != nil {
			kept = string(t.Assigner.ID)
		}
		role.Message = fmt.Sprintf("Planfix took the contact as assigner but kept %s instead", kept)
		if t.Counterparty == nil || !t.Counterparty.ID.Same(contact) {
			if _, err := pf.UpdateTask(ctx, taskID, planfix.TaskUpdate{Counterparty: contact}); err != nil {
				role = fail(CheckPlanfixContactAsAssigner, err)
				role.Message = "Planfix kept " + kept + " as assigner, and setting the contact as counterparty failed: " + role.Message
				break
			}
		}
		caps.ContactRole = postgres.ContactRoleCounterparty
		role.Message += "; the contact was set as counterparty"
	}
	switch caps.ContactRole {
	case postgres.ContactRoleAssigner:
		role.Means = "chat tasks name the customer as assigner; no task is read back to find out"
	case postgres.ContactRoleCounterparty:
		role.Means = "chat tasks name the customer as counterparty (the assigner is the token's employee); a contact's active task is looked for by counterparty"
	default:
		role.Means = "unknown: the bridge finds it out on the first chat's task"
	}
	res.Checks = append(res.Checks, role)

	// A customer's message as a comment by the contact, read back as a reply is read.
	csid := planfix.SourceObjectID(i.ID, "verify-comment", sid)
	commentText := "Test comment as the customer's contact (chatrabridge self-check)."
	commentID, err := pf.AddTaskComment(ctx, taskID, planfix.NewComment{Description: planfix.TextToHTML(commentText), Owner: contact, SourceObjectID: csid})
	var (
		commentSID    string
		commentListed bool // the comment was found in the task's comment list
	)
	if err != nil {
		res.Checks = append(res.Checks, withMeans(fail(CheckPlanfixCommentAsContact, err), "customers' messages cannot become task comments"),
			VerifyCheck{Name: CheckPlanfixCommentRead, Problem: ProblemSkipped, Message: "not run: no test comment"})
	} else {
		res.Checks = append(res.Checks, VerifyCheck{Name: CheckPlanfixCommentAsContact, OK: true,
			Message: fmt.Sprintf("added comment %d to the test task as contact %d", commentID, contactID),
			Means:   "each chat message becomes a task comment by the customer's contact"})
		read := VerifyCheck{Name: CheckPlanfixCommentRead, OK: true, Means: "the bridge can read an employee's comment to send it to the chat"}
		cm, err := pf.GetComment(ctx, commentID)
		switch {
		case err != nil:
			read = withMeans(fail(CheckPlanfixCommentRead, err), "employees' replies cannot be read, so none reaches the chat")
		case cm.Owner == nil || !cm.Owner.ID.Same(contact):
			owner := "no one"
			if cm.Owner != nil {
				owner = string(cm.Owner.ID)
			}
			read.OK, read.Problem = false, ProblemUnexpected
			read.Message = fmt.Sprintf("read comment %d back, but its author is %s, not contact %d", commentID, owner, contactID)
			read.Means = "customers' messages would show as written by " + owner
		default:
			read.Message = fmt.Sprintf("read comment %d back: its author is contact %d", commentID, contactID)
		}
		if err == nil {
			// The sourceObjectId of a comment comes only with the task's comment list.
			for c, lerr := range pf.TaskComments(ctx, taskID, planfix.CommentQuery{Fields: "id,sourceObjectId"}) {
				if lerr != nil {
					break // the sourceObjectId check then goes by the task alone
				}
				if c.ID == commentID {
					commentSID, commentListed = c.SourceObjectID, true
					break
				}
			}
		}
		res.Checks = append(res.Checks, read)
	}

	res.Checks = append(res.Checks, a.completeTestTask(ctx, pf, i, taskID))

	// sourceObjectId: sent with the task and the comment, read back.
	src := VerifyCheck{Name: CheckPlanfixSourceObjectID, OK: true}
	refKept := strings.Contains(strings.ToLower(t.Description), strings.ToLower(ref))
	taskKept, commentKept := strings.EqualFold(t.SourceObjectID, sid), strings.EqualFold(commentSID, csid)
	what := "the task and the comment"
	if !commentListed {
		what, commentKept, commentSID = "the task (the comment was not read back)", taskKept, t.SourceObjectID
	}
	switch {
	case taskKept && commentKept:
		caps.SourceIDs = postgres.SourceIDsReturned
		src.Message = "Planfix returned the sourceObjectId sent with " + what
		src.Means = "a retried create whose answer was lost finds what it made by its sourceObjectId"
	case t.SourceObjectID == "" && commentSID == "" && refKept:
		caps.SourceIDs = postgres.SourceIDsNotReturned
		src.Message = "Planfix returned no sourceObjectId for " + what + "; the reference line in the task's description came back"
		src.Means = "a retried task create finds its task by the reference in the description; a retried comment whose answer was lost may be added twice (never lost), and a retry does not list the task's comments for it"
	case !refKept:
		caps.SourceIDs = postgres.SourceIDsNotReturned
		src.OK, src.Problem = false, ProblemUnexpected
		src.Message = fmt.Sprintf("Planfix returned sourceObjectId %q for the task (sent %q) and did not keep the reference line in its description", t.SourceObjectID, sid)
		src.Means = "a retried task create whose answer was lost could make a second task"
	default:
		caps.SourceIDs = postgres.SourceIDsNotReturned
		src.OK, src.Problem = false, ProblemUnexpected
		src.Message = fmt.Sprintf("Planfix returned other sourceObjectIds than those sent (task %q, comment %q)", t.SourceObjectID, commentSID)
		src.Means = "the bridge does not rely on sourceObjectId: a retried task create goes by the reference in the description"
	}
	res.Checks = append(res.Checks, src)
	return caps
}

// completeTestTask sets the test task to the integration's completed status and reads
// it back, as CompleteTask does when a chat ends.
func (a *admin) completeTestTask(ctx context.Context, pf *planfix.Client, i *chatrabridge.Integration, taskID int64) VerifyCheck {
	means := "a chat's task is completed when the chat ends"
	if _, err := pf.UpdateTask(ctx, taskID, planfix.TaskUpdate{StatusID: i.Planfix.CompletedStatusID}); err != nil {
		return withMeans(a.planfixFailure(CheckPlanfixCompleteTask, i.ID, err), "chats' tasks would stay active after the chat ends")
	}
	t, err := pf.GetTask(ctx, taskID, "id,status")
	if err != nil {
		return withMeans(a.planfixFailure(CheckPlanfixCompleteTask, i.ID, err), means+", but the bridge could not read the status back")
	}
	if t.Status == nil || t.Status.ID != i.Planfix.CompletedStatusID || t.Status.IsActive {
		got := "none"
		if t.Status != nil {
			got = fmt.Sprintf("%d (active: %t)", t.Status.ID, t.Status.IsActive)
		}
		return VerifyCheck{Name: CheckPlanfixCompleteTask, Problem: ProblemUnexpected,
			Message: fmt.Sprintf("set task %d to status %d, but it reads back as status %s", taskID, i.Planfix.CompletedStatusID, got),
			Means:   "chats' tasks may stay active after the chat ends"}
	}
	return VerifyCheck{Name: CheckPlanfixCompleteTask, OK: true, Means: means,
		Message: fmt.Sprintf("the test task %d is in the completed status %d (inactive)", taskID, i.Planfix.CompletedStatusID)}
}

// chatraAgentCheck names the Chatra agent the bridge writes replies as. Chatra's API has
// no call that lists agents, so nothing is sent: a test message would reach a real
// visitor.
func chatraAgentCheck(i *chatrabridge.Integration) VerifyCheck {
	c := VerifyCheck{Name: CheckChatraAgent, OK: true}
	employees := ""
	if i.Options.SendAsEmployee {
		employees = "; an employee with an email in Planfix writes as the Chatra agent with that email (sendAsEmployee)"
	}
	switch ch := i.Chatra; {
	case ch.AgentID != "":
		c.Message = "replies go as Chatra agent " + ch.AgentID + " (chatra.agentId)" + employees
		c.Means = "Chatra may not tag these messages with receivedFrom; the bridge recognises its replies coming back by the message ids and texts Chatra answered with"
	case ch.AgentEmail != "":
		name := ch.AgentName
		if name == "" {
			name = i.Name
		}
		c.Message = fmt.Sprintf("replies go as the Chatra agent with email %s, named %q (chatra.agentEmail)%s", ch.AgentEmail, name, employees)
		c.Means = "Chatra matches the email to an agent's account, or shows a placeholder agent with that name; the replies carry the bridge's receivedFrom tag"
	default:
		c.OK, c.Problem = false, ProblemBadSettings
		c.Message = "no Chatra user to send replies as: set chatra.agentId or chatra.agentEmail"
		c.Means = "employees' replies cannot reach the chat"
	}
	return c
}

// findSelfCheckContact returns the test contact of a deep verify, found by its email.
func findSelfCheckContact(ctx context.Context, pf *planfix.Client) (int64, bool, error) {
	list, err := pf.FindContactsByEmail(ctx, SelfCheckEmail)
	if err != nil {
		return 0, false, err
	}
	var best int64
	for _, c := range list {
		if !c.IsDeleted && strings.EqualFold(strings.TrimSpace(c.Email), SelfCheckEmail) && (best == 0 || c.ID < best) {
			best = c.ID
		}
	}
	return best, best > 0, nil
}

func skipped(names ...string) []VerifyCheck {
	out := make([]VerifyCheck, len(names))
	for n, name := range names {
		out[n] = VerifyCheck{Name: name, Problem: ProblemSkipped, Message: "not run: the test task could not be read back"}
	}
	return out
}

func withMeans(c VerifyCheck, means string) VerifyCheck {
	c.Means = means
	return c
}
