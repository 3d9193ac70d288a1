// Package metrics owns the process's Prometheus registry: Go and process collectors, the
// Temporal SDK's metrics (through tally), the metrics the workflows record of their own
// (workflow.go), and whatever the other parts register on it. It is served at /metrics.
package metrics

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.uber.org/fx"
)

// Module provides *Registry and the Temporal SDK's client.MetricsHandler.
var Module = fx.Module("metrics",
	fx.Provide(New, func(r *Registry) client.MetricsHandler { return r.Temporal }),
	fx.Invoke(func(lc fx.Lifecycle, r *Registry) {
		lc.Append(fx.StopHook(func(context.Context) error { return r.Close() }))
	}),
)

// Registry is the process's metrics registry.
type Registry struct {
	*prometheus.Registry
	// Temporal is the SDK metrics handler reporting into this registry.
	Temporal client.MetricsHandler
	closer   io.Closer
}

// New returns a registry with the Go and process collectors and an SDK metrics handler.
// Close it to stop the SDK reporter.
func New(logger *slog.Logger) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer: reg,
		OnRegisterError: func(err error) {
			logger.Warn("temporal sdk metric not registered", "error", err)
		},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &tallyprom.DefaultSanitizerOpts,
	}, time.Second)
	return &Registry{
		Registry: reg,
		Temporal: newWorkflowHandler(reg, sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope))),
		closer:   closer,
	}
}

// Close flushes and stops the SDK reporter.
func (r *Registry) Close() error { return r.closer.Close() }
