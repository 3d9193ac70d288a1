package admincli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
)

// waitingCmd is `integrations waiting ID`: the chats whose customer waits for an
// answer (GET /api/v1/integrations/{id}/waiting).
func waitingCmd(o *options) *cobra.Command {
	var longer string
	var limit int
	cmd := &cobra.Command{
		Use:   "waiting ID",
		Short: "List the chats of an integration whose customer waits for an answer, the longest waiting first",
		Long: `Lists the running conversations of the integration whose customer's message waits for an
employee's answer (a reply sent to the chat, or an agent's message in Chatra), from
Temporal's visibility (the CustomerWaitingSince search attribute), the longest waiting
first: since when, for how long, the chat, the customer and the Planfix task.`,
		Example: `  chatrabridge integrations waiting shop
  chatrabridge integrations waiting shop --longer-than 15m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if longer != "" {
				if d, err := time.ParseDuration(strings.TrimSpace(longer)); err != nil || d < 0 {
					return fmt.Errorf("--longer-than: %q is not a duration (use e.g. 15m)", longer)
				}
				q.Set("longerThan", strings.TrimSpace(longer))
			}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			path := idPath(args[0], "/waiting")
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			return o.run(cmd, http.MethodGet, path, nil, printWaiting)
		},
	}
	cmd.Flags().StringVar(&longer, "longer-than", "", "only the chats waiting longer than this `duration`, such as 15m")
	cmd.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("at most this `number` of chats (default %d, at most %d)", api.DefaultWaitingLimit, api.MaxWaitingLimit))
	return cmd
}

func printWaiting(w io.Writer, b []byte) error {
	var list api.WaitingList
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if len(list.Waiting) == 0 {
		_, err := fmt.Fprintln(w, "No customer waits for an answer.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WAITING\tSINCE\tCHAT\tCUSTOMER\tTASK")
	for _, c := range list.Waiting {
		task := "-"
		if c.TaskID != 0 {
			task = strconv.FormatInt(c.TaskID, 10)
		}
		customer := c.CustomerName
		if customer == "" {
			customer = c.CustomerEmail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", time.Duration(c.WaitingSeconds)*time.Second, c.WaitingSince.Local().Format(time.DateTime),
			c.ChatID, orDash(oneLine(customer)), task)
	}
	return tw.Flush()
}

// printFirstResponse adds the first-response settings to an integration's table.
func printFirstResponse(row func(k, v string), f chatrabridge.FirstResponse) {
	if f.Target <= 0 {
		row("First-response target", "none")
		return
	}
	row("First-response target", time.Duration(f.Target).String())
	reminders := "once"
	if f.ReminderInterval > 0 {
		reminders = fmt.Sprintf("every %s, %d at most", time.Duration(f.ReminderInterval), f.Reminders())
	}
	row("Reminders", reminders)
	row("Working hours", f.WorkingHours.String())
}
