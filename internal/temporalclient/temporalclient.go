// Package temporalclient dials Temporal with the settings the temporal CLI and SDKs
// share (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, and the
// optional TOML profile), read by the SDK's contrib/envconfig.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/codec"
)

// Module provides a dialled client.Client, closed when the app stops. It needs
// client.Options (from Options, or from the embedded dev server under `dev`).
var Module = fx.Module("temporalclient",
	fx.Provide(New),
)

// Options reads the connection settings from the environment. Unset, the address is
// 127.0.0.1:7233 and the namespace "default".
func Options() (client.Options, error) {
	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal settings: %w", err)
	}
	return opts, nil
}

// Params are New's dependencies.
type Params struct {
	fx.In
	Options client.Options
	Logger  *slog.Logger
	Metrics client.MetricsHandler `optional:"true"`
	// Codec, when given, encodes and decodes every payload and failure.
	Codec *codec.Codec `optional:"true"`
	LC    fx.Lifecycle
}

// New dials Temporal, waiting up to 30 s for it to answer, and closes the client when the
// app stops. The error names the address and the variable to fix.
func New(p Params) (client.Client, error) {
	opts := p.Options
	opts.Logger = sdklog.NewStructuredLogger(p.Logger.With("component", "temporal-sdk"))
	if p.Metrics != nil {
		opts.MetricsHandler = p.Metrics
	}
	if opts.HostPort == "" {
		opts.HostPort = client.DefaultHostPort
	}
	if p.Codec != nil {
		codec.Apply(&opts, p.Codec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %q): %w; is it running? set TEMPORAL_ADDRESS", opts.HostPort, nsOrDefault(opts.Namespace), err)
	}
	p.LC.Append(fx.StopHook(c.Close))
	return c, nil
}

func nsOrDefault(ns string) string {
	if ns == "" {
		return client.DefaultNamespace
	}
	return ns
}
