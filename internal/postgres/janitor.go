package postgres

import (
	"context"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/background"
)

// EffectsRetention is how long recorded side effects are kept. A record only matters
// while the activity that made the effect may still be retried: a reply is retried for a
// day at most (workflows' replyOptions), and no other activity retries for weeks.
const EffectsRetention = 30 * 24 * time.Hour

// HeldRepliesRetention is how long a held Planfix reply (HoldReply) is kept. A bridge's
// task gets its conversation within seconds, or once the worker and Temporal are back
// after an outage; a reply still untaken after a week was written in a task that is not
// the bridge's. A taken one is kept as long, for a retried save that takes it again.
const HeldRepliesRetention = 7 * 24 * time.Hour

// janitorEvery is how often the janitor runs.
const janitorEvery = time.Hour

// Janitor deletes what the store no longer needs: side effects older than
// EffectsRetention, held replies older than HeldRepliesRetention, Chatra chats and
// events older than ChatraRetention. It runs in every
// worker process, once at start and then hourly; several workers doing it at once only
// delete the same rows.
var Janitor = fx.Module("postgres-janitor", fx.Invoke(startJanitor))

func startJanitor(lc fx.Lifecycle, db *DB, logger *slog.Logger) {
	background.Run(lc, func(ctx context.Context) { runJanitor(ctx, db, logger, janitorEvery) })
}

func runJanitor(ctx context.Context, db *DB, logger *slog.Logger, every time.Duration) {
	for {
		n, err := db.DeleteEffectsBefore(ctx, time.Now().Add(-EffectsRetention))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logger.Warn("store janitor: delete old effects (retried in an hour)", "error", err)
		case n > 0:
			logger.Info("store janitor: deleted old effects", "count", n, "older_than", EffectsRetention.String())
		}
		n, err = db.DeleteHeldRepliesBefore(ctx, time.Now().Add(-HeldRepliesRetention))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logger.Warn("store janitor: delete old held replies (retried in an hour)", "error", err)
		case n > 0:
			logger.Info("store janitor: deleted old held replies (taken, or in tasks that are not the bridge's)", "count", n, "older_than", HeldRepliesRetention.String())
		}
		n, err = db.DeleteChatraBefore(ctx, time.Now().Add(-ChatraRetention))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logger.Warn("store janitor: delete old Chatra chats and events (retried in an hour)", "error", err)
		case n > 0:
			logger.Info("store janitor: deleted old Chatra chats and events", "count", n, "older_than", ChatraRetention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
