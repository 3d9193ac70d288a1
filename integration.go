package chatrabridge

import (
	"context"
	"time"

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

// Options are the integration's switches.
type Options struct {
	NewTaskOnlyIfNoActiveTask bool     `json:"newTaskOnlyIfNoActiveTask"`
	SendAsEmployee            bool     `json:"sendAsEmployee"`
	LateReplyWindow           Duration `json:"lateReplyWindow"` // default 72h
	IdleTimeout               Duration `json:"idleTimeout"`     // default 24h
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
