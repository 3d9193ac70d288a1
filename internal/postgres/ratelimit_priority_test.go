package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/jackc/pgx/v5"
)

// waiter is one request of the ordering tests: its name, class, chat start (zero: not
// known) and the limiter (process) it waits in.
type waiter struct {
	name    string
	class   planfix.Class
	chat    time.Time
	limiter int
}

// queue holds account blocked, starts every waiter (in the order given, each registered
// before the next starts), lifts the block once all are registered, and returns the
// order in which they were let through. The order, not the time, is what is checked:
// slots are an interval apart, far more than a goroutine takes to record its grant.
func queue(t *testing.T, db *postgres.DB, limiters []*postgres.RateLimiter, account string, ws []waiter, between time.Duration) []string {
	t.Helper()
	// The waits have no deadline (one before the hour's block would fail them at once);
	// the test's own waits have.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := limiters[0].Block(ctx, account, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	errs := make(chan error, len(ws))
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx := planfix.WithPriority(ctx, w.class, w.chat)
			if err := limiters[w.limiter].Wait(wctx, account); err != nil {
				errs <- fmt.Errorf("%s: %w", w.name, err)
				return
			}
			mu.Lock()
			order = append(order, w.name)
			mu.Unlock()
		}()
		waitForWaiters(t, ctx, db, account, i+1)
		if between > 0 {
			time.Sleep(between)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE planfix_rate_limits SET blocked_until = NULL WHERE account = $1`, account); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return order
}

// waitForWaiters waits until account has n registered waiters.
func waitForWaiters(t *testing.T, ctx context.Context, db *postgres.DB, account string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var got int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM planfix_rate_waiters WHERE account = $1`, account).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d waiters registered, want %d", got, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Waiting requests go by class, then by the age of their chat (a chat not known last),
// then by arrival, whatever order they came in; and across processes: the waiters are
// spread over two limiters on two pools.
func TestRateLimiterPriorityOrder(t *testing.T) {
	ctx := context.Background()
	db1, url := postgrestest.New(t)
	db2, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	const interval = 100 * time.Millisecond
	limiters := []*postgres.RateLimiter{postgres.NewRateLimiter(db1, interval), postgres.NewRateLimiter(db2, interval)}

	base := time.Now().Add(-time.Hour)
	old, mid, young := base, base.Add(time.Minute), base.Add(2*time.Minute)
	ws := []waiter{
		{"low/old", planfix.ClassLow, old, 0},
		{"completion/young", planfix.ClassCompletion, young, 1},
		{"messages/young", planfix.ClassMessages, young, 0},
		{"setup/young", planfix.ClassSetup, young, 1},
		{"messages/unknown", planfix.ClassMessages, time.Time{}, 1},
		{"setup/old", planfix.ClassSetup, old, 0},
		{"messages/old", planfix.ClassMessages, old, 1},
		{"setup/mid", planfix.ClassSetup, mid, 0},
		{"setup/mid second", planfix.ClassSetup, mid, 1},
		{"completion/old", planfix.ClassCompletion, old, 0},
	}
	got := queue(t, db1, limiters, "order.planfix.com", ws, 0)
	want := []string{"setup/old", "setup/mid", "setup/mid second", "setup/young",
		"messages/old", "messages/young", "messages/unknown",
		"completion/old", "completion/young", "low/old"}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}

	// First come, first served: the order of arrival, whatever the class.
	fifo := []*postgres.RateLimiter{postgres.NewRateLimiter(db1, interval).FirstComeFirstServed(), postgres.NewRateLimiter(db2, interval).FirstComeFirstServed()}
	if fifo[0].Priorities() {
		t.Fatal("FirstComeFirstServed still has priorities")
	}
	got = fifoOrder(t, db1, fifo, "fifo.planfix.com", ws)
	var arrival []string
	for _, w := range ws {
		arrival = append(arrival, w.name)
	}
	if !slices.Equal(got, arrival) {
		t.Errorf("first come first served:\n got %q\nwant %q", got, arrival)
	}
}

// fifoOrder starts the waiters one after the other on a busy account (FIFO limiters
// reserve their slot as they come: the slot's order is the arrival's), each once the one
// before has its reservation in the store, and returns the order they were let through.
func fifoOrder(t *testing.T, db *postgres.DB, limiters []*postgres.RateLimiter, account string, ws []waiter) []string {
	t.Helper()
	ctx := context.Background()
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	var reserved time.Time // the account's next slot, as the last reservation left it
	for _, w := range ws {
		registered := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx := planfix.WithPriority(ctx, w.class, w.chat)
			// The reservation is made by the first statement of Wait; the slot it gets
			// is an interval after the one before, so the arrival order holds even if
			// the goroutine records late by less than an interval.
			close(registered)
			if err := limiters[w.limiter].Wait(wctx, account); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, w.name)
			mu.Unlock()
		}()
		<-registered
		reserved = waitReserved(t, db, account, reserved) // before the next comes
	}
	wg.Wait()
	return order
}

