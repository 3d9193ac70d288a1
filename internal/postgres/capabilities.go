package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Whether the integration's Planfix returns the sourceObjectId the bridge sends with a
// create (Capabilities.SourceIDs).
const (
	SourceIDsReturned    = "returned"
	SourceIDsNotReturned = "not_returned"
)

// Capabilities are what the bridge found out about an integration's Planfix from
// Planfix itself; "" is unknown.
type Capabilities struct {
	// ContactRole is ContactRoleAssigner or ContactRoleCounterparty (see ContactRole).
	ContactRole string
	// SourceIDs is SourceIDsReturned or SourceIDsNotReturned.
	SourceIDs string
	// DeepVerifiedAt is when a deep verify last recorded its findings; nil if never.
	DeepVerifiedAt *time.Time
}

// Capabilities returns what is known of the integration's Planfix. An integration
// without a row is ENOTFOUND.
func (db *DB) Capabilities(ctx context.Context, integrationID string) (Capabilities, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT coalesce(contact_role, '') AS contact_role, coalesce(planfix_source_ids, '') AS source_ids,
		deep_verified_at FROM integrations WHERE id = $1`, integrationID)
	c, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (Capabilities, error) {
		var c Capabilities
		err := row.Scan(&c.ContactRole, &c.SourceIDs, &c.DeepVerifiedAt)
		return c, err
	})
	return c, translate(err)
}

// RecordDeepVerify stores the findings of a deep verify: each known finding of c
// replaces the stored one (an unknown one leaves it), and the verify's time is set. It
// is idempotent.
func (db *DB) RecordDeepVerify(ctx context.Context, integrationID string, c Capabilities) error {
	if c.ContactRole != "" && c.ContactRole != ContactRoleAssigner && c.ContactRole != ContactRoleCounterparty {
		return fmt.Errorf("contact role %q is not %q or %q", c.ContactRole, ContactRoleAssigner, ContactRoleCounterparty)
	}
	if c.SourceIDs != "" && c.SourceIDs != SourceIDsReturned && c.SourceIDs != SourceIDsNotReturned {
		return fmt.Errorf("sourceObjectIds %q is not %q or %q", c.SourceIDs, SourceIDsReturned, SourceIDsNotReturned)
	}
	tag, err := db.Pool.Exec(ctx, `UPDATE integrations SET contact_role = coalesce(nullif($2, ''), contact_role),
		planfix_source_ids = coalesce(nullif($3, ''), planfix_source_ids), deep_verified_at = now() WHERE id = $1`,
		integrationID, c.ContactRole, c.SourceIDs)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return translate(err)
}
