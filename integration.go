package chatrabridge

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// Integration is one site's connection between a Chatra account and a Planfix account,
// with the settings of Planfix's own Chatra integration (the seed). Its JSON form is the
// admin API's; the secrets are never serialised (HasSecretKey/HasToken say whether they
// are set).
type Integration struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Chatra    ChatraSettings  `json:"chatra"`
	Planfix   PlanfixSettings `json:"planfix"`
	Options   Options         `json:"options"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// ChatraSettings: the Chatra account and the Chatra user the bridge writes as.
type ChatraSettings struct {
	APIURL       string         `json:"apiUrl"` // default https://app.chatra.io
	PublicKey    string         `json:"publicKey"`
	SecretKey    secrets.String `json:"-"`
	HasSecretKey bool           `json:"hasSecretKey"`
	AgentID      string         `json:"agentId,omitempty"`
	AgentEmail   string         `json:"agentEmail,omitempty"`
	AgentName    string         `json:"agentName,omitempty"` // default: the integration's name
}

// PlanfixSettings: the Planfix account, templates and people.
type PlanfixSettings struct {
	AccountURL        string         `json:"accountUrl"` // https://example.planfix.com; REST base is AccountURL + "/rest"
	Token             secrets.String `json:"-"`
	HasToken          bool           `json:"hasToken"`
	TaskTemplateID    int64          `json:"taskTemplateId"`
	ContactTemplateID int64          `json:"contactTemplateId"`
	CompletedStatusID int64          `json:"completedStatusId,omitempty"` // resolved from Planfix when 0
	AssigneeUserIDs   []int64        `json:"assigneeUserIds"`             // extra employees on each task
	EmployeeUserIDs   []int64        `json:"employeeUserIds"`             // allowed on the channel; empty allows all
}

// RESTURL is the Planfix REST API base.
func (p PlanfixSettings) RESTURL() string { return p.AccountURL + "/rest" }

// Options are the integration's switches and limits.
type Options struct {
	NewTaskOnlyIfNoActiveTask bool     `json:"newTaskOnlyIfNoActiveTask"`
	SendAsEmployee            bool     `json:"sendAsEmployee"`
	LateReplyWindow           Duration `json:"lateReplyWindow"` // default 72h
	IdleTimeout               Duration `json:"idleTimeout"`     // default 24h
	// TrustEmailClaims takes an email a visitor types into the chat as proof of who
	// they are: a chat that joins a contact's task by it receives the task's replies
	// like the chat that created it. Off (the default), such a chat joins the thread
	// but replies stay with the chats of the Chatra visitor who created the task (a
	// site that binds Chatra's client id to its own accounts gives one visitor the
	// same id on every device). Only for a chat open to signed-in customers alone.
	TrustEmailClaims bool `json:"trustEmailClaims"`
	// NewConversationsPerMinute bounds the new chats the Chatra webhook takes in a
	// minute (default DefaultNewConversationsPerMinute); beyond it the webhook answers
	// 429 with Retry-After.
	NewConversationsPerMinute int `json:"newConversationsPerMinute"`
	// MaxHeldReplies bounds the Planfix replies the store holds for tasks without a
	// conversation (default DefaultMaxHeldReplies); beyond it the Planfix webhook
	// refuses to hold one.
	MaxHeldReplies int `json:"maxHeldReplies"`
	// FirstResponse is the first-response target and its reminders (firstresponse.go).
	FirstResponse FirstResponse `json:"firstResponse"`
}

// FillDefaults sets every zero option that has a default to it. Integrations stored
// before an option existed read it as zero; this gives them its default.
func (o *Options) FillDefaults() {
	if o.LateReplyWindow == 0 {
		o.LateReplyWindow = Duration(DefaultLateReplyWindow)
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if o.NewConversationsPerMinute == 0 {
		o.NewConversationsPerMinute = DefaultNewConversationsPerMinute
	}
	if o.MaxHeldReplies == 0 {
		o.MaxHeldReplies = DefaultMaxHeldReplies
	}
}

// Duration is a time.Duration written as a Go duration string ("72h") in JSON.
type Duration time.Duration

// MarshalText writes the duration as "72h0m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return Errorf(EINVALID, "%q is not a duration (use e.g. \"72h\" or \"30m\")", string(b))
	}
	*d = Duration(v)
	return nil
}

// IntegrationService reads integrations with their credentials opened. Implementations
// return ENOTFOUND for an unknown id.
type IntegrationService interface {
	Integration(ctx context.Context, id string) (*Integration, error)
}

// Defaults of an integration's settings.
const (
	DefaultChatraAPIURL    = "https://app.chatra.io"
	DefaultLateReplyWindow = 72 * time.Hour
	DefaultIdleTimeout     = 24 * time.Hour
	// DefaultNewConversationsPerMinute: about what Planfix's one request a second can
	// set up (each new chat costs a handful of requests), with room for a burst.
	DefaultNewConversationsPerMinute = 30
	// DefaultMaxHeldReplies: held replies wait seconds for their task's conversation
	// (minutes in an outage); hundreds mean a misconfigured scenario or an attack.
	DefaultMaxHeldReplies = 500
)

// Limits of an integration's settings.
const (
	MaxNameLength     = 200
	MaxAssignees      = 100
	MaxEmployees      = 1000
	MaxOptionDuration = 366 * 24 * time.Hour
	MaxOptionCount    = 100_000 // newConversationsPerMinute, maxHeldReplies
)

// WebhookTokens are an integration's webhook tokens, in clear. They exist only in the
// answer that creates or rotates them: the store keeps their hashes.
type WebhookTokens struct {
	Chatra  secrets.String
	Planfix secrets.String
}

// IntegrationUpdate is the input of a create or a PATCH: a nil field is not given, and a
// PATCH leaves it as it is. Its JSON form is the admin API's request body, the secrets
// included (secretKey, token); they are secrets.String, so the value never prints.
type IntegrationUpdate struct {
	// ID may be chosen at create (letters, digits, '-' and '_'); it cannot change.
	ID      *string        `json:"id,omitempty"`
	Name    *string        `json:"name,omitempty"`
	Chatra  *ChatraUpdate  `json:"chatra,omitempty"`
	Planfix *PlanfixUpdate `json:"planfix,omitempty"`
	Options *OptionsUpdate `json:"options,omitempty"`
}

// ChatraUpdate holds the given fields of ChatraSettings.
type ChatraUpdate struct {
	APIURL     *string         `json:"apiUrl,omitempty"`
	PublicKey  *string         `json:"publicKey,omitempty"`
	SecretKey  *secrets.String `json:"secretKey,omitempty"`
	AgentID    *string         `json:"agentId,omitempty"`
	AgentEmail *string         `json:"agentEmail,omitempty"`
	AgentName  *string         `json:"agentName,omitempty"`
}

// PlanfixUpdate holds the given fields of PlanfixSettings.
type PlanfixUpdate struct {
	AccountURL        *string         `json:"accountUrl,omitempty"`
	Token             *secrets.String `json:"token,omitempty"`
	TaskTemplateID    *int64          `json:"taskTemplateId,omitempty"`
	ContactTemplateID *int64          `json:"contactTemplateId,omitempty"`
	CompletedStatusID *int64          `json:"completedStatusId,omitempty"`
	AssigneeUserIDs   *[]int64        `json:"assigneeUserIds,omitempty"`
	EmployeeUserIDs   *[]int64        `json:"employeeUserIds,omitempty"`
}

// OptionsUpdate holds the given fields of Options.
type OptionsUpdate struct {
	NewTaskOnlyIfNoActiveTask *bool     `json:"newTaskOnlyIfNoActiveTask,omitempty"`
	SendAsEmployee            *bool     `json:"sendAsEmployee,omitempty"`
	LateReplyWindow           *Duration `json:"lateReplyWindow,omitempty"`
	IdleTimeout               *Duration `json:"idleTimeout,omitempty"`
	TrustEmailClaims          *bool     `json:"trustEmailClaims,omitempty"`
	NewConversationsPerMinute *int      `json:"newConversationsPerMinute,omitempty"`
	MaxHeldReplies            *int      `json:"maxHeldReplies,omitempty"`
	// FirstResponse changes the given fields of Options.FirstResponse.
	FirstResponse *FirstResponseUpdate `json:"firstResponse,omitempty"`
}

// NewIntegration returns the integration u describes, with defaults filled in and
// validated as by Validate. The ID is u's (checked by ValidateIntegrationID) or empty,
// for the store to choose. Every error is EINVALID naming the field.
func NewIntegration(u IntegrationUpdate) (*Integration, error) {
	i := &Integration{}
	if u.ID != nil {
		if err := ValidateIntegrationID(*u.ID); err != nil {
			return nil, err
		}
		i.ID = *u.ID
	}
	u.ID = nil
	if err := u.Apply(i); err != nil {
		return nil, err
	}
	i.Normalize()
	return i, i.Validate()
}

// Apply writes the given fields of u into i. A given secret replaces the stored one (an
// empty one clears it, which Validate then refuses). It fails with EINVALID on "id",
// which cannot change; it does not validate the values (Normalize, then Validate do).
func (u IntegrationUpdate) Apply(i *Integration) error {
	if u.ID != nil && *u.ID != i.ID {
		return Invalid("id", "the id of an integration cannot change")
	}
	set(&i.Name, u.Name)
	if c := u.Chatra; c != nil {
		set(&i.Chatra.APIURL, c.APIURL)
		set(&i.Chatra.PublicKey, c.PublicKey)
		if c.SecretKey != nil {
			i.Chatra.SecretKey = secrets.String(strings.TrimSpace(c.SecretKey.Reveal()))
			i.Chatra.HasSecretKey = i.Chatra.SecretKey != ""
		}
		set(&i.Chatra.AgentID, c.AgentID)
		set(&i.Chatra.AgentEmail, c.AgentEmail)
		set(&i.Chatra.AgentName, c.AgentName)
	}
	if p := u.Planfix; p != nil {
		set(&i.Planfix.AccountURL, p.AccountURL)
		if p.Token != nil {
			i.Planfix.Token = secrets.String(strings.TrimSpace(p.Token.Reveal()))
			i.Planfix.HasToken = i.Planfix.Token != ""
		}
		set(&i.Planfix.TaskTemplateID, p.TaskTemplateID)
		set(&i.Planfix.ContactTemplateID, p.ContactTemplateID)
		set(&i.Planfix.CompletedStatusID, p.CompletedStatusID)
		if p.AssigneeUserIDs != nil {
			i.Planfix.AssigneeUserIDs = slices.Clone(*p.AssigneeUserIDs)
		}
		if p.EmployeeUserIDs != nil {
			i.Planfix.EmployeeUserIDs = slices.Clone(*p.EmployeeUserIDs)
		}
	}
	if o := u.Options; o != nil {
		set(&i.Options.NewTaskOnlyIfNoActiveTask, o.NewTaskOnlyIfNoActiveTask)
		set(&i.Options.SendAsEmployee, o.SendAsEmployee)
		set(&i.Options.LateReplyWindow, o.LateReplyWindow)
		set(&i.Options.IdleTimeout, o.IdleTimeout)
		set(&i.Options.TrustEmailClaims, o.TrustEmailClaims)
		set(&i.Options.NewConversationsPerMinute, o.NewConversationsPerMinute)
		set(&i.Options.MaxHeldReplies, o.MaxHeldReplies)
		if o.FirstResponse != nil {
			o.FirstResponse.Apply(&i.Options.FirstResponse)
		}
	}
	return nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Normalize trims text, fills defaults (Chatra's API URL, the agent name from the
// integration's name, the options: Options.FillDefaults), strips a trailing "/rest" from the Planfix account
// URL, and removes repeated user ids. It is idempotent.
func (i *Integration) Normalize() {
	i.Name = strings.TrimSpace(i.Name)
	c := &i.Chatra
	c.APIURL = strings.TrimRight(strings.TrimSpace(c.APIURL), "/")
	if c.APIURL == "" {
		c.APIURL = DefaultChatraAPIURL
	}
	c.PublicKey = strings.TrimSpace(c.PublicKey)
	c.AgentID = strings.TrimSpace(c.AgentID)
	c.AgentEmail = strings.TrimSpace(c.AgentEmail)
	c.AgentName = strings.TrimSpace(c.AgentName)
	if c.AgentName == "" {
		c.AgentName = i.Name
	}
	p := &i.Planfix
	p.AccountURL = strings.TrimRight(strings.TrimSpace(p.AccountURL), "/")
	if strings.HasSuffix(strings.ToLower(p.AccountURL), "/rest") {
		p.AccountURL = strings.TrimRight(p.AccountURL[:len(p.AccountURL)-len("/rest")], "/")
	}
	p.AssigneeUserIDs = dedupe(p.AssigneeUserIDs)
	p.EmployeeUserIDs = dedupe(p.EmployeeUserIDs)
	i.Options.FillDefaults()
	i.Options.FirstResponse.Normalize()
}

func dedupe(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

var integrationIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidateIntegrationID checks an integration id chosen by an admin: 1 to 64 letters,
// digits, '-' and '_', starting with a letter or digit, so that it fits in URLs and
// workflow ids (chatra/<id>/<chatId>) as it is. EINVALID naming "id" otherwise.
func ValidateIntegrationID(id string) error {
	if !integrationIDPattern.MatchString(id) {
		return Invalid("id", "%s is not a valid id: use 1 to 64 letters, digits, '-' and '_', starting with a letter or digit", quote(id))
	}
	return nil
}

// Validate checks a normalized integration and returns the first problem as EINVALID
// naming the field by its JSON path ("planfix.taskTemplateId"). Both secrets must be set
// (HasSecretKey, HasToken). CompletedStatusID 0 is valid: it means "resolve it from
// Planfix". The messages never contain a secret.
func (i *Integration) Validate() error {
	if i.Name == "" {
		return Invalid("name", "name is required: a name for this site's chat, such as \"Example shop\"")
	}
	if err := plainText("name", i.Name, MaxNameLength); err != nil {
		return err
	}
	c := i.Chatra
	if err := httpURL("chatra.apiUrl", c.APIURL, "https://app.chatra.io"); err != nil {
		return err
	}
	if c.PublicKey == "" {
		return Invalid("chatra.publicKey", "chatra.publicKey is required: copy it from the Chatra dashboard, Settings, API keys")
	}
	if err := token("chatra.publicKey", c.PublicKey); err != nil {
		return err
	}
	if !c.HasSecretKey {
		return Invalid("chatra.secretKey", "chatra.secretKey is required: copy it from the Chatra dashboard, Settings, API keys")
	}
	if err := token("chatra.secretKey", c.SecretKey.Reveal()); err != nil {
		return err
	}
	if c.AgentEmail != "" {
		if a, err := mail.ParseAddress(c.AgentEmail); err != nil || a.Address != c.AgentEmail {
			return Invalid("chatra.agentEmail", "%s is not an email address", quote(c.AgentEmail))
		}
	}
	if err := plainText("chatra.agentId", c.AgentID, 256); err != nil {
		return err
	}
	if err := plainText("chatra.agentName", c.AgentName, MaxNameLength); err != nil {
		return err
	}
	p := i.Planfix
	if p.AccountURL == "" {
		return Invalid("planfix.accountUrl", "planfix.accountUrl is required: your Planfix address, such as https://example.planfix.com")
	}
	if err := httpURL("planfix.accountUrl", p.AccountURL, "https://example.planfix.com"); err != nil {
		return err
	}
	if !p.HasToken {
		return Invalid("planfix.token", "planfix.token is required: create a REST API token in Planfix, Account management, Integrations, REST API")
	}
	if err := token("planfix.token", p.Token.Reveal()); err != nil {
		return err
	}
	if p.TaskTemplateID <= 0 {
		return Invalid("planfix.taskTemplateId", "planfix.taskTemplateId is required: the id of the task template for new chats (`chatrabridge integrations verify` lists them)")
	}
	if p.ContactTemplateID <= 0 {
		return Invalid("planfix.contactTemplateId", "planfix.contactTemplateId is required: the id of the contact template for new customers (`chatrabridge integrations verify` lists them)")
	}
	if p.CompletedStatusID < 0 {
		return Invalid("planfix.completedStatusId", "planfix.completedStatusId must be a status id, or left out to resolve it from Planfix")
	}
	if err := userIDs("planfix.assigneeUserIds", p.AssigneeUserIDs, MaxAssignees); err != nil {
		return err
	}
	if err := userIDs("planfix.employeeUserIds", p.EmployeeUserIDs, MaxEmployees); err != nil {
		return err
	}
	if err := duration("options.lateReplyWindow", i.Options.LateReplyWindow); err != nil {
		return err
	}
	if err := duration("options.idleTimeout", i.Options.IdleTimeout); err != nil {
		return err
	}
	if err := count("options.newConversationsPerMinute", i.Options.NewConversationsPerMinute); err != nil {
		return err
	}
	if err := count("options.maxHeldReplies", i.Options.MaxHeldReplies); err != nil {
		return err
	}
	return i.Options.FirstResponse.Validate("options.firstResponse")
}

func count(field string, n int) error {
	if n < 0 || n > MaxOptionCount {
		return Invalid(field, "%s must be a whole number from 1 to %d, or left out for the default", field, MaxOptionCount)
	}
	return nil
}

func plainText(field, s string, max int) error {
	if utf8.RuneCountInString(s) > max {
		return Invalid(field, "%s is longer than %d characters", field, max)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return Invalid(field, "%s contains control characters or invalid UTF-8", field)
	}
	return nil
}

// token checks a key or token without ever quoting it.
func token(field, s string) error {
	if len(s) > 1024 {
		return Invalid(field, "%s is longer than 1024 characters: paste the value alone", field)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 || !utf8.ValidString(s) {
		return Invalid(field, "%s contains spaces or control characters: paste the value alone", field)
	}
	return nil
}

func httpURL(field, s, example string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return Invalid(field, "%s is not an http(s) URL such as %s", quote(s), example)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return Invalid(field, "%s must be a plain address such as %s, without credentials, query or fragment", field, example)
	}
	return nil
}

func userIDs(field string, ids []int64, max int) error {
	if len(ids) > max {
		return Invalid(field, "%s lists %d users; at most %d are allowed", field, len(ids), max)
	}
	for n, id := range ids {
		if id <= 0 {
			return Invalid(fmt.Sprintf("%s[%d]", field, n), "%d is not a Planfix user id (a positive number)", id)
		}
	}
	return nil
}

func duration(field string, d Duration) error {
	if d < 0 {
		return Invalid(field, "%s must be positive (a Go duration such as \"72h\"), or left out for the default", field)
	}
	if time.Duration(d) > MaxOptionDuration {
		return Invalid(field, "%s is longer than %s", field, MaxOptionDuration)
	}
	return nil
}

// quote quotes s for a message, cut to 80 characters.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 80 {
		s = string([]rune(s)[:80]) + "…"
	}
	return strconv.Quote(s)
}
