package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/chatrabridge/chatrabridge/internal/admincli"
)

// integrationsCmd is `chatrabridge integrations ...`, the admin API from the command line
// (internal/admincli); --url and --token default to CHATRABRIDGE_URL and ADMIN_TOKEN.
func integrationsCmd() *cobra.Command {
	return admincli.Command(os.Getenv)
}
