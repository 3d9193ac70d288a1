// Command chatrabridge connects Chatra (website live chat) to Planfix (tasks and CRM),
// each chat a durable Temporal workflow. See README.md.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

func main() {
	if err := root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "chatrabridge:", oneLine(err))
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "chatrabridge",
		Short:         "Chatra live chat to Planfix tasks, each chat a durable Temporal workflow",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(devCmd(), serveCmd("serve", app.Role{API: true, Worker: true}),
		serveCmd("api", app.Role{API: true}), serveCmd("worker", app.Role{Worker: true}), migrateCmd(), healthcheckCmd())
	cmd.AddCommand(integrationsCmd(), demoCmd(), sandboxCmd(), searchKeyCmd())
	return cmd
}

// envHelp is the environment section of every --help.
func envHelp(names ...string) string {
	var b strings.Builder
	b.WriteString("\nEnvironment (default in brackets):\n")
	for _, v := range config.Vars {
		if len(names) > 0 && !contains(names, v.Name) {
			continue
		}
		def := v.Default
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(&b, "  %-32s %s [%s]\n", v.Name, v.Help, def)
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func loadConfig() (config.Config, error) {
	return config.Load(os.Getenv)
}

func devCmd() *cobra.Command {
	o := app.DevOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process for a laptop",
		Long: `Runs everything in one process: an embedded Temporal server (SQLite under --data-dir,
so a restart keeps every workflow) with the custom search attributes registered, the Temporal
Web UI, the worker, the HTTP API and the sandbox (local stand-ins for Chatra's and Planfix's
APIs, a test double on 127.0.0.1:--sandbox-port). Creates the database if it is missing and
migrates it. The secrets key and the admin token are generated once into --data-dir unless set.
Creates (or resets) the integration "demo" wired to the sandbox and prints its webhook URLs:
their tokens are new at every start (also written to --data-dir/demo-webhooks.json).
Ctrl-C stops it cleanly.` + envHelp("DATABASE_URL", "HTTP_ADDR", "PUBLIC_URL", "ADMIN_TOKEN, ADMIN_TOKEN_FILE", "SECRETS_KEY, SECRETS_KEY_FILE", "TASK_QUEUE", "LOG_LEVEL", "LOG_FORMAT"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			if cfg, err = app.DevConfig(cfg, o.DataDir); err != nil {
				return err
			}
			if err := app.DevPreflight(cmd.Context(), cfg, o); err != nil {
				return err
			}
			o.Out = cmd.OutOrStdout()
			return run(fx.New(app.Dev(cfg, cfg.Logger(), o)))
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", ".chatrabridge", "directory for Temporal's SQLite file and the generated keys")
	cmd.Flags().IntVar(&o.TemporalPort, "temporal-port", 7233, "port of the embedded Temporal frontend (gRPC)")
	cmd.Flags().IntVar(&o.UIPort, "ui-port", 8233, "port of the Temporal Web UI")
	cmd.Flags().IntVar(&o.SandboxPort, "sandbox-port", 8090, "port of the sandbox (the Chatra and Planfix stand-ins) on 127.0.0.1")
	cmd.Flags().BoolVar(&o.NoSandbox, "no-sandbox", false, "run without the sandbox and the demo integration")
	return cmd
}

func serveCmd(name string, role app.Role) *cobra.Command {
	short := map[string]string{
		"serve":  "Run the API and the worker against an external Temporal and PostgreSQL",
		"api":    "Run only the HTTP API (webhooks, admin API, health, metrics)",
		"worker": "Run only the Temporal worker (conversation workflows and activities)",
	}[name]
	migrate := true
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Long: short + `.

Connects to Temporal with the same settings as the temporal CLI (TEMPORAL_ADDRESS, ...,
or a TOML profile via TEMPORAL_CONFIG_FILE/TEMPORAL_PROFILE) and to PostgreSQL at DATABASE_URL.
Applies pending database migrations at start unless --migrate=false (safe with many
processes: migrations take a lock). Checks at start that the Temporal namespace has the
conversations' search attributes, adding the missing ones where the server allows it, and
otherwise stops, naming them and the commands that create them (temporal CLI, tcld).` + envHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			return run(fx.New(app.Production(cfg, cfg.Logger(), migrate, role)))
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", true, "apply pending database migrations at start")
	return cmd
}

func migrateCmd() *cobra.Command {
	createDB := false
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Long:  "Applies the embedded SQL migrations to DATABASE_URL (idempotent)." + envHelp("DATABASE_URL"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if createDB {
				if err := postgres.EnsureDatabase(ctx, cfg.DatabaseURL.Reveal()); err != nil {
					return err
				}
			}
			db, err := postgres.Open(ctx, cfg.DatabaseURL.Reveal())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.Migrate(ctx); err != nil {
				return err
			}
			fmt.Println("database is up to date")
			return nil
		},
	}
	cmd.Flags().BoolVar(&createDB, "create-db", false, "create the database first if it does not exist")
	return cmd
}

// run starts the app, waits for Ctrl-C/SIGTERM (or a fatal error), then stops it.
func run(a *fx.App) error {
	if err := a.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(context.Background(), a.StartTimeout())
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return err
	}
	sig := <-a.Wait()
	stopCtx, cancel2 := context.WithTimeout(context.Background(), a.StopTimeout())
	defer cancel2()
	if err := a.Stop(stopCtx); err != nil {
		return err
	}
	if sig.ExitCode != 0 {
		return fmt.Errorf("stopped after a fatal error (exit code %d)", sig.ExitCode)
	}
	return nil
}

// oneLine reduces fx's wrapped errors to the cause a user can act on.
func oneLine(err error) string {
	if root := dig.RootCause(err); root != nil {
		err = root
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// healthcheckCmd probes the local API's /healthz, for container health checks in images
// without curl.
func healthcheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "healthcheck",
		Short:  "Exit 0 when the local HTTP API answers /healthz",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			_, port, err := net.SplitHostPort(cfg.HTTPAddr)
			if err != nil {
				return fmt.Errorf("HTTP_ADDR=%q: %w", cfg.HTTPAddr, err)
			}
			c := http.Client{Timeout: 3 * time.Second}
			resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/healthz answered %d", resp.StatusCode)
			}
			return nil
		},
	}
}
