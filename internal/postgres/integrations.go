package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// Webhook kinds, the kind argument of CheckWebhookToken.
const (
	WebhookChatra  = "chatra"
	WebhookPlanfix = "planfix"
)

// IntegrationStore keeps integrations in the integrations table: the non-secret settings
// as JSON, the Chatra secret key and the Planfix token sealed (AES-GCM, see
// secrets.Sealer) in their own columns, and only the SHA-256 of the webhook tokens. The
// employees allowed on each channel are rows of the employees table, kept in step with
// the settings. It implements chatrabridge.IntegrationService and is safe for concurrent
// use.
type IntegrationStore struct {
	db     *DB
	sealer *secrets.Sealer
}

// NewIntegrationStore returns the store of integrations in db, sealing and opening
// credentials with sealer.
func NewIntegrationStore(db *DB, sealer *secrets.Sealer) *IntegrationStore {
	return &IntegrationStore{db: db, sealer: sealer}
}

var _ chatrabridge.IntegrationService = (*IntegrationStore)(nil)

// settings is the JSON of the settings column: everything but the name, the secrets and
// the employees. Its keys are the admin API's.
type settings struct {
	Chatra struct {
		APIURL     string `json:"apiUrl"`
		PublicKey  string `json:"publicKey"`
		AgentID    string `json:"agentId,omitempty"`
		AgentEmail string `json:"agentEmail,omitempty"`
		AgentName  string `json:"agentName,omitempty"`
	} `json:"chatra"`
	Planfix struct {
		AccountURL        string  `json:"accountUrl"`
		TaskTemplateID    int64   `json:"taskTemplateId"`
		ContactTemplateID int64   `json:"contactTemplateId"`
		CompletedStatusID int64   `json:"completedStatusId"`
		AssigneeUserIDs   []int64 `json:"assigneeUserIds"`
	} `json:"planfix"`
	Options chatrabridge.Options `json:"options"`
}

func settingsOf(i *chatrabridge.Integration) settings {
	var s settings
	s.Chatra.APIURL = i.Chatra.APIURL
	s.Chatra.PublicKey = i.Chatra.PublicKey
	s.Chatra.AgentID = i.Chatra.AgentID
	s.Chatra.AgentEmail = i.Chatra.AgentEmail
	s.Chatra.AgentName = i.Chatra.AgentName
	s.Planfix.AccountURL = i.Planfix.AccountURL
	s.Planfix.TaskTemplateID = i.Planfix.TaskTemplateID
	s.Planfix.ContactTemplateID = i.Planfix.ContactTemplateID
	s.Planfix.CompletedStatusID = i.Planfix.CompletedStatusID
	s.Planfix.AssigneeUserIDs = i.Planfix.AssigneeUserIDs
	s.Options = i.Options
	return s
}

// integrationRow is a row as read, the employees gathered into an array.
type integrationRow struct {
	ID              string    `db:"id"`
	Name            string    `db:"name"`
	Settings        settings  `db:"settings"`
	ChatraSecretKey []byte    `db:"chatra_secret_key"`
	PlanfixToken    []byte    `db:"planfix_token"`
	EmployeeUserIDs []int64   `db:"employee_user_ids"`
	CreatedAt       time.Time `db:"created_at"`
	UpdatedAt       time.Time `db:"updated_at"`
}

const selectIntegration = `
	SELECT i.id, i.name, i.settings, i.chatra_secret_key, i.planfix_token,
		COALESCE((SELECT array_agg(e.planfix_user_id ORDER BY e.planfix_user_id)
		          FROM employees e WHERE e.integration_id = i.id), '{}') AS employee_user_ids,
		i.created_at, i.updated_at
	FROM integrations i`

