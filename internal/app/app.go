// Package app assembles the fx graphs behind the chatrabridge subcommands, so that cmd/
// only parses flags and tests can build and validate the real graphs.
package app

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/inbox"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/internal/temporalclient"
	"github.com/chatrabridge/chatrabridge/worker"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// Role says which sides a process runs.
type Role struct {
	API, Worker bool
}

// Base is what every long-running process has: configuration, logger, metrics, the
// store (migrated when migrate is true), the sealer of stored secrets (from SECRETS_KEY)
// with the integration store (also as chatrabridge.IntegrationService), the Planfix rate
// limiter shared through the store, and a Temporal client.
func Base(cfg config.Config, logger *slog.Logger, migrate bool) fx.Option {
	return fx.Options(
		fx.Supply(cfg, logger),
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.Provide(
			func(c config.Config) postgres.URL { return postgres.URL(c.DatabaseURL.Reveal()) },
			func(c config.Config) api.Addr { return api.Addr(c.HTTPAddr) },
			func(c config.Config) worker.TaskQueue { return worker.TaskQueue(c.TaskQueue) },
			func(c config.Config) (*secrets.Sealer, error) { return secrets.NewSealer(c.SecretsKey.Reveal()) },
			// The payload codec of every client and worker (and of the codec server).
			func(c config.Config) (*codec.Keys, error) {
				return codec.ParseKeys(c.PayloadKey.Reveal(), c.SecretsKey.Reveal())
			},
			func(k *codec.Keys, c config.Config) *codec.Codec { return codec.New(k, c.PayloadEncryption) },
			fx.Annotate(postgres.NewIntegrationStore, fx.As(fx.Self()), fx.As(new(chatrabridge.IntegrationService))),
			// One limiter per process over the shared table: Planfix's limit holds across
			// every worker and API process.
			func(c config.Config, db *postgres.DB) planfix.Limiter {
				l := postgres.NewRateLimiter(db, c.PlanfixInterval)
				if !c.PlanfixPriorities {
					l.FirstComeFirstServed()
				}
				return l
			},
		),
		fx.Supply(postgres.AutoMigrate(migrate)),
		metrics.Module,
		postgres.Module,
		temporalclient.Module,
	)
}

// Roles adds the API and/or the worker. Workers also run the store's janitor; every
// process of either role runs a forwarder of the webhook inbox.
func Roles(r Role) fx.Option {
	var opts []fx.Option
	if r.API {
		opts = append(opts, api.Module)
	}
	if r.Worker {
		opts = append(opts, worker.Module, postgres.Janitor)
	}
	if r.API || r.Worker {
		opts = append(opts, inbox.Module)
	}
	return fx.Options(opts...)
}

// Production is `serve`, `api` and `worker`: Temporal from the environment, whose
// namespace must have the workflows' search attributes (SearchAttributesCheck).
func Production(cfg config.Config, logger *slog.Logger, migrate bool, r Role) fx.Option {
	return fx.Options(
		Base(cfg, logger, migrate),
		fx.Provide(temporalclient.Options),
		SearchAttributesCheck,
		Roles(r),
	)
}

// SearchAttributesCheck makes sure, when the app starts, that the Temporal namespace has
// the search attributes of workflows.SearchAttributes: the missing ones are added where
// the server allows it; otherwise the start fails with one line that names them and the
// commands that create them. A namespace without them would refuse every conversation,
// so every webhook would fail. It provides the check to the API, whose /readyz names a
// problem that comes later. Placed before Roles, it runs before the API listens and the
// worker polls.
var SearchAttributesCheck = fx.Module("searchattributes",
	fx.Provide(func(c client.Client, o client.Options) *temporalclient.SearchAttributes {
		return temporalclient.NewSearchAttributes(c, o.Namespace, workflows.SearchAttributes())
	}),
	fx.Invoke(func(lc fx.Lifecycle, sa *temporalclient.SearchAttributes, logger *slog.Logger) {
		lc.Append(fx.StartHook(func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := sa.Ensure(ctx); err != nil {
				return err
			}
			logger.Debug("temporal search attributes present")
			return nil
		}))
	}),
)

// TemporalOptions supplies client options explicitly (dev server, tests).
func TemporalOptions(o client.Options) fx.Option {
	return fx.Supply(o)
}
