//go:build !nodev

package main

import (
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

// sandboxCmd serves the sandbox (the Chatra and Planfix stand-ins) as a process of its
// own, for a multi-process test stack or a demo against separately run api and worker
// processes. It is a test double: production never starts it.
func sandboxCmd() *cobra.Command {
	var (
		addr     string
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve the Chatra and Planfix stand-ins (a test double; production never runs it)",
		Long: `Serves the sandbox alone: local stand-ins for Chatra's and Planfix's REST APIs (the
calls the bridge makes, with their paths, auth, payloads and errors) and the inspection and
fault API under /_sandbox (its state, faults, employees' comments). It is what ` + "`dev`" + ` runs
inside, as a process of its own for a stack of separate api and worker processes (the
topology test). An integration's chatra.apiUrl is <url>/chatra and planfix.accountUrl
<url>/planfix, with the sandbox's keys and token (` + "`chatrabridge dev`" + `'s demo integration).
It listens on 127.0.0.1 unless told otherwise: it answers anyone. Prints "sandbox ready <url>"
once it serves; SIGTERM or Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval == 0 {
				interval = -1 // Options: negative turns the limit off
			}
			s := sandbox.New(sandbox.Options{PlanfixInterval: interval})
			if err := s.Start(addr); err != nil {
				return fmt.Errorf("%w: stop that process or choose another --addr", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sandbox ready %s (Chatra %s, Planfix %s)\n", s.URL(), s.ChatraURL(), s.PlanfixURL())
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			<-ctx.Done()
			return s.Close()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8090", "address to listen on")
	cmd.Flags().DurationVar(&interval, "planfix-interval", time.Second, "least time between two Planfix requests of the token, as Planfix's limit (answered 429 when shorter); 0 turns the limit off")
	return cmd
}
