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
	cmd.AddCommand(serveCmd("serve", app.Role{API: true, Worker: true}),
		serveCmd("api", app.Role{API: true}), serveCmd("worker", app.Role{Worker: true}), migrateCmd(), healthcheckCmd())
	cmd.AddCommand(integrationsCmd(), searchKeyCmd())
	// The dev stack (dev, demo, sandbox): absent from a build with -tags nodev.
	cmd.AddCommand(devStackCmds()...)
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
