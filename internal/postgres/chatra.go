package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ChatraRetention is how long the store remembers a Chatra chat (AdmitChat) and a
// delivery's event key (SeenChatraEvent): longer than a conversation lives without a
// chat event (the idle timeout and the late-reply window, at most a few days).
const ChatraRetention = 30 * 24 * time.Hour

// AdmissionWindow is the period over which AdmitChat counts an integration's new chats.
const AdmissionWindow = time.Minute

// AdmitChat decides whether a Chatra webhook of chatID may be taken: always for a chat
// the store knows (admitted before, or with a conversation row); for a new chat only
// while the integration has admitted fewer than perMinute new chats in the last
// AdmissionWindow (perMinute <= 0: no bound), and then the chat is recorded. When it
// refuses, retryAfter is when the oldest admission in the window leaves it (at least a
// second). Concurrent new chats of one integration are admitted one at a time, so the
// bound holds across API processes. Errors are EUNAVAILABLE when the store cannot be
// reached: the caller decides whether to take the webhook anyway.
func (db *DB) AdmitChat(ctx context.Context, integrationID, chatID string, perMinute int) (ok bool, retryAfter time.Duration, err error) {
	const known = `
		SELECT EXISTS (SELECT 1 FROM chatra_chats WHERE integration_id = $1 AND chat_id = $2)
		    OR EXISTS (SELECT 1 FROM conversations WHERE integration_id = $1 AND chat_id = $2)`
	var seen bool
	if err := db.Pool.QueryRow(ctx, known, integrationID, chatID).Scan(&seen); err != nil {
		return false, 0, translate(err)
	}
	if seen {
		return true, 0, nil
	}
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('chatra-admission/' || $1::text, 0))`, integrationID); err != nil {
			return err
		}
		if perMinute > 0 {
			var (
				n      int
				oldest *time.Time
				now    time.Time
			)
			if err := tx.QueryRow(ctx, `
				SELECT count(*), min(admitted_at), clock_timestamp() FROM chatra_chats
				WHERE integration_id = $1 AND admitted_at > clock_timestamp() - make_interval(secs => $2::double precision)`,
				integrationID, AdmissionWindow.Seconds()).Scan(&n, &oldest, &now); err != nil {
				return err
			}
			if n >= perMinute {
				retryAfter = time.Second
				if oldest != nil {
					retryAfter = min(max(oldest.Add(AdmissionWindow).Sub(now), time.Second), AdmissionWindow)
				}
				return nil
			}
		}
		// The time of the admission, not of the transaction's start: a transaction that
		// waited for the lock must not date its chat before the ones admitted meanwhile.
		_, err := tx.Exec(ctx, `
			INSERT INTO chatra_chats (integration_id, chat_id, admitted_at) VALUES ($1, $2, clock_timestamp())
			ON CONFLICT DO NOTHING`, integrationID, chatID)
		ok = err == nil
		return err
	})
	if err != nil {
		return false, 0, translateTx(err)
	}
	return ok, retryAfter, nil
}

// SeenChatraEvent reports whether a Chatra delivery with this event key was accepted
// before (RecordChatraEvent), within ChatraRetention.
func (db *DB) SeenChatraEvent(ctx context.Context, integrationID, eventKey string) (bool, error) {
	var seen bool
	err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM chatra_events WHERE integration_id = $1 AND event_key = $2)`,
		integrationID, eventKey).Scan(&seen)
	return seen, translate(err)
}

// RecordChatraEvent notes that Temporal accepted the Chatra delivery with this event
// key. It is idempotent.
func (db *DB) RecordChatraEvent(ctx context.Context, integrationID, eventKey string) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO chatra_events (integration_id, event_key) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, integrationID, eventKey)
	return translate(err)
}

// DeleteChatraBefore forgets the chats admitted and the events recorded before t, and
// returns how many rows went.
func (db *DB) DeleteChatraBefore(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	for _, q := range []string{
		`DELETE FROM chatra_chats WHERE admitted_at < $1`,
		`DELETE FROM chatra_events WHERE received_at < $1`,
	} {
		tag, err := db.Pool.Exec(ctx, q, t)
		if err != nil {
			return n, translate(err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
