// Package background runs a process's loops (the janitor, the webhook inbox's forwarder,
// the waiting gauge) for the fx app's lifetime.
package background

import (
	"context"

	"go.uber.org/fx"
)

// Run starts run in a goroutine when the app starts; when it stops, run's context is
// cancelled and the stop waits for run to return (at most until the stop's own deadline).
func Run(lc fx.Lifecycle, run func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				run(ctx)
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-stop.Done():
				return stop.Err()
			}
		},
	})
}
