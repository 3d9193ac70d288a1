package app_test

import (
	"log/slog"
	"testing"

	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/config"
)

// The real graphs of every subcommand resolve: every dependency is provided once.
func TestGraphsAreComplete(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminToken, cfg.SecretsKey = "test-admin-token", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	logger := slog.New(slog.DiscardHandler)
	graphs := map[string]fx.Option{
		"serve":            app.Production(cfg, logger, true, app.Role{API: true, Worker: true}),
		"api":              app.Production(cfg, logger, true, app.Role{API: true}),
		"worker":           app.Production(cfg, logger, true, app.Role{Worker: true}),
		"dev":              app.Dev(cfg, logger, app.DevOptions{DataDir: t.TempDir(), TemporalPort: 7233, UIPort: 8233, SandboxPort: 8090}),
		"dev --no-sandbox": app.Dev(cfg, logger, app.DevOptions{DataDir: t.TempDir(), TemporalPort: 7233, UIPort: 8233, NoSandbox: true}),
	}
	for name, g := range graphs {
		if err := fx.ValidateApp(g); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
