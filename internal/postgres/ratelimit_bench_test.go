package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// BenchmarkRateLimiterThroughput has 32 goroutines wait on one account for a second at
// the bench's 5 ms interval (an ideal limiter lets 200 through) and reports the grants
// per second and the slots reserved per grant (a slot is given up when Wait cannot be
// sure it returned within its allowed lateness after it). It measures this machine and
// asserts nothing: go test -run '^$' -bench RateLimiterThroughput ./internal/postgres
// With priorities nothing is reserved ahead: slots/grant is then the time the grants took
// in intervals, per grant.
func BenchmarkRateLimiterThroughput(b *testing.B) {
	b.Run("priorities", func(b *testing.B) { benchmarkRateLimiterThroughput(b, false) })
	b.Run("fifo", func(b *testing.B) { benchmarkRateLimiterThroughput(b, true) })
}

func benchmarkRateLimiterThroughput(b *testing.B, fifo bool) {
	ctx := context.Background()
	db, _ := postgrestest.New(b)
	const (
		interval   = 5 * time.Millisecond
		goroutines = 32
		window     = time.Second
		account    = "bench.planfix.com"
	)
	l := postgres.NewRateLimiter(db, interval)
	if fifo {
		l.FirstComeFirstServed()
	}
	for b.Loop() {
		if _, err := db.Pool.Exec(ctx, `DELETE FROM planfix_rate_limits`); err != nil {
			b.Fatal(err)
		}
		var grants atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < window {
					if err := l.Wait(ctx, account); err != nil {
						b.Error(err)
						return
					}
					grants.Add(1)
				}
			}()
		}
		wg.Wait()
		span := time.Since(start)
		// Every reservation moved next_at one interval on, and the waiters kept the row
		// busy from the start: the time it moved over counts the slots reserved.
		var reserved float64
		if err := db.Pool.QueryRow(ctx, `SELECT extract(epoch FROM (next_at - $1::timestamptz)) FROM planfix_rate_limits`, start).Scan(&reserved); err != nil {
			b.Fatal(err)
		}
		slots := reserved / interval.Seconds()
		b.ReportMetric(float64(grants.Load())/span.Seconds(), "grants/s")
		b.ReportMetric(slots/float64(grants.Load()), "slots/grant")
	}
}
