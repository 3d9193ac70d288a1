// Package api is the bridge's HTTP edge (Echo): Chatra's and Planfix's webhooks in,
// Temporal signals out; the admin API; health, readiness and metrics. It does no slow
// work: a webhook is answered as soon as Temporal has accepted its signal, or the inbox
// (internal/inbox) has kept it for Temporal.
package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/temporalclient"
)

// MaxBodyBytes is the largest request body accepted (413 above it): 1 MiB.
const MaxBodyBytes = 1 << 20

// Timeouts bound what one connection may hold of the server: a client that sends its
// headers or body slowly, reads the answer slowly, or keeps an idle connection open is
// cut off, so that held sockets cannot pile up.
type Timeouts struct {
	ReadHeader     time.Duration // the request's headers
	Read           time.Duration // the whole request, body included
	Write          time.Duration // from the end of the headers to the end of the answer
	Idle           time.Duration // a kept-alive connection between requests
	MaxHeaderBytes int           // the request line and headers
}

// DefaultTimeouts are the server's. Write allows for the slowest handler (an admin
// request that calls Planfix waits up to 2 minutes for its rate limit).
var DefaultTimeouts = Timeouts{
	ReadHeader:     10 * time.Second,
	Read:           30 * time.Second,
	Write:          150 * time.Second,
	Idle:           60 * time.Second,
	MaxHeaderBytes: 64 << 10,
}

// NewHTTPServer returns the http.Server that serves h with the timeouts t; a zero field
// of t takes DefaultTimeouts'.
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	d := DefaultTimeouts
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(t.ReadHeader, d.ReadHeader),
		ReadTimeout:       cmp.Or(t.Read, d.Read),
		WriteTimeout:      cmp.Or(t.Write, d.Write),
		IdleTimeout:       cmp.Or(t.Idle, d.Idle),
		MaxHeaderBytes:    cmp.Or(t.MaxHeaderBytes, d.MaxHeaderBytes),
	}
}

// Module provides *Server and serves it for the app's lifetime.
var Module = fx.Module("api",
	fx.Provide(New),
	fx.Invoke(requireAdminToken, serve, countWaiting),
)

// Addr is the address the server listens on, a distinct type so fx can provide it.
type Addr string

// Params are the server's dependencies.
type Params struct {
	fx.In
	DB       *postgres.DB
	Temporal client.Client
	Metrics  *metrics.Registry
	Logger   *slog.Logger
	Config   config.Config
	// Webhooks adjusts the webhooks (tests); the zero value is production's.
	Webhooks WebhookOptions `optional:"true"`
	// Conversations delivers webhooks to conversations and reads their state; nil means
	// conversation.Service on Temporal and DB (tests may give a fake).
	Conversations Conversations `optional:"true"`
	// Integrations is the admin API's store of integrations.
	Integrations *postgres.IntegrationStore
	// HTTPClient makes the admin API's calls to Chatra and Planfix (verify, and resolving
	// a completed status); nil means a client with DefaultOutboundTimeout.
	HTTPClient *http.Client `optional:"true"`
	// PlanfixLimiter spaces those Planfix calls; nil means postgres.NewRateLimiter(DB, 0),
	// the limit the workers share.
	PlanfixLimiter planfix.Limiter `optional:"true"`
	// SearchAttributes, when given, is checked by /readyz: a namespace without the
	// workflows' search attributes refuses every conversation.
	SearchAttributes *temporalclient.SearchAttributes `optional:"true"`
	// Codec, when given, is served as the codec server of the Web UI and the CLI
	// (/codec/encode, /codec/decode).
	Codec *codec.Codec `optional:"true"`
}

// readinessStore is what /readyz asks the store.
type readinessStore interface {
	Ping(ctx context.Context) error
	// InboxBacklog counts the webhooks waiting in the inbox for Temporal, and the oldest's time.
	InboxBacklog(ctx context.Context) (int64, time.Time, error)
}

// Server is the HTTP API.
type Server struct {
	Echo        *echo.Echo
	db          readinessStore
	temporal    client.Client
	logger      *slog.Logger
	addr        net.Addr
	metricsAddr net.Addr
	metrics     http.Handler
	webhooks    *webhooks
	admin       *admin
	waiting     *waitingGauge
	searchAttrs *temporalclient.SearchAttributes
	codec       *codecServer
}

// New builds the server and its routes. /metrics is among them unless
// Config.MetricsAddr serves it apart (MetricsHandler). The client's address in logs is
// the connection's, or, behind a proxy of Config.TrustedProxies, what its
// X-Forwarded-For says.
func New(p Params) *Server {
	conversations := p.Conversations
	if conversations == nil {
		conversations = newConversations(p)
	}
	s := &Server{db: p.DB, temporal: p.Temporal, logger: p.Logger, webhooks: newWebhooks(p, conversations), admin: newAdmin(p, conversations), waiting: newWaitingGauge(p), searchAttrs: p.SearchAttributes, codec: newCodecServer(p),
		metrics: promhttp.HandlerFor(p.Metrics, promhttp.HandlerOpts{})}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(p.Logger)
	e.IPExtractor = clientIP(p.Config.TrustedProxies)
	e.Use(middleware.Recover())
	e.Use(httpMetrics(p.Metrics))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: strconv.Itoa(MaxBodyBytes), Skipper: isPlanfixRoute}))
	s.Echo = e

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if p.Config.MetricsAddr == "" {
		e.GET("/metrics", echo.WrapHandler(s.metrics))
	}
	s.webhookRoutes(e)
	s.adminRoutes(e)
	s.codecRoutes(e)
	return s
}