// waitReserved waits until account's next slot has moved past after (a reservation was
// made), and returns it.
func waitReserved(t *testing.T, db *postgres.DB, account string, after time.Time) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var next *time.Time
		err := db.Pool.QueryRow(ctx, `SELECT next_at FROM planfix_rate_limits WHERE account = $1`, account).Scan(&next)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if next != nil && next.After(after) {
			return *next
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no reservation of %s after %v", account, after)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// A waiting request is promoted one class for every promotion step it waited: an
// optional call that waited four steps goes before setups that just came; without
// promotion (a step of an hour) it goes after them. A low class still moves when the
// higher ones are idle: it is let through once they are served.
func TestRateLimiterPromotion(t *testing.T) {
	db, _ := postgrestest.New(t)
	const interval = 100 * time.Millisecond
	const step = 100 * time.Millisecond
	now := time.Now()
	ws := []waiter{
		{"low", planfix.ClassLow, now.Add(-3 * time.Minute), 0},
		{"setup 1", planfix.ClassSetup, now.Add(-2 * time.Minute), 0},
		{"setup 2", planfix.ClassSetup, now.Add(-time.Minute), 0},
	}
	// The low request waits five steps before the setups come: its rank is 0 by then,
	// and stays ahead of theirs however long they wait for the block to lift (a rank
	// never falls below 0, and among equal ranks its older chat goes first).
	t.Run("promoted", func(t *testing.T) {
		l := postgres.NewRateLimiter(db, interval).PromoteAfter(step)
		got := queueWithPause(t, db, l, "promoted.planfix.com", ws, 5*step)
		if want := []string{"low", "setup 1", "setup 2"}; !slices.Equal(got, want) {
			t.Errorf("order %q, want %q", got, want)
		}
	})
	t.Run("not yet", func(t *testing.T) {
		l := postgres.NewRateLimiter(db, interval).PromoteAfter(time.Hour)
		got := queueWithPause(t, db, l, "unpromoted.planfix.com", ws, 5*step)
		if want := []string{"setup 1", "setup 2", "low"}; !slices.Equal(got, want) {
			t.Errorf("order %q, want %q", got, want)
		}
	})
}

// queueWithPause is queue on one limiter, with a pause after the first waiter only (the
// ones after it come together).
func queueWithPause(t *testing.T, db *postgres.DB, l *postgres.RateLimiter, account string, ws []waiter, pause time.Duration) []string {
	t.Helper()
	// The waits have no deadline (one before the hour's block would fail them at once);
	// the test's own waits have.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := l.Block(ctx, account, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Wait(planfix.WithPriority(ctx, w.class, w.chat), account); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, w.name)
			mu.Unlock()
		}()
		waitForWaiters(t, ctx, db, account, i+1)
		if i == 0 {
			time.Sleep(pause)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE planfix_rate_limits SET blocked_until = NULL WHERE account = $1`, account); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	return order
}

// A waiter whose wait ends (its context) leaves the queue at once: it does not hold up
// the ones behind it.
func TestRateLimiterPriorityCancelLeaves(t *testing.T) {
	ctx := context.Background()
	db, _ := postgrestest.New(t)
	l := postgres.NewRateLimiter(db, 50*time.Millisecond)
	const account = "leave.planfix.com"
	if err := l.Block(ctx, account, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Wait(planfix.WithPriority(cctx, planfix.ClassSetup, time.Now()), account) }()
	waitForWaiters(t, ctx, db, account, 1)
	cancel()
	<-done
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM planfix_rate_waiters`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d waiters left after the wait was cancelled, want 0", n)
	}
	// A stale waiter (a process that died) stops counting when its lease runs out.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO planfix_rate_waiters (account, rank, enqueued_at, expires_at)
		VALUES ($1, 0, now() - interval '1 hour', now() - interval '1 second')`, account); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE planfix_rate_limits SET blocked_until = NULL WHERE account = $1`, account); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := l.Wait(wctx, account); err != nil {
		t.Fatalf("Wait behind a stale waiter: %v", err)
	}
}
