package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// RecordEffect notes that the side effect named key was made for the integration, with
// what the remote side answered (a message or comment id). Recording the same key again
// keeps the first result. It is idempotent.
func (db *DB) RecordEffect(ctx context.Context, integrationID, key, result string) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO effects (integration_id, key, result) VALUES ($1, $2, $3)
		ON CONFLICT (integration_id, key) DO NOTHING`, integrationID, key, result)
	return translate(err)
}

// Effect returns the result recorded for the side effect named key, or ENOTFOUND when
// it was never recorded.
func (db *DB) Effect(ctx context.Context, integrationID, key string) (string, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT result FROM effects WHERE integration_id = $1 AND key = $2`,
		integrationID, key)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
	return r, translate(err)
}

// DeleteEffectsBefore forgets the side effects recorded before t and returns how many.
// Records only matter while an activity may still be retried, so anything older than
// the longest retry window may go.
func (db *DB) DeleteEffectsBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM effects WHERE created_at < $1`, t)
	return tag.RowsAffected(), translate(err)
}

// TouchConversation marks the conversation of a chat as active now (its updated_at), so
// that FindConversationByTask picks the chat a customer wrote from last. A chat without
// a row is not an error: there is nothing to touch.
func (db *DB) TouchConversation(ctx context.Context, integrationID, chatID string) error {
	_, err := db.Pool.Exec(ctx, `UPDATE conversations SET updated_at = now() WHERE integration_id = $1 AND chat_id = $2`,
		integrationID, chatID)
	return translate(err)
}

// ContactTaskIDs returns the Planfix tasks the conversations of a contact used, the most
// recently active first, at most limit (default 10) of them.
func (db *DB) ContactTaskIDs(ctx context.Context, integrationID string, contactID int64, limit int) ([]int64, error) {
	if limit <= 0 {
		limit = 10
	}
	rows, _ := db.Pool.Query(ctx, `
		SELECT planfix_task_id FROM conversations
		WHERE integration_id = $1 AND planfix_contact_id = $2 AND planfix_task_id IS NOT NULL
		GROUP BY planfix_task_id ORDER BY max(updated_at) DESC LIMIT $3`, integrationID, contactID, limit)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, translate(err)
}
