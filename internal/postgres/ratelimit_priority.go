package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// registerSQL makes sure the account has its row in planfix_rate_limits, deletes the
// account's waiters whose process stopped counting a minute ago, and registers a waiter:
// $2 its rank, $3 its chat's start (null: not known), $4 when it came (null: now; a
// waiter registering again keeps its place), $5 the lease in microseconds.
const registerSQL = `
WITH slot AS (
	INSERT INTO planfix_rate_limits (account, next_at) VALUES ($1, clock_timestamp())
	ON CONFLICT (account) DO NOTHING
), gc AS (
	DELETE FROM planfix_rate_waiters
	WHERE account = $1 AND expires_at < clock_timestamp() - interval '1 minute'
)
INSERT INTO planfix_rate_waiters (account, rank, chat_started_at, enqueued_at, expires_at)
VALUES ($1, $2, $3, coalesce($4, clock_timestamp()), clock_timestamp() + $5::bigint * interval '1 microsecond')
RETURNING enqueued_at, id`

// takeSQL is one try of waiter $2 for account $1's slot. It locks the account's row (so
// the tries of every process are in turn), and when the slot is due and no live waiter
// is better than $2, moves next_at one interval ($3 µs) past the current time and deletes
// the waiter: the request may go. Otherwise it extends the waiter's lease ($5 µs past the
// slot) and answers when the slot is due. A waiter's rank improves by one for every
// promotion step ($4 µs) it has waited, down to 0 (before every class). It answers:
// granted, the slot (the latest of next_at and blocked_until), the current time,
// whether the waiter is still registered (a waiter of a process that stalled past its
// lease may have been deleted), and how many live waiters are better than it. No row:
// the account has no row (deleted by hand).
//
// The current time is read before the lock is granted, so it may be early (never late),
// which only delays a grant; the new next_at reads the clock again, after the lock. The
// commit is asynchronous, as reserveSQL's.
const takeSQL = `
WITH lim AS (
	SELECT greatest(r.next_at, coalesce(r.blocked_until, r.next_at)) AS due, clock_timestamp() AS now
	FROM planfix_rate_limits r, (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
	WHERE r.account = $1
	FOR UPDATE OF r
), ranked AS (
	SELECT w.id, row_number() OVER (ORDER BY
		greatest(w.rank - floor(extract(epoch FROM lim.now - w.enqueued_at) * 1000000 / $4::bigint)::int, 0),
		w.chat_started_at NULLS LAST, w.enqueued_at, w.id) AS pos
	FROM planfix_rate_waiters w, lim
	WHERE w.account = $1 AND w.expires_at > lim.now
), granted AS (
	UPDATE planfix_rate_limits r SET next_at = clock_timestamp() + $3::bigint * interval '1 microsecond'
	FROM lim, ranked
	WHERE r.account = $1 AND ranked.id = $2 AND ranked.pos = 1 AND lim.due <= lim.now
	RETURNING r.next_at
), gone AS (
	DELETE FROM planfix_rate_waiters w USING granted WHERE w.id = $2
), kept AS (
	UPDATE planfix_rate_waiters w SET expires_at = greatest(lim.due, lim.now) + $5::bigint * interval '1 microsecond'
	FROM lim
	WHERE w.id = $2 AND NOT EXISTS (SELECT 1 FROM granted)
	RETURNING w.id
)
SELECT EXISTS (SELECT 1 FROM granted), lim.due, lim.now, EXISTS (SELECT 1 FROM kept),
	coalesce((SELECT pos - 1 FROM ranked WHERE id = $2), 0) FROM lim`

// waitPriority is Wait with priorities. The request registers as a waiter of the account
// (planfix_rate_waiters) with its class's rank (planfix.ClassOf), its chat's start
// (planfix.ChatOf) and the time it came, and tries for the slot when it is due: the try
// that finds the slot due takes it only if no live waiter of the account is better, in
// any process. Better is, in order: a lower rank (the class's, less one for every
// promotion step waited: PromoteAfter), an older chat (a waiter whose chat is not known
// comes after those whose chat is), an earlier arrival. A waiter with others ahead of it
// tries again when its turn would come if none of them left (a slot per waiter ahead);
// the best one when the slot is due, or a twentieth of the interval later when the slot
// is due and not yet taken (the best is about to take it). A waiter tries at least once a
// second (or an interval), also while the account is blocked: a block lifted by hand, or
// a waiter deleted as stale after a stall, is noticed.
//
// The slot is taken when it is due by the database clock, and the next one is an
// interval after that moment: so requests are at least an interval apart less the time
// an answer takes to reach the process (milliseconds); a late wake-up of the best waiter
// delays the slot, it never brings two requests closer. Nothing is reserved in advance,
// so a waiter has no slot to give up.
//
// Promotion counts from the waiter's registration: a request whose wait ends (its
// activity timed out: 10 minutes) and is retried registers again, from the start. With a
// minute a class, that takes a backlog of over six minutes of requests ahead of it at the
// top rank.
//
// A waiter is deleted when it takes the slot or its wait ends (ctx, an error). One whose
// process died stops counting when its lease runs out (5 s plus two intervals past the
// slot it waits for), so a crash holds the account up for that long at most.
//
// Errors and the deadline are as Wait's: ctx's error, at once when ctx's deadline falls
// before the slot; a database error through translate.
func (l *RateLimiter) waitPriority(ctx context.Context, account string) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	var chat *time.Time
	if t := planfix.ChatOf(ctx); !t.IsZero() {
		chat = &t
	}
	rank := planfix.ClassOf(ctx).Rank()
	lease := (5*time.Second + 2*l.interval).Microseconds()
	poll := max(l.interval/20, 5*time.Millisecond)
	recheck := max(l.interval, time.Second)

	var enqueued *time.Time
	register := func() (int64, error) {
		var id int64
		var at time.Time
		err := l.db.Pool.QueryRow(ctx, registerSQL, account, rank, chat, enqueued, lease).Scan(&at, &id)
		if err != nil {
			return 0, err
		}
		enqueued = &at
		return id, nil
	}
	id, err := register()
	if err != nil {
		return l.waitErr(ctx, err)
	}
	granted := false
	defer func() {
		if granted {
			return
		}
		// The wait ended without the slot: the waiter must not hold the others up.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = l.db.Pool.Exec(dctx, `DELETE FROM planfix_rate_waiters WHERE id = $1`, id)
	}()
	for {
		var due, now time.Time
		var alive bool
		var ahead int64
		err := l.db.Pool.QueryRow(ctx, takeSQL, account, id, l.interval.Microseconds(), l.promote.Microseconds(), lease).
			Scan(&granted, &due, &now, &alive, &ahead)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // the account's row was deleted: register again
			alive = false
		case err != nil:
			return l.waitErr(ctx, err)
		}
		if granted {
			return nil
		}
		if !alive {
			_, _ = l.db.Pool.Exec(ctx, `DELETE FROM planfix_rate_waiters WHERE id = $1`, id)
			if id, err = register(); err != nil {
				return l.waitErr(ctx, err)
			}
			continue
		}
		d := poll
		if due.After(now) {
			d = due.Sub(now)
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
				return fmt.Errorf("planfix request slot is %s away, past the deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
			}
		}
		if ahead > 0 {
			// Its turn is not before the slots of the waiters ahead of it: trying
			// sooner would only keep the account's row busy.
			d = max(d, 0) + time.Duration(ahead)*l.interval
		}
		if err := sleep(ctx, min(d, recheck)); err != nil {
			return err
		}
	}
}

func (l *RateLimiter) waitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("wait for a planfix request slot: %w", translate(err))
}