// clientIP is how the server tells the client's address: the connection's, since any
// client can write X-Forwarded-For; the header's only when the connection comes from one
// of the trusted proxies (each proxy in its chain must be one).
func clientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// ServeHTTP makes the server an http.Handler (for httptest).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Echo.ServeHTTP(w, r) }

// MetricsHandler serves the Prometheus metrics (what /metrics serves).
func (s *Server) MetricsHandler() http.Handler { return s.metrics }

type serveParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Server    *Server
	Addr      Addr
	Config    config.Config
	// Timeouts of the server; the zero value is DefaultTimeouts (tests shorten them).
	Timeouts Timeouts `optional:"true"`
}

// serve serves the API on Addr, and the metrics on Config.MetricsAddr when set, for the
// app's lifetime.
func serve(p serveParams) {
	s := p.Server
	listen := func(addr, what, fix string, h http.Handler, set *net.Addr) {
		srv := NewHTTPServer(h, p.Timeouts)
		p.Lifecycle.Append(fx.Hook{
			OnStart: func(context.Context) error {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					return fmt.Errorf("%s cannot listen on %s: %w (is another process using it? set %s)", what, addr, err, fix)
				}
				*set = ln.Addr()
				s.logger.Info(what+" listening", "addr", ln.Addr().String())
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						s.logger.Error(what+" stopped", "error", err)
					}
				}()
				return nil
			},
			OnStop: srv.Shutdown,
		})
	}
	listen(string(p.Addr), "HTTP API", "HTTP_ADDR", s, &s.addr)
	if a := p.Config.MetricsAddr; a != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics)
		listen(a, "metrics", "METRICS_ADDR", mux, &s.metricsAddr)
	}
}

// Addr is the address the server listens on once started (useful with port 0).
func (s *Server) Addr() net.Addr { return s.addr }

// MetricsAddr is the address /metrics is served on apart (Config.MetricsAddr), once
// started; nil when it is served with the API.
func (s *Server) MetricsAddr() net.Addr { return s.metricsAddr }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// InboxBacklogBound is the number of webhooks waiting in the inbox for Temporal beyond
// which /readyz names the backlog.
const InboxBacklogBound = 100

// readyz answers 200 when PostgreSQL and Temporal both answer (and Temporal's namespace
// has the search attributes, when Params.SearchAttributes is given), else 503 naming
// which does not and, for missing search attributes, them and the command that creates
// them. Beyond InboxBacklogBound webhooks waiting in the inbox, checks.inbox names the
// backlog ("250 webhooks waiting for Temporal, the oldest since ..."); the backlog alone
// does not make the process unready (it is what keeps webhooks answered 200).
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "temporal": "ok"}
	ready := true
	if err := s.db.Ping(ctx); err != nil {
		checks["postgres"], ready = "unreachable", false
		s.logger.Warn("readiness: postgres", "error", err)
	}
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"], ready = "unreachable", false
		s.logger.Warn("readiness: temporal", "error", err)
	} else if s.searchAttrs != nil {
		if err := s.searchAttrs.Check(ctx); temporalclient.IsMissing(err) {
			checks["temporal"], ready = err.Error(), false
		} else if err != nil {
			checks["temporal"], ready = "unreachable", false
			s.logger.Warn("readiness: temporal search attributes", "error", err)
		}
	}
	if checks["postgres"] == "ok" {
		checks["inbox"] = "ok"
		n, oldest, err := s.db.InboxBacklog(ctx)
		switch {
		case err != nil:
			checks["inbox"] = "unknown"
			s.logger.Warn("readiness: webhook inbox", "error", err)
		case n > InboxBacklogBound:
			checks["inbox"] = fmt.Sprintf("%d webhooks waiting for Temporal, the oldest since %s", n, oldest.UTC().Format(time.RFC3339))
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ready, "checks": checks})
}

// httpMetrics counts requests and their durations by route (not raw path, so ids and
// tokens in URLs never become label values).
func httpMetrics(reg *metrics.Registry) echo.MiddlewareFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatrabridge_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chatrabridge_http_request_duration_seconds", Help: "HTTP request durations by route.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	reg.MustRegister(requests, duration)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err) // write the error answer now, so its status is counted
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			label := strconv.Itoa(c.Response().Status)
			requests.WithLabelValues(route, c.Request().Method, label).Inc()
			duration.WithLabelValues(route, c.Request().Method).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}
