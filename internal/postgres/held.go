package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge"
)

// HoldReply keeps a Planfix reply (the comment commentID written in task taskID) whose
// task has no conversation yet: the bridge saves a new task's conversation a moment
// after Planfix created the task (minutes later when the worker or Temporal is down),
// and Planfix does not send a request again once it was answered 200. The next save of
// a conversation with that task takes it (SaveConversation). Holding the same comment
// again is a no-op, also once it was taken.
//
// It returns an ECONFLICT error, holding nothing, when a conversation has the task by
// now (it was saved after the caller looked): the caller sends the reply to it instead.
// The check and the insert are serialised with SaveConversation's take by a lock on the
// task, so a reply is either held before the save takes the task's replies or finds
// the saved conversation, never neither.
func (db *DB) HoldReply(ctx context.Context, integrationID string, taskID, commentID int64) error {
	return db.HoldReplyAtMost(ctx, integrationID, taskID, commentID, 0)
}

// HoldReplyAtMost is HoldReply holding at most max replies no conversation has taken
// for the integration (0: no bound): beyond it, it returns an ELIMIT error and holds
// nothing. A leaked Planfix webhook URL cannot fill the store with made-up replies. A
// reply held already is not refused (holding it again is a no-op).
func (db *DB) HoldReplyAtMost(ctx context.Context, integrationID string, taskID, commentID int64, max int) error {
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := lockTaskReplies(ctx, tx, integrationID, taskID); err != nil {
			return err
		}
		var taken bool
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM conversations WHERE integration_id = $1 AND planfix_task_id = $2)`,
			integrationID, taskID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return chatrabridge.Errorf(chatrabridge.ECONFLICT, "task %d has a conversation by now", taskID)
		}
		if max > 0 {
			var held bool
			var n int
			if err := tx.QueryRow(ctx, `
				SELECT EXISTS (SELECT 1 FROM held_replies WHERE integration_id = $1 AND comment_id = $2),
				       (SELECT count(*) FROM (SELECT 1 FROM held_replies
				        WHERE integration_id = $1 AND taken_by IS NULL LIMIT $3) AS h)`,
				integrationID, commentID, max).Scan(&held, &n); err != nil {
				return err
			}
			if !held && n >= max {
				return chatrabridge.Errorf(chatrabridge.ELIMIT, "the bridge already holds %d replies of this integration whose tasks have no conversation (options.maxHeldReplies)", max)
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO held_replies (integration_id, task_id, comment_id) VALUES ($1, $2, $3)
			ON CONFLICT (integration_id, comment_id) DO NOTHING`, integrationID, taskID, commentID)
		return err
	})
	return translateTx(err)
}

// lockTaskReplies takes a transaction-scoped advisory lock on the held replies of one
// task: HoldReply's check-then-insert and SaveConversation's save-then-take must not
// interleave (under READ COMMITTED each could miss the other's uncommitted row).
func lockTaskReplies(ctx context.Context, tx pgx.Tx, integrationID string, taskID int64) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('held-replies/' || $1::text, $2::bigint))`,
		integrationID, taskID)
	return err
}

// DeleteHeldRepliesBefore forgets the replies held since before t and returns how many:
// those taken (a retried save no longer needs them) and those no conversation took
// (comments in tasks that are not the bridge's).
func (db *DB) DeleteHeldRepliesBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM held_replies WHERE received_at < $1`, t)
	return tag.RowsAffected(), translate(err)
}
