package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// EnsureContact returns the Planfix contact of the chat's visitor, in this order:
//
//  1. the contact with the visitor's email (the store's mapping, else Planfix's contact
//     list): a customer writing from a second device joins the contact of the first;
//  2. the conversation's current contact (in.ContactID), when there is one;
//  3. the contact this Chatra visitor was mapped to before (the store);
//  4. a new contact from the integration's contact template.
//
// It then maps the visitor to the contact in the store, except to a contact found by
// the email the visitor gave (a claim, not a proof) unless the integration trusts email
// claims. Switched is true when the conversation had a contact and the email names
// another one.
//
// A contact found in the store is not checked in Planfix (it would cost a request each
// chat); one Planfix no longer has is forgotten by CreateTask when Planfix refuses it
// (ErrContactGone).
//
// A retried attempt looks for a contact an earlier attempt created (its sourceObjectId
// derives from the integration and the visitor) before creating one.
func (a *Activities) EnsureContact(ctx context.Context, in EnsureContactInput) (EnsureContactResult, error) {
	ctx = in.priority(ctx, planfix.ClassSetup)
	if in.ClientID == "" && in.ChatID == "" {
		return EnsureContactResult{}, invalidInput("ensure contact: clientId or chatId is required")
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return EnsureContactResult{}, err
	}
	defer heartbeat(ctx)()
	pf := a.planfix(i)
	email := normalizeEmail(in.Visitor.Email)

	var res EnsureContactResult
	own := false // the contact found by email is this visitor's own (created for them, or mapped to them)
	if email != "" {
		var id int64
		var err error
		id, own, err = a.contactByEmail(ctx, pf, in, email)
		if err != nil {
			return res, err
		}
		switch {
		case id == 0:
		case id == in.ContactID:
			res = EnsureContactResult{ContactID: id, How: ContactKept}
		default:
			res = EnsureContactResult{ContactID: id, How: ContactByEmail, Switched: in.ContactID != 0}
		}
	}
	if res.ContactID == 0 && in.ContactID != 0 {
		res = EnsureContactResult{ContactID: in.ContactID, How: ContactKept}
	}
	if res.ContactID == 0 && in.ClientID != "" {
		c, err := a.DB.FindContactByClient(ctx, in.IntegrationID, in.ClientID)
		switch chatrabridge.ErrorCode(err) {
		case "":
			res = EnsureContactResult{ContactID: c.PlanfixContactID, How: ContactByClient}
		case chatrabridge.ENOTFOUND:
		default:
			return res, fail(fmt.Errorf("find the contact of visitor %s: %w", in.ClientID, err))
		}
	}
	if res.ContactID == 0 {
		id, err := a.createContact(ctx, pf, i, in, email)
		if err != nil {
			return res, err
		}
		res = EnsureContactResult{ContactID: id, How: ContactCreated}
	}
	// An email the visitor typed is a claim, not a proof: the visitor is not mapped to
	// the contact it names (a mapping lets their later chats, and the replies of the
	// contact's tasks, find them), unless the integration trusts such claims.
	claim := res.How == ContactByEmail && !own && !i.Options.TrustEmailClaims
	res.Claimed = claim
	if in.ClientID != "" && !claim {
		err := a.DB.SaveContact(ctx, postgres.Contact{IntegrationID: in.IntegrationID, ChatraClientID: in.ClientID, Email: email, PlanfixContactID: res.ContactID})
		switch {
		case chatrabridge.ErrorCode(err) == chatrabridge.EINVALID:
			// The store cannot keep what the visitor gave: the contact is found all the
			// same, only not by the mapping next time.
			a.Logger.Warn("map visitor to contact: the store refused the mapping", "integration", in.IntegrationID, "contact", res.ContactID, "error", err)
		case err != nil:
			return res, fail(fmt.Errorf("map visitor %s to contact %d: %w", in.ClientID, res.ContactID, err))
		}
	}
	return res, nil
}

