//go:build !nodev

package main

import (
	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge/internal/app"
)

// devStackCmds are the commands of the dev stack: the whole system in one process with an
// embedded Temporal server and Web UI, the sandbox, and the demo against them. A build with
// -tags nodev (the production image) leaves them and everything they link out.
func devStackCmds() []*cobra.Command {
	return []*cobra.Command{devCmd(), demoCmd(), sandboxCmd()}
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
