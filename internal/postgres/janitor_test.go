package postgres_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// The janitor deletes the effects older than EffectsRetention and keeps the others.
func TestJanitorDeletesOldEffects(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	for _, k := range []string{"old", "recent"} {
		if err := db.RecordEffect(ctx, "shop", k, "r"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE effects SET created_at = $1 WHERE key = 'old'`,
		time.Now().Add(-postgres.EffectsRetention-time.Hour)); err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		postgres.RunJanitor(jctx, db, slog.New(slog.DiscardHandler), 10*time.Millisecond)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := db.Effect(ctx, "shop", "old")
		if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old effect is still there: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if _, err := db.Effect(ctx, "shop", "recent"); err != nil {
		t.Errorf("the recent effect was deleted too: %v", err)
	}
}
