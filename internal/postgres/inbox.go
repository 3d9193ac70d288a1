package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// QueueWebhook keeps a delivery that Temporal could not take (internal/inbox.Delivery as
// JSON) in the inbox, behind the ones kept before for the same workflow. It returns an
// EUNAVAILABLE error when the store cannot be reached, EINVALID when it cannot store the
// delivery.
func (db *DB) QueueWebhook(ctx context.Context, integrationID, workflowID string, delivery []byte) error {
	_, err := db.Pool.Exec(ctx, `INSERT INTO webhook_inbox (integration_id, workflow_id, delivery) VALUES ($1, $2, $3)`,
		integrationID, workflowID, string(delivery))
	return translate(err)
}

// WebhooksQueued reports whether the inbox still holds deliveries for the workflow: a
// later delivery must then be queued behind them, not sent, to keep their order.
func (db *DB) WebhooksQueued(ctx context.Context, workflowID string) (bool, error) {
	var queued bool
	err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_inbox WHERE workflow_id = $1)`, workflowID).Scan(&queued)
	return queued, translate(err)
}

// InboxBacklog returns how many deliveries the inbox holds, and when the oldest arrived
// (zero when none).
func (db *DB) InboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var (
		n      int64
		oldest *time.Time
	)
	err := db.Pool.QueryRow(ctx, `SELECT count(*), min(received_at) FROM webhook_inbox`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, translate(err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, *oldest, nil
}

// InboxSend sends one kept delivery for ForwardWebhooks. A nil error means Temporal
// accepted it.
type InboxSend func(ctx context.Context, id int64, delivery []byte) error

// ForwardWebhooks sends the inbox's deliveries through send, at most limit workflows in
// one call, oldest first, in arrival order within each workflow, and deletes each one
// sent. One workflow's deliveries are sent by one caller at a time (a transaction-scoped
// advisory lock per workflow; a workflow another caller is forwarding is skipped), and a
// delivery is deleted in the transaction that holds the lock: another caller never
// sends a later delivery of the workflow before an earlier one. When send fails, the
// workflow's remaining deliveries and the other workflows wait for a later call; drop
// says whether a failed one is deleted anyway. It returns how many deliveries were sent
// (or dropped), and the error of send or of the store that stopped it. A crash after Temporal accepted a delivery but before its
// deletion committed sends it again later, with the same signal keys.
func (db *DB) ForwardWebhooks(ctx context.Context, limit int, send InboxSend, drop func(error) bool) (int, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT workflow_id FROM webhook_inbox GROUP BY workflow_id ORDER BY min(id) LIMIT $1`, limit)
	if err != nil {
		return 0, translate(err)
	}
	workflowIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, translate(err)
	}
	sent := 0
	for _, workflowID := range workflowIDs {
		if ctx.Err() != nil {
			break
		}
		var sendErr error
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			var locked bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended('webhook-inbox/' || $1::text, 0))`, workflowID).Scan(&locked); err != nil || !locked {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT id, delivery::text FROM webhook_inbox WHERE workflow_id = $1 ORDER BY id`, workflowID)
			if err != nil {
				return err
			}
			type entry struct {
				ID       int64
				Delivery string
			}
			entries, err := pgx.CollectRows(rows, pgx.RowToStructByPos[entry])
			if err != nil {
				return err
			}
			for _, e := range entries {
				if err := send(ctx, e.ID, []byte(e.Delivery)); err != nil && !drop(err) {
					sendErr = err
					return nil // commit the deletions of the ones sent
				}
				if _, err := tx.Exec(ctx, `DELETE FROM webhook_inbox WHERE id = $1`, e.ID); err != nil {
					return err
				}
				sent++
			}
			return nil
		})
		if err != nil {
			return sent, translateTx(err)
		}
		if sendErr != nil {
			return sent, sendErr // Temporal is likely down for the others too
		}
	}
	return sent, nil
}
