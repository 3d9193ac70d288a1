package postgres

// Planfix allows one request per second per account, and the bridge runs any number of
// worker processes against one account, so the limit must be held across processes. It is
// held here, in PostgreSQL, which every process already shares: no extra service (Redis, a
// leader process) to run, and one statement per request is cheap next to a Planfix call
// that must anyway wait its turn.
//
// The table planfix_rate_limits has one row per account: next_at, the earliest time the
// next request may go, and blocked_until, set when Planfix reported its daily limit. Wait
// reserves a slot with one atomic upsert (the row lock orders concurrent callers, across
// processes) and then sleeps until it. Times come from the database clock
// (clock_timestamp), never from the local one, so processes whose clocks disagree still
// keep the spacing.
//
// Which request goes next matters as much as the spacing: on a busy site the account's
// requests queue, and a customer waiting for a task should not wait behind ten other
// chats' contact updates. With priorities (the default) a request waiting for a slot
// registers in planfix_rate_waiters with its class (planfix.Class.Rank), the start of its
// chat (planfix.ChatOf) and when it came, and a slot goes to the best live waiter of the
// account, in whichever process: the lowest rank, then the oldest chat, then the first to
// come. See WaitPriority.

import (
	"context"
	"fmt"
	"time"
)

// DefaultPlanfixInterval is the spacing NewRateLimiter uses for an interval <= 0: Planfix's
// one request per second with a margin, so that requests stay more than a second apart
// even after the lateness Wait allows (a tenth of the interval) and some network jitter.
const DefaultPlanfixInterval = 1200 * time.Millisecond

// MinLateness is the least lateness Wait allows after a slot, whatever the interval: the
// reservation's round trip and the timer's wake-up take milliseconds, and tens of them
// on a busy machine, so a tenth of a short interval (0.5 ms of the bench's 5 ms) could
// seldom be met: every wait would give its slot up, reserve another behind all the
// others, and be late again, and the requests let through would fall to a few a second
// (docs/BENCHMARKS.md, "task"). It leaves intervals of 500 ms and more (production's
// 1.2 s keeps its 120 ms) as they were; shorter ones serve tests and the bench.
const MinLateness = 50 * time.Millisecond

// RateLimiter spaces requests to each account at least interval apart, across every
// process that uses the same database. It implements planfix.Limiter and is safe for
// concurrent use.
type RateLimiter struct {
	db       *DB
	interval time.Duration
	fifo     bool
	promote  time.Duration
}

// DefaultPromotion is how long a waiting request waits before it is served as if its
// class were one better (PromoteAfter): a request of the lowest class (4) ranks with the
// setup of chats (1) after three of them, and before every class after four, so it goes
// within four minutes and the requests ahead of it then.
const DefaultPromotion = time.Minute

// NewRateLimiter returns a limiter on db's planfix_rate_limits table that lets one
// request per interval through for each account. An interval <= 0 means
// DefaultPlanfixInterval.
func NewRateLimiter(db *DB, interval time.Duration) *RateLimiter {
	if interval <= 0 {
		interval = DefaultPlanfixInterval
	}
	return &RateLimiter{db: db, interval: interval, promote: DefaultPromotion}
}

// FirstComeFirstServed turns priorities off: slots are handed out in the order the
// database sees the reservations, whatever the request (the limiter before priorities;
// the benchmark compares the two). It returns l.
func (l *RateLimiter) FirstComeFirstServed() *RateLimiter {
	l.fifo = true
	return l
}

// PromoteAfter sets how long a request waits before it ranks one class better, and
// again after each such time (DefaultPromotion when d <= 0). It returns l.
func (l *RateLimiter) PromoteAfter(d time.Duration) *RateLimiter {
	if d <= 0 {
		d = DefaultPromotion
	}
	l.promote = d
	return l
}

// Priorities reports whether l serves by class and chat age (not FirstComeFirstServed).
func (l *RateLimiter) Priorities() bool { return !l.fifo }

// Interval returns the spacing the limiter keeps.
func (l *RateLimiter) Interval() time.Duration { return l.interval }

