package planfix_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// A long caller deadline (an activity's) does not let one hung request stall it: each
// exchange is bounded by Config.Timeout, and the failure is retryable.
func TestHungRequestIsBoundedInsideALongDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	c := planfix.NewClient(planfix.Config{BaseURL: srv.URL + "/rest", Token: "t", Timeout: 200 * time.Millisecond}, srv.Client(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Ping(ctx) }()
	select {
	case err := <-done:
		if err == nil || !planfix.IsRetryable(err) {
			t.Fatalf("hung request: %v, want a retryable error", err)
		}
		if ctx.Err() != nil {
			t.Fatal("the caller's deadline ran out: the request was not bounded by Config.Timeout")
		}
	case <-ctx.Done():
		t.Fatal("request still hanging when the caller's deadline ran out")
	}
}
