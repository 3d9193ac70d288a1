// Package api is the bridge's HTTP edge (Echo): Chatra's and Planfix's webhooks in,
// Temporal signals out; the admin API; health, readiness and metrics. It does no slow
// work: a webhook is answered as soon as Temporal has accepted its signal.
package api

import (
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

	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// MaxBodyBytes is the largest request body accepted (413 above it).
const MaxBodyBytes = 1 << 20

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
	// Integrations is the admin API's store of integrations.
	Integrations *postgres.IntegrationStore
	// HTTPClient makes the admin API's calls to Chatra and Planfix (verify, and resolving
	// a completed status); nil means a client with DefaultOutboundTimeout.
	HTTPClient *http.Client `optional:"true"`
	// PlanfixLimiter spaces those Planfix calls; nil means postgres.NewRateLimiter(DB, 0),
	// the limit the workers share.
	PlanfixLimiter planfix.Limiter `optional:"true"`
}

// Server is the HTTP API.
type Server struct {
	Echo     *echo.Echo
	db       *postgres.DB
	temporal client.Client
	logger   *slog.Logger
	addr     net.Addr
	webhooks *webhooks
	admin    *admin
	waiting  *waitingGauge
}

// New builds the server and its routes.
func New(p Params) *Server {
	s := &Server{db: p.DB, temporal: p.Temporal, logger: p.Logger, webhooks: newWebhooks(p), admin: newAdmin(p), waiting: newWaitingGauge(p)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(p.Logger)
	e.Use(middleware.Recover())
	e.Use(httpMetrics(p.Metrics))
	e.Use(middleware.BodyLimit("1M"))
	s.Echo = e

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(p.Metrics, promhttp.HandlerOpts{})))
	s.webhookRoutes(e)
	s.adminRoutes(e)
	return s
}

// ServeHTTP makes the server an http.Handler (for httptest).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Echo.ServeHTTP(w, r) }

func serve(lc fx.Lifecycle, s *Server, addr Addr) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", string(addr))
			if err != nil {
				return fmt.Errorf("HTTP API cannot listen on %s: %w (is another process using it? set HTTP_ADDR)", addr, err)
			}
			s.addr = ln.Addr()
			s.logger.Info("http api listening", "addr", ln.Addr().String())
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					s.logger.Error("http api stopped", "error", err)
				}
			}()
			return nil
		},
		OnStop: srv.Shutdown,
	})
}

// Addr is the address the server listens on once started (useful with port 0).
func (s *Server) Addr() net.Addr { return s.addr }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when PostgreSQL and Temporal both answer, else 503 naming which
// does not.
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