// contactByEmail returns the contact with the email, 0 when there is none: the store's
// mapping first (no Planfix request), then Planfix's contacts, the oldest first. own
// says the contact is the visitor's: mapped to their Chatra visitor, or created for it
// (its sourceObjectId), as a retried EnsureContact finds the contact it created.
func (a *Activities) contactByEmail(ctx context.Context, pf *planfix.Client, in EnsureContactInput, email string) (id int64, own bool, err error) {
	c, err := a.DB.FindContactByEmail(ctx, in.IntegrationID, email)
	switch chatrabridge.ErrorCode(err) {
	case "":
		return c.PlanfixContactID, in.ClientID != "" && c.ChatraClientID == in.ClientID, nil
	case chatrabridge.ENOTFOUND:
	default:
		return 0, false, fail(fmt.Errorf("find contact by email: %w", err))
	}
	found, err := pf.FindContactsByEmail(ctx, email)
	if err != nil {
		return 0, false, fail(err)
	}
	sid := planfix.SourceObjectID(in.IntegrationID, "contact", visitorKey(in))
	var best planfix.Contact
	for _, c := range found {
		if c.IsDeleted || c.IsCompany || c.ID <= 0 {
			continue
		}
		if best.ID == 0 || c.ID < best.ID {
			best = c
		}
	}
	return best.ID, best.ID != 0 && madeWith(best.SourceObjectID, best.Description, sid), nil
}

// visitorKey names the visitor a contact is created for (its sourceObjectId derives
// from it): the Chatra client id, else the chat.
func visitorKey(in EnsureContactInput) string {
	if in.ClientID != "" {
		return in.ClientID
	}
	return "chat:" + in.ChatID
}

func (a *Activities) createContact(ctx context.Context, pf *planfix.Client, i *chatrabridge.Integration, in EnsureContactInput, email string) (int64, error) {
	sid := planfix.SourceObjectID(in.IntegrationID, "contact", visitorKey(in))
	name := customerName(in.Visitor, in.ClientID)
	if retried(ctx) {
		id, err := findContactBySource(ctx, pf, sid, email, name)
		if err != nil || id != 0 {
			return id, err
		}
	}
	nc := planfix.NewContact{
		TemplateID:     i.Planfix.ContactTemplateID,
		SourceObjectID: sid,
		Name:           name,
		Email:          email,
		Description:    planfix.TextToHTML(fmt.Sprintf("Created by chatrabridge from a Chatra chat on %s (visitor %s, %s).", i.Name, in.ClientID, planfix.RefLine(sid))),
	}
	if p := strings.TrimSpace(in.Visitor.Phone); p != "" {
		nc.Phones = []planfix.Phone{{Number: p, Type: planfix.PhoneMobile}}
	}
	id, err := pf.CreateContact(ctx, nc)
	if err != nil {
		return 0, fail(err)
	}
	return id, nil
}

// findContactBySource looks for the contact created with sid (madeWith) among those with
// the email (or, without one, with the name), and returns 0 when there is none.
func findContactBySource(ctx context.Context, pf *planfix.Client, sid, email, name string) (int64, error) {
	var q planfix.ContactQuery
	if email != "" {
		q.Filters = []planfix.Filter{{Type: planfix.ContactFilterEmail, Operator: planfix.OpEqual, Value: email}}
	} else {
		q.Filters = []planfix.Filter{{Type: planfix.ContactFilterNamePart, Operator: planfix.OpEqual, Value: name}}
	}
	for c, err := range pf.Contacts(ctx, q) {
		if err != nil {
			return 0, fail(err)
		}
		if madeWith(c.SourceObjectID, c.Description, sid) && !c.IsDeleted {
			return c.ID, nil
		}
	}
	return 0, nil
}

// UpdateContact writes the name, email and phone a visitor introduced themselves with
// onto their contact card. It is idempotent. Unverified in Planfix's documentation:
// whether a phone replaces the contact's phone list or is added to it.
func (a *Activities) UpdateContact(ctx context.Context, in UpdateContactInput) error {
	ctx = in.priority(ctx, planfix.ClassLow)
	if in.ContactID <= 0 {
		return invalidInput("update contact: contactId is required")
	}
	u := planfix.ContactUpdate{Name: strings.TrimSpace(in.Name), Email: normalizeEmail(in.Email)}
	if p := strings.TrimSpace(in.Phone); p != "" {
		u.Phones = []planfix.Phone{{Number: p, Type: planfix.PhoneMobile}}
	}
	if u.Name == "" && u.Email == "" && len(u.Phones) == 0 {
		return nil
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return err
	}
	defer heartbeat(ctx)()
	pf := a.planfix(i)
	if err := a.skipOptional(pf, "the contact card's update"); err != nil {
		return err
	}
	if _, err := pf.UpdateContact(ctx, in.ContactID, u); err != nil {
		return fail(err)
	}
	return nil
}

