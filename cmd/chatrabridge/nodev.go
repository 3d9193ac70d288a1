//go:build nodev

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// devStackCmds, in a production build (-tags nodev), answers the dev stack's commands with
// what to run instead, rather than cobra's bare "unknown command".
func devStackCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, name := range []string{"dev", "demo", "sandbox"} {
		cmds = append(cmds, &cobra.Command{
			Use:                name,
			Short:              "Not in this build: the production build (-tags nodev) has no dev stack",
			Hidden:             true,
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return errors.New(name + " is not in this binary: it is the production build (-tags nodev), without the dev stack; " +
					"use a build without that tag (go run ./cmd/chatrabridge " + name + ", or make dev)")
			},
		})
	}
	return cmds
}