// integration converts a row; the secrets are opened only when open is true, else only
// HasSecretKey and HasToken say whether they are set.
func (s *IntegrationStore) integration(r integrationRow, open bool) (*chatrabridge.Integration, error) {
	i := &chatrabridge.Integration{
		ID:        r.ID,
		Name:      r.Name,
		CreatedAt: r.CreatedAt,
		UpdatedAt: r.UpdatedAt,
		Options:   r.Settings.Options,
	}
	c := r.Settings.Chatra
	i.Chatra = chatrabridge.ChatraSettings{APIURL: c.APIURL, PublicKey: c.PublicKey, AgentID: c.AgentID,
		AgentEmail: c.AgentEmail, AgentName: c.AgentName, HasSecretKey: r.ChatraSecretKey != nil}
	p := r.Settings.Planfix
	i.Options.FillDefaults() // options added after the integration was stored
	i.Planfix = chatrabridge.PlanfixSettings{AccountURL: p.AccountURL, TaskTemplateID: p.TaskTemplateID,
		ContactTemplateID: p.ContactTemplateID, CompletedStatusID: p.CompletedStatusID,
		AssigneeUserIDs: p.AssigneeUserIDs, EmployeeUserIDs: r.EmployeeUserIDs, HasToken: r.PlanfixToken != nil}
	if i.Planfix.AssigneeUserIDs == nil {
		i.Planfix.AssigneeUserIDs = []int64{}
	}
	if i.Planfix.EmployeeUserIDs == nil {
		i.Planfix.EmployeeUserIDs = []int64{}
	}
	if !open {
		return i, nil
	}
	var err error
	if i.Chatra.SecretKey, err = s.open(r.ChatraSecretKey); err != nil {
		return nil, fmt.Errorf("integration %s: chatra secret key: %w", r.ID, err)
	}
	if i.Planfix.Token, err = s.open(r.PlanfixToken); err != nil {
		return nil, fmt.Errorf("integration %s: planfix token: %w", r.ID, err)
	}
	return i, nil
}

func (s *IntegrationStore) open(sealed []byte) (secrets.String, error) {
	if sealed == nil {
		return "", nil
	}
	b, err := s.sealer.Open(sealed)
	if err != nil {
		return "", &chatrabridge.Error{Code: chatrabridge.EINTERNAL, Message: "a stored secret cannot be opened: check SECRETS_KEY", Err: err}
	}
	return secrets.String(b), nil
}

// seal seals a secret; an empty one is stored as NULL.
func (s *IntegrationStore) seal(v secrets.String) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	return s.sealer.Seal([]byte(v.Reveal()))
}

// newIntegrationID returns a random id: 16 characters of lowercase base32 (80 bits).
func newIntegrationID() string {
	return strings.ToLower(rand.Text()[:16])
}