// reserveSQL takes the next free slot of an account: the latest of the row's next_at, the
// current time and blocked_until, and moves next_at one interval past it. It returns the
// slot and the current time, both from the database clock. The commit is asynchronous
// (set_config is local to the statement's transaction): durability buys nothing here, a
// reservation lost in a database crash at worst lets one request through early, and the
// fsync it saves is most of the statement's latency, which Wait must otherwise allow for.
const reserveSQL = `
INSERT INTO planfix_rate_limits AS r (account, next_at)
SELECT $1, clock_timestamp() + $2::bigint * interval '1 microsecond'
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
ON CONFLICT (account) DO UPDATE SET
	next_at = greatest(r.next_at, clock_timestamp(), coalesce(r.blocked_until, clock_timestamp()))
	          + $2::bigint * interval '1 microsecond'
RETURNING next_at - $2::bigint * interval '1 microsecond', clock_timestamp()`

// Wait lets one request to account through, at least interval after the one before in
// every process together. With priorities (the default) it is waitPriority. After
// FirstComeFirstServed it reserves the next request slot of account and sleeps until it
// comes, so that the calls that Wait lets through for one account, in all processes
// together, are at least nine tenths of the interval apart (DefaultPlanfixInterval
// allows for that); for an interval under 500 ms, at least the interval less
// MinLateness. Slots are handed out in
// the order the database sees the reservations, exactly interval apart.
//
// Wait never returns before its slot; it may return later (the reservation's answer is
// slow, or the process wakes late), which would bring its request close to the next
// slot's. So when it cannot be sure it returns within a tenth of the interval (at least
// MinLateness) after its slot, it gives the slot up and reserves another. A slot given
// up, or reserved by a wait that is abandoned, goes unused, which only spaces later
// requests more; but the new slot is behind every slot reserved meanwhile, so a lateness
// the machine cannot meet would make waiters give up slot after slot while requests
// queue (hence the floor).
//
// When ctx ends first, Wait returns ctx's error at once, or without sleeping when ctx's
// deadline falls before the slot. Reservations are not capped: while the account is
// blocked (Block) or many callers queue, a slot may be far away (after a daily-limit
// block, up to an hour), and Wait sleeps until it, because keeping the limit comes first;
// the caller bounds the wait with ctx's deadline.
//
// Errors: ctx's error, or a database error passed through translate (EUNAVAILABLE when
// the database cannot be reached).
func (l *RateLimiter) Wait(ctx context.Context, account string) error {
	if !l.fifo {
		return l.waitPriority(ctx, account)
	}
	maxLate := max(l.interval/10, MinLateness)
	for {
		start := time.Now()
		var slot, now time.Time
		err := l.db.Pool.QueryRow(ctx, reserveSQL, account, l.interval.Microseconds()).Scan(&slot, &now)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reserve planfix request slot: %w", translate(err))
		}
		// The database read its clock at some local instant between start and now, so
		// the slot began (locally) between start+d and time.Now()+d. Sleeping d from now
		// never ends early.
		d := max(slot.Sub(now), 0)
		if d > 0 {
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
				return fmt.Errorf("planfix request slot is %s away, past the deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
			}
			if err := sleep(ctx, d); err != nil {
				return err
			}
		}
		if late := time.Since(start) - d; late <= maxLate {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Block keeps every Wait for account, in every process, from returning before until. A
// block never shortens an existing one. Slots already reserved before until are not
// recalled.
func (l *RateLimiter) Block(ctx context.Context, account string, until time.Time) error {
	_, err := l.db.Pool.Exec(ctx, `
		INSERT INTO planfix_rate_limits AS r (account, blocked_until) VALUES ($1, $2)
		ON CONFLICT (account) DO UPDATE SET
			blocked_until = greatest(r.blocked_until, EXCLUDED.blocked_until)`,
		account, until)
	if err != nil {
		return fmt.Errorf("block planfix account: %w", translate(err))
	}
	return nil
}

// sleep waits d, or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
