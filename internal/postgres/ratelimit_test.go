package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// TestRateLimiterSpacingAcrossProcesses runs two limiters on two separate pools (two
// processes, as far as PostgreSQL can tell) against one account and checks that the
// requests they let through are never closer than the interval.
func TestRateLimiterSpacingAcrossProcesses(t *testing.T) {
	t.Run("priorities", func(t *testing.T) { testRateLimiterSpacing(t, false) })
	t.Run("first come first served", func(t *testing.T) { testRateLimiterSpacing(t, true) })
}

func testRateLimiterSpacing(t *testing.T, fifo bool) {
	ctx := context.Background()
	db1, url := postgrestest.New(t)
	db2, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()

	const (
		interval   = 500 * time.Millisecond
		tolerance  = max(interval/10, postgres.MinLateness) + 5*time.Millisecond // the lateness Wait allows, plus recording slop
		goroutines = 3                                                           // per limiter
		waitsEach  = 2
	)
	limiters := []*postgres.RateLimiter{postgres.NewRateLimiter(db1, interval), postgres.NewRateLimiter(db2, interval)}
	if fifo {
		for _, l := range limiters {
			l.FirstComeFirstServed()
		}
	}
	const account = "acme.planfix.com"

	type grant struct {
		at      time.Time // local monotonic clock, when Wait returned
		limiter int
	}
	var (
		mu     sync.Mutex
		grants []grant
		errs   []error
		wg     sync.WaitGroup
	)
	start := make(chan struct{})
	for li, l := range limiters {
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range waitsEach {
					err := l.Wait(ctx, account)
					now := time.Now()
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else {
						grants = append(grants, grant{at: now, limiter: li})
					}
					mu.Unlock()
				}
			}()
		}
	}
	close(start)
	wg.Wait()

	if len(errs) > 0 {
		t.Fatalf("Wait failed %d times, first: %v", len(errs), errs[0])
	}
	want := len(limiters) * goroutines * waitsEach
	if len(grants) != want {
		t.Fatalf("got %d grants, want %d (a goroutine was lost)", len(grants), want)
	}
	slices.SortFunc(grants, func(a, b grant) int { return a.at.Compare(b.at) })
	perLimiter := map[int]int{}
	minGap := time.Hour
	for i, g := range grants {
		perLimiter[g.limiter]++
		if i == 0 {
			continue
		}
		gap := g.at.Sub(grants[i-1].at)
		minGap = min(minGap, gap)
		if gap < interval-tolerance {
			t.Errorf("grants %d and %d are %v apart, want at least %v (interval %v)", i-1, i, gap, interval-tolerance, interval)
		}
	}
	for li := range limiters {
		if perLimiter[li] != goroutines*waitsEach {
			t.Errorf("limiter %d got %d grants, want %d", li, perLimiter[li], goroutines*waitsEach)
		}
	}
	t.Logf("%d grants over %v, smallest gap %v", len(grants), grants[len(grants)-1].at.Sub(grants[0].at), minGap)
}

// TestRateLimiterBlock checks that Block pushes every later slot past the block, that a
// shorter block does not shorten it, that a wait whose deadline falls before its slot
// fails at once, and that other accounts are not affected.
//
// With priorities nothing is reserved by a wait (the slot is taken when it is due), so
// only first come first served has a reservation to check.
func TestRateLimiterBlock(t *testing.T) {
	t.Run("priorities", func(t *testing.T) { testRateLimiterBlock(t, false) })
	t.Run("first come first served", func(t *testing.T) { testRateLimiterBlock(t, true) })
}

func testRateLimiterBlock(t *testing.T, fifo bool) {
	ctx := context.Background()
	db, _ := postgrestest.New(t)
	const interval = 50 * time.Millisecond
	l := postgres.NewRateLimiter(db, interval)
	if fifo {
		l.FirstComeFirstServed()
	}
	const account = "blocked.planfix.com"

	if err := l.Wait(ctx, account); err != nil {
		t.Fatal(err)
	}
	var dbNow time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&dbNow); err != nil {
		t.Fatal(err)
	}
	until := dbNow.Add(time.Hour).Truncate(time.Microsecond)
	if err := l.Block(ctx, account, until); err != nil {
		t.Fatal(err)
	}
	if err := l.Block(ctx, account, until.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := l.Wait(wctx, account)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a blocked account = %v, want context.DeadlineExceeded", err)
	}

	var nextAt, blockedUntil time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT next_at, blocked_until FROM planfix_rate_limits WHERE account = $1`, account).
		Scan(&nextAt, &blockedUntil); err != nil {
		t.Fatal(err)
	}
	if !blockedUntil.Equal(until) {
		t.Errorf("blocked_until = %v, want %v (a shorter block must not shorten it)", blockedUntil, until)
	}
	if want := until.Add(interval); fifo && nextAt.Before(want) {
		t.Errorf("next_at = %v, want at least %v: the slot reserved during the block must follow it", nextAt, want)
	}

	// Another account is not blocked.
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	if err := l.Wait(octx, "other.planfix.com"); err != nil {
		t.Errorf("Wait on another account = %v, want nil", err)
	}
}

// TestRateLimiterCancel checks that a cancelled wait returns the context's error.
func TestRateLimiterCancel(t *testing.T) {
	ctx := context.Background()
	db, _ := postgrestest.New(t)
	l := postgres.NewRateLimiter(db, time.Second)
	const account = "cancel.planfix.com"
	if err := l.Block(ctx, account, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Wait(cctx, account) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Wait = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after its context was cancelled")
	}

	// An already cancelled context fails before anything is reserved or awaited.
	if err := l.Wait(cctx, "fresh.planfix.com"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestNewRateLimiterDefaultInterval(t *testing.T) {
	l := postgres.NewRateLimiter(nil, 0)
	if l.Interval() != postgres.DefaultPlanfixInterval {
		t.Fatalf("Interval() = %v, want %v", l.Interval(), postgres.DefaultPlanfixInterval)
	}
	if l := postgres.NewRateLimiter(nil, -time.Second); l.Interval() != postgres.DefaultPlanfixInterval {
		t.Fatalf("negative interval: Interval() = %v, want %v", l.Interval(), postgres.DefaultPlanfixInterval)
	}
}