// CreateIntegration stores i, which must be valid (chatrabridge.NewIntegration), with
// both secrets set. An empty i.ID is replaced by a random one. It sets i's ID, CreatedAt
// and UpdatedAt, sorts its employees (as they read back), and returns new webhook tokens: they are not stored, only their hashes,
// so this is the only time they are known. ECONFLICT (field "id") when the id is taken.
func (s *IntegrationStore) CreateIntegration(ctx context.Context, i *chatrabridge.Integration) (chatrabridge.WebhookTokens, error) {
	var tokens chatrabridge.WebhookTokens
	if i.ID == "" {
		i.ID = newIntegrationID()
	}
	secretKey, err := s.seal(i.Chatra.SecretKey)
	if err != nil {
		return tokens, err
	}
	planfixToken, err := s.seal(i.Planfix.Token)
	if err != nil {
		return tokens, err
	}
	var chatraHash, planfixHash []byte
	tokens.Chatra, chatraHash = secrets.NewToken()
	tokens.Planfix, planfixHash = secrets.NewToken()
	slices.Sort(i.Planfix.EmployeeUserIDs)
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO integrations (id, name, settings, chatra_secret_key, planfix_token,
				chatra_token_hash, planfix_token_hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			RETURNING created_at, updated_at`,
			i.ID, i.Name, settingsOf(i), secretKey, planfixToken, chatraHash, planfixHash,
		).Scan(&i.CreatedAt, &i.UpdatedAt)
		if err != nil {
			return err
		}
		return syncEmployees(ctx, tx, i.ID, i.Planfix.EmployeeUserIDs)
	})
	if err = translate(err); chatrabridge.ErrorCode(err) == chatrabridge.ECONFLICT {
		return chatrabridge.WebhookTokens{}, &chatrabridge.Error{Code: chatrabridge.ECONFLICT, Field: "id",
			Message: fmt.Sprintf("an integration with the id %q already exists", i.ID), Err: err}
	}
	if err != nil {
		return chatrabridge.WebhookTokens{}, fmt.Errorf("create integration: %w", err)
	}
	return tokens, nil
}

// syncEmployees makes the employees rows of an integration the given user ids, keeping
// what the rows already hold (email, name) for the users that stay.
func syncEmployees(ctx context.Context, tx pgx.Tx, integrationID string, ids []int64) error {
	if ids == nil {
		ids = []int64{}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM employees WHERE integration_id = $1 AND planfix_user_id <> ALL($2)`,
		integrationID, ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO employees (integration_id, planfix_user_id)
		SELECT $1, id FROM unnest($2::bigint[]) AS id
		ON CONFLICT DO NOTHING`, integrationID, ids)
	return err
}

// Integration returns the integration with its secrets opened, for the code that calls
// Chatra and Planfix with them. ENOTFOUND for an unknown id; EINTERNAL when a secret
// cannot be opened (SECRETS_KEY lacks the key it was sealed with).
func (s *IntegrationStore) Integration(ctx context.Context, id string) (*chatrabridge.Integration, error) {
	return s.get(ctx, id, true)
}

// IntegrationSettings returns the integration without opening its secrets (HasSecretKey
// and HasToken say whether they are set): what the admin API shows. ENOTFOUND for an
// unknown id.
func (s *IntegrationStore) IntegrationSettings(ctx context.Context, id string) (*chatrabridge.Integration, error) {
	return s.get(ctx, id, false)
}

func (s *IntegrationStore) get(ctx context.Context, id string, open bool) (*chatrabridge.Integration, error) {
	rows, _ := s.db.Pool.Query(ctx, selectIntegration+` WHERE i.id = $1`, id)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[integrationRow])
	if err != nil {
		return nil, notFound(translate(err), id)
	}
	return s.integration(r, open)
}

func notFound(err error, id string) error {
	if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND {
		return &chatrabridge.Error{Code: chatrabridge.ENOTFOUND, Message: fmt.Sprintf("no integration with the id %q", id)}
	}
	return err
}

// ListIntegrations returns every integration, by name then id, without opening their
// secrets.
func (s *IntegrationStore) ListIntegrations(ctx context.Context) ([]chatrabridge.Integration, error) {
	rows, _ := s.db.Pool.Query(ctx, selectIntegration+` ORDER BY i.name, i.id`)
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[integrationRow])
	if err != nil {
		return nil, translate(err)
	}
	out := make([]chatrabridge.Integration, 0, len(rs))
	for _, r := range rs {
		i, err := s.integration(r, false)
		if err != nil {
			return nil, err
		}
		out = append(out, *i)
	}
	return out, nil
}

// UpdateIntegration applies u to the stored integration (PATCH semantics: only the given
// fields change; a secret is replaced, and sealed again, only when given), then
// normalizes and validates the result, all under the row's lock. It returns the
// integration as stored, its secrets not opened. ENOTFOUND for an unknown id, EINVALID
// naming the field for an invalid result (nothing is written then).
func (s *IntegrationStore) UpdateIntegration(ctx context.Context, id string, u chatrabridge.IntegrationUpdate) (*chatrabridge.Integration, error) {
	var out *chatrabridge.Integration
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, selectIntegration+` WHERE i.id = $1 FOR UPDATE OF i`, id)
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[integrationRow])
		if err != nil {
			return notFound(translate(err), id)
		}
		i, err := s.integration(r, false)
		if err != nil {
			return err
		}
		if err := u.Apply(i); err != nil {
			return err
		}
		i.Normalize()
		if err := i.Validate(); err != nil {
			return err
		}
		var secretKey, planfixToken []byte
		if u.Chatra != nil && u.Chatra.SecretKey != nil {
			if secretKey, err = s.seal(i.Chatra.SecretKey); err != nil {
				return err
			}
		}
		if u.Planfix != nil && u.Planfix.Token != nil {
			if planfixToken, err = s.seal(i.Planfix.Token); err != nil {
				return err
			}
		}
		err = tx.QueryRow(ctx, `
			UPDATE integrations SET name = $2, settings = $3,
				chatra_secret_key = COALESCE($4, chatra_secret_key),
				planfix_token = COALESCE($5, planfix_token),
				updated_at = now()
			WHERE id = $1
			RETURNING updated_at`,
			id, i.Name, settingsOf(i), secretKey, planfixToken).Scan(&i.UpdatedAt)
		if err != nil {
			return err
		}
		slices.Sort(i.Planfix.EmployeeUserIDs)
		if err := syncEmployees(ctx, tx, id, i.Planfix.EmployeeUserIDs); err != nil {
			return err
		}
		i.Chatra.SecretKey, i.Planfix.Token = "", ""
		out = i
		return nil
	})
	if err != nil {
		return nil, translateTx(err)
	}
	return out, nil
}

// translateTx translates the error of a transaction, whose function may already return
// domain errors.
func translateTx(err error) error {
	var e *chatrabridge.Error
	if errors.As(err, &e) {
		return err
	}
	return translate(err)
}

// DeleteIntegration deletes the integration with its employees, contacts and
// conversation rows (their workflows are not touched). ENOTFOUND for an unknown id.
func (s *IntegrationStore) DeleteIntegration(ctx context.Context, id string) error {
	tag, err := s.db.Pool.Exec(ctx, `DELETE FROM integrations WHERE id = $1`, id)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(&chatrabridge.Error{Code: chatrabridge.ENOTFOUND, Message: "not found"}, id)
	}
	return nil
}

// RotateWebhookTokens replaces both webhook tokens of the integration with new ones and
// returns them; the old tokens stop working as soon as it returns. ENOTFOUND for an
// unknown id.
func (s *IntegrationStore) RotateWebhookTokens(ctx context.Context, id string) (chatrabridge.WebhookTokens, error) {
	var tokens chatrabridge.WebhookTokens
	var chatraHash, planfixHash []byte
	tokens.Chatra, chatraHash = secrets.NewToken()
	tokens.Planfix, planfixHash = secrets.NewToken()
	tag, err := s.db.Pool.Exec(ctx, `
		UPDATE integrations SET chatra_token_hash = $2, planfix_token_hash = $3, updated_at = now()
		WHERE id = $1`, id, chatraHash, planfixHash)
	if err != nil {
		return chatrabridge.WebhookTokens{}, translate(err)
	}
	if tag.RowsAffected() == 0 {
		return chatrabridge.WebhookTokens{}, notFound(&chatrabridge.Error{Code: chatrabridge.ENOTFOUND, Message: "not found"}, id)
	}
	return tokens, nil
}

// dummyTokenHash is compared against when the integration does not exist, so that an
// unknown id costs the same work as a wrong token.
var dummyTokenHash = secrets.HashToken("no such integration")

// errWrongToken is the one answer for an unknown integration and a wrong token alike.
var errWrongToken = &chatrabridge.Error{Code: chatrabridge.EUNAUTHORIZED, Message: "unknown integration or wrong token"}

// CheckWebhookToken checks a webhook token of the integration; kind is WebhookChatra or
// WebhookPlanfix. It returns nil when the token is the integration's current one, and
// EUNAUTHORIZED for an unknown integration and a wrong token alike (the two cannot be told
// apart, by the answer or by its timing: the token is compared in constant time, against
// a dummy hash when the integration does not exist). An unknown kind is EINVALID; a
// database failure keeps its code (EUNAVAILABLE), so the sender can be told to retry.
//
// It is a method of DB, not of IntegrationStore, because it needs no sealer: the webhook
// side has only the DB.
func (db *DB) CheckWebhookToken(ctx context.Context, integrationID, kind, token string) error {
	var column string
	switch kind {
	case WebhookChatra:
		column = "chatra_token_hash"
	case WebhookPlanfix:
		column = "planfix_token_hash"
	default:
		return chatrabridge.Errorf(chatrabridge.EINVALID, "unknown webhook kind %q", kind)
	}
	var hash []byte
	err := db.Pool.QueryRow(ctx, `SELECT `+column+` FROM integrations WHERE id = $1`, integrationID).Scan(&hash)
	if err = translate(err); err != nil {
		if chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
			return err
		}
		hash = dummyTokenHash
		secrets.CheckToken(token, hash)
		return errWrongToken
	}
	if !secrets.CheckToken(token, hash) {
		return errWrongToken
	}
	return nil
}
