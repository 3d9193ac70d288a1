//go:build !nodev

package main

import (
	"github.com/spf13/cobra"

	"github.com/chatrabridge/chatrabridge/internal/demo"
)

// demoCmd is `chatrabridge demo`: a scripted chat against a running `chatrabridge dev`
// (internal/demo).
func demoCmd() *cobra.Command {
	o := demo.Options{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play a scripted chat against a running `chatrabridge dev` and print the resulting task",
		Long: `Plays a chat through the bridge's real webhook endpoints, with the sandbox standing in
for Chatra and Planfix: a visitor card, chatStarted with the visitor's details, two messages, a
message where the visitor introduces themselves, an employee's comment in the task followed by
the Planfix scenario's webhook, and chatTranscript. It prints each step, then the Planfix task
(name, status, description, comments), the message the visitor received in Chatra, and the
conversation's link in the Temporal Web UI.

Reads the webhook URLs that ` + "`chatrabridge dev`" + ` wrote to --data-dir/demo-webhooks.json, and
writes the run's result to --data-dir/demo-last.json. Each run uses new chat ids.

Exits 0 only if the task was created, got the visitor's messages as comments, the reply reached
the sandbox Chatra, and the task was completed; otherwise exits 1 naming the step that failed,
after printing the workflow's state query and pending activities.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			_, err := demo.Run(cmd.Context(), o)
			return err
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", ".chatrabridge", "data directory of the running `chatrabridge dev`")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", demo.DefaultTimeout, "give up after this long")
	return cmd
}