// AddContactAction adds the action (comment) "reached out through the chat" with the
// visitor's OS, browser and IP to the contact's profile, once per chat episode.
//
// Planfix's client here cannot list a contact's comments, so the action is recorded in
// the store when added and looked up there first. A crash between Planfix's answer and
// that record adds the action a second time on retry.
func (a *Activities) AddContactAction(ctx context.Context, in AddContactActionInput) (AddContactActionResult, error) {
	ctx = in.priority(ctx, planfix.ClassLow)
	if in.ContactID <= 0 {
		return AddContactActionResult{}, invalidInput("add contact action: contactId is required")
	}
	key := "contact-action:" + in.ChatID + ":" + episodeKey(in.EpisodeKey, in.Episode)
	if r, ok, err := a.effect(ctx, in.IntegrationID, key); err != nil || ok {
		id, _ := strconv.ParseInt(r, 10, 64)
		return AddContactActionResult{CommentID: id, Existing: ok}, err
	}
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return AddContactActionResult{}, err
	}
	defer heartbeat(ctx)()
	lines := []string{fmt.Sprintf("Reached out through the chat on %s.", i.Name)}
	for _, kv := range [][2]string{{"OS", in.Visitor.OS}, {"Browser", in.Visitor.Browser}, {"IP", in.Visitor.IP}, {"Device", in.Visitor.Device}} {
		if v := strings.TrimSpace(kv[1]); v != "" {
			lines = append(lines, kv[0]+": "+v)
		}
	}
	if in.TaskID > 0 {
		lines = append(lines, fmt.Sprintf("Task: %s", TaskURL(i.Planfix.AccountURL, in.TaskID)))
	}
	pf := a.planfix(i)
	if err := a.skipOptional(pf, "the action on the contact's profile"); err != nil {
		return AddContactActionResult{}, err
	}
	id, err := pf.AddContactComment(ctx, in.ContactID, planfix.NewComment{
		Description:    planfix.TextToHTML(strings.Join(lines, "\n")),
		SourceObjectID: planfix.SourceObjectID(in.IntegrationID, "contact-action", in.ChatID, episodeKey(in.EpisodeKey, in.Episode)),
	})
	if err != nil {
		return AddContactActionResult{}, fail(err)
	}
	a.recordEffect(ctx, in.IntegrationID, key, strconv.FormatInt(id, 10))
	return AddContactActionResult{CommentID: id}, nil
}

// effect returns what was recorded for key, and whether anything was.
func (a *Activities) effect(ctx context.Context, integrationID, key string) (string, bool, error) {
	r, err := a.DB.Effect(ctx, integrationID, key)
	switch chatrabridge.ErrorCode(err) {
	case "":
		return r, true, nil
	case chatrabridge.ENOTFOUND:
		return "", false, nil
	}
	return "", false, fail(fmt.Errorf("look up effect %s: %w", key, err))
}

// recordEffect records a side effect that has just succeeded. A failure is logged, not
// returned: the effect is made, and failing the activity now would make its retry repeat
// it for certain, while the record only matters if a retry happens anyway.
func (a *Activities) recordEffect(ctx context.Context, integrationID, key, result string) {
	if err := a.DB.RecordEffect(ctx, integrationID, key, result); err != nil {
		a.Logger.Warn("record effect: a retry of this activity would repeat it", "integration", integrationID, "key", key, "error", err)
	}
}

// normalizeEmail trims an email and lower-cases it, so that mappings and lookups agree.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// customerName is how tasks and contacts name the visitor: the name they gave, else
// their email, else "Chatra visitor" and the start of their id.
func customerName(v Visitor, clientID string) string {
	if n := strings.Join(strings.Fields(v.Name), " "); n != "" {
		return n
	}
	if e := strings.TrimSpace(v.Email); e != "" {
		return e
	}
	short := clientID
	if r := []rune(short); len(r) > 8 {
		short = string(r[:8])
	}
	if short == "" {
		return "Chatra visitor"
	}
	return "Chatra visitor " + short
}

// TaskURL is the link to a task in the Planfix web app (accountURL without "/rest").
func TaskURL(accountURL string, taskID int64) string {
	return strings.TrimRight(accountURL, "/") + "/task/" + strconv.FormatInt(taskID, 10)
}
