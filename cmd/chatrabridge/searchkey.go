package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chatrabridge/chatrabridge/internal/codec"
)

// searchKeyCmd prints what to search for when CUSTOMER_SEARCH=hash: the keyed hash of an
// email or a name, as the conversations' search attributes hold it.
func searchKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "search-key <email or name>",
		Short: "Print the CustomerEmail/CustomerName value to search for when CUSTOMER_SEARCH=hash",
		Long: `Print the CustomerEmail/CustomerName value to search for when CUSTOMER_SEARCH=hash.

The search attributes then hold the hex HMAC-SHA256 of the email or name (trimmed,
lowercased) under a key derived from the payload key: run this with the bridge's
PAYLOAD_KEY (or SECRETS_KEY), then search the Web UI or the CLI with, for instance,
  CustomerEmail = "<printed value>"` + envHelp("PAYLOAD_KEY, PAYLOAD_KEY_FILE", "SECRETS_KEY, SECRETS_KEY_FILE"),
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			keys, err := codec.ParseKeys(cfg.PayloadKey.Reveal(), cfg.SecretsKey.Reveal())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), codec.SearchHash(keys.SearchKey(), strings.Join(args, " ")))
			return nil
		},
	}
}
