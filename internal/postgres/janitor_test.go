package postgres_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// The janitor deletes the effects older than EffectsRetention and the held replies older
// than HeldRepliesRetention, and keeps the others.
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
	for _, comment := range []int64{1, 2} {
		if err := db.HoldReply(ctx, "shop", 42, comment); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE held_replies SET received_at = $1 WHERE comment_id = 1`,
		time.Now().Add(-postgres.HeldRepliesRetention-time.Hour)); err != nil {
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
		var oldHeld int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM held_replies WHERE comment_id = 1`).Scan(&oldHeld); err != nil {
			t.Fatal(err)
		}
		if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND && oldHeld == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old effect (%v) or the old held reply (%d) is still there", err, oldHeld)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if _, err := db.Effect(ctx, "shop", "recent"); err != nil {
		t.Errorf("the recent effect was deleted too: %v", err)
	}
	rows, _ := db.Pool.Query(ctx, `SELECT comment_id FROM held_replies ORDER BY comment_id`)
	held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || !slices.Equal(held, []int64{2}) {
		t.Errorf("held replies after the janitor: %v, %v; want only the recent one [2]", held, err)
	}
}
