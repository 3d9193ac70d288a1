package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Contact maps a Chatra visitor of an integration to a Planfix contact.
type Contact struct {
	IntegrationID    string    `db:"integration_id"`
	ChatraClientID   string    `db:"chatra_client_id"`
	Email            string    `db:"email"`
	PlanfixContactID int64     `db:"planfix_contact_id"`
	UpdatedAt        time.Time `db:"updated_at"`
}

// SaveContact records (or moves) the mapping of a visitor to a contact. An empty email
// keeps the stored one. It is idempotent.
func (db *DB) SaveContact(ctx context.Context, c Contact) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO contacts (integration_id, chatra_client_id, email, planfix_contact_id)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (integration_id, chatra_client_id) DO UPDATE SET
			email = COALESCE(NULLIF(EXCLUDED.email, ''), contacts.email),
			planfix_contact_id = EXCLUDED.planfix_contact_id,
			updated_at = now()`,
		c.IntegrationID, c.ChatraClientID, c.Email, c.PlanfixContactID)
	return translate(err)
}

// FindContactByClient returns the contact mapped to a Chatra visitor, or ENOTFOUND.
func (db *DB) FindContactByClient(ctx context.Context, integrationID, clientID string) (*Contact, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT * FROM contacts WHERE integration_id = $1 AND chatra_client_id = $2`,
		integrationID, clientID)
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByName[Contact])
	return c, translate(err)
}

// FindContactByEmail returns the contact most recently mapped with that email (compared
// case-insensitively), or ENOTFOUND.
func (db *DB) FindContactByEmail(ctx context.Context, integrationID, email string) (*Contact, error) {
	rows, _ := db.Pool.Query(ctx, `
		SELECT * FROM contacts WHERE integration_id = $1 AND email <> '' AND lower(email) = lower($2)
		ORDER BY updated_at DESC LIMIT 1`, integrationID, email)
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByName[Contact])
	return c, translate(err)
}

// ForgetContact deletes every mapping of the integration's visitors (and so of their
// emails) to a Planfix contact, for a contact Planfix no longer has: the next lookup
// finds the visitor's contact again, or creates one. It returns how many visitors were
// mapped to it. It is idempotent.
//
// The conversations that used the contact keep it: a conversation row records which
// contact its task was for, a running conversation writes its new contact on its next
// save, and no lookup hands the id out once the mappings are gone.
func (db *DB) ForgetContact(ctx context.Context, integrationID string, contactID int64) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM contacts WHERE integration_id = $1 AND planfix_contact_id = $2`,
		integrationID, contactID)
	if err != nil {
		return 0, translate(err)
	}
	return tag.RowsAffected(), nil
}
