package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The real fx graph of `serve`, on a real Temporal server and PostgreSQL: health,
// readiness, metrics, and readiness turning 503 (naming Temporal) when Temporal goes.
func TestServeGraphHealthReadinessMetrics(t *testing.T) {
	ctx := context.Background()
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop()
		}
	}()
	_, dbURL := postgrestest.New(t)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.HTTPAddr, cfg.TaskQueue = secrets.String(dbURL), "127.0.0.1:0", "api-test"
	cfg.AdminToken, cfg.SecretsKey = "test-admin-token", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

	var s *api.Server
	a := fxtest.New(t,
		app.Base(cfg, slog.New(slog.DiscardHandler), true),
		app.TemporalOptions(client.Options{HostPort: srv.Address()}),
		app.Roles(app.Role{API: true, Worker: true}),
		fx.Populate(&s),
	)
	a.RequireStart()
	defer a.RequireStop()
	base := "http://" + s.Addr().String()

	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz = %d %s", code, body)
	}
	code, body := get(t, base+"/readyz")
	if code != 200 {
		t.Fatalf("readyz = %d %s", code, body)
	}
	// The worker polls, so the SDK's metrics appear; the HTTP metrics count our requests.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, m := get(t, base+"/metrics")
		if strings.Contains(m, "temporal_") && strings.Contains(m, `chatrabridge_http_requests_total{method="GET",route="/readyz",status="200"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack temporal_ or http series:\n%.2000s", m)
		}
		time.Sleep(500 * time.Millisecond)
	}

	code, body = get(t, base+"/nope")
	var e api.ErrorBody
	if code != 404 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "not_found" {
		t.Fatalf("unknown route = %d %s", code, body)
	}

	srv.Stop()
	stopped = true
	code, body = get(t, base+"/readyz")
	var ready struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatal(err)
	}
	if code != 503 || ready.Ready || ready.Checks["temporal"] == "ok" || ready.Checks["postgres"] != "ok" {
		t.Fatalf("readyz without temporal = %d %s", code, body)
	}
}

// Every timeout of the server is set (a zero one would let slow or idle clients hold
// sockets forever), and a zero field of Timeouts takes the default.
func TestHTTPServerTimeouts(t *testing.T) {
	srv := api.NewHTTPServer(http.NotFoundHandler(), api.Timeouts{Idle: time.Second})
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout != time.Second ||
		srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Fatalf("server %+v", srv)
	}
	if srv.ReadTimeout > time.Minute || srv.ReadHeaderTimeout > srv.ReadTimeout || srv.WriteTimeout < 2*time.Minute {
		t.Errorf("read %v, header %v, write %v: reads bounded, writes allowing the slowest handler", srv.ReadTimeout, srv.ReadHeaderTimeout, srv.WriteTimeout)
	}
}
