package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The roles a customer's contact can have on the tasks the bridge creates.
const (
	ContactRoleAssigner     = "assigner"
	ContactRoleCounterparty = "counterparty"
)

// ContactRole returns how the integration's Planfix keeps a contact on a created task
// (ContactRoleAssigner or ContactRoleCounterparty), or "" while unknown. An integration
// without a row is ENOTFOUND.
func (db *DB) ContactRole(ctx context.Context, integrationID string) (string, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT coalesce(contact_role, '') FROM integrations WHERE id = $1`, integrationID)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
	return r, translate(err)
}

// SetContactRole records what the bridge found out about how the integration's Planfix
// keeps a contact on a created task. It is idempotent; the latest finding wins.
func (db *DB) SetContactRole(ctx context.Context, integrationID, role string) error {
	if role != ContactRoleAssigner && role != ContactRoleCounterparty {
		return fmt.Errorf("contact role %q is not %q or %q", role, ContactRoleAssigner, ContactRoleCounterparty)
	}
	_, err := db.Pool.Exec(ctx, `UPDATE integrations SET contact_role = $2 WHERE id = $1`, integrationID, role)
	return translate(err)
}
