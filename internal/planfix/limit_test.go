package planfix_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

// Two worker processes (two pools, two limiters) drive one Planfix account hard. The
// stand-in enforces the account's rate the way Planfix does (429 over it): it must never
// refuse a request, and every comment must land exactly once.
func TestTwoWorkersHoldTheAccountRateLimit(t *testing.T) {
	const (
		serverInterval  = 150 * time.Millisecond // the stand-in's "1 request per interval"
		limiterInterval = 180 * time.Millisecond // the bridge's, scaled like 1.2 s to 1 s
		goroutines      = 4
		commentsEach    = 3
	)
	ctx := context.Background()
	pf := sandbox.NewPlanfix("token")
	pf.SetRateInterval(serverInterval)
	srv := httptest.NewServer(pf)
	defer srv.Close()

	db1, url := postgrestest.New(t)
	db2, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	workers := []*planfix.Client{
		planfix.NewClient(planfix.Config{BaseURL: srv.URL + "/rest", Token: "token"}, srv.Client(), postgres.NewRateLimiter(db1, limiterInterval)),
		planfix.NewClient(planfix.Config{BaseURL: srv.URL + "/rest", Token: "token"}, srv.Client(), postgres.NewRateLimiter(db2, limiterInterval)),
	}
	task, err := workers[0].CreateTask(ctx, planfix.NewTask{TemplateID: 101, Name: "rate limit"})
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines*commentsEach)
	for w, c := range workers {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range commentsEach {
					text := fmt.Sprintf("worker %d goroutine %d comment %d", w, g, i)
					if _, err := c.AddTaskComment(ctx, task, planfix.NewComment{Description: text}); err != nil {
						errs <- fmt.Errorf("%s: %w", text, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	seen := map[string]int{}
	for _, c := range pf.Comments(task) {
		seen[c.Description]++
	}
	if want := 2 * goroutines * commentsEach; len(seen) != want {
		t.Errorf("%d distinct comments landed, want %d", len(seen), want)
	}
	for text, n := range seen {
		if n != 1 {
			t.Errorf("%q landed %d times", text, n)
		}
	}
	var times []time.Time
	for _, r := range pf.RequestLog() {
		if r.Status == 429 {
			t.Errorf("the account's limit refused %s %s", r.Method, r.Path)
		}
		times = append(times, r.Time)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	minGap := time.Hour
	for i := 1; i < len(times); i++ {
		minGap = min(minGap, times[i].Sub(times[i-1]))
	}
	t.Logf("%d requests, smallest gap at the server %v (its limit: one per %v)", len(times), minGap, serverInterval)
}
