package admincli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chatrabridge/chatrabridge/api"
)

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func setOrNot(b bool) string {
	if b {
		return "set"
	}
	return "NOT SET"
}

func ids(list []int64, empty string) string {
	if len(list) == 0 {
		return empty
	}
	s := make([]string, len(list))
	for i, id := range list {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printIntegration(w io.Writer, b []byte) error {
	var in api.IntegrationAnswer
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("ID", in.ID)
	row("Name", in.Name)
	row("Chatra API URL", in.Chatra.APIURL)
	row("Chatra public key", in.Chatra.PublicKey)
	row("Chatra secret key", setOrNot(in.Chatra.HasSecretKey))
	row("Chatra agent id", orDash(in.Chatra.AgentID))
	row("Chatra agent email", orDash(in.Chatra.AgentEmail))
	row("Chatra agent name", orDash(in.Chatra.AgentName))
	row("Planfix account", in.Planfix.AccountURL)
	row("Planfix token", setOrNot(in.Planfix.HasToken))
	row("Task template", strconv.FormatInt(in.Planfix.TaskTemplateID, 10))
	row("Contact template", strconv.FormatInt(in.Planfix.ContactTemplateID, 10))
	row("Completed status", strconv.FormatInt(in.Planfix.CompletedStatusID, 10))
	row("Extra assignees", ids(in.Planfix.AssigneeUserIDs, "none"))
	row("Employees on the channel", ids(in.Planfix.EmployeeUserIDs, "all"))
	row("New task only if no active task", yesNo(in.Options.NewTaskOnlyIfNoActiveTask))
	row("Send as employee", yesNo(in.Options.SendAsEmployee))
	row("Late-reply window", time.Duration(in.Options.LateReplyWindow).String())
	row("Idle timeout", time.Duration(in.Options.IdleTimeout).String())
	row("Trust email claims", yesNo(in.Options.TrustEmailClaims))
	row("New conversations a minute", strconv.Itoa(in.Options.NewConversationsPerMinute))
	row("Max held replies", strconv.Itoa(in.Options.MaxHeldReplies))
	printFirstResponse(row, in.Options.FirstResponse)
	if c := in.Capabilities; c != nil {
		verified := "never (chatrabridge integrations verify --deep)"
		if c.DeepVerifiedAt != nil {
			verified = c.DeepVerifiedAt.Local().Format(time.DateTime)
		}
		row("Planfix keeps the contact as", orDash(c.ContactRole))
		row("Planfix returns sourceObjectId", orDash(c.SourceIDs))
		row("Deep verify", verified)
	}
	row("Created", in.CreatedAt.Local().Format(time.DateTime))
	row("Updated", in.UpdatedAt.Local().Format(time.DateTime))
	if err := tw.Flush(); err != nil {
		return err
	}
	if in.Webhooks != nil {
		printWebhooks(w, "\nWebhook URLs (shown only now: keep them secret, like passwords):", *in.Webhooks)
	}
	return nil
}

func printWebhooks(w io.Writer, title string, urls api.WebhookURLs) {
	fmt.Fprintln(w, title)
	fmt.Fprintf(w, "  Chatra   %s\n", urls.ChatraURL)
	fmt.Fprintln(w, "           (Chatra: Settings, Integrations, Webhooks: chatStarted, chatFragment, chatTranscript)")
	fmt.Fprintf(w, "  Planfix  %s\n", urls.PlanfixURL)
	fmt.Fprintln(w, "           (Planfix: the scenario's \"send HTTP request\" action)")
}

func printList(w io.Writer, b []byte) error {
	var list api.IntegrationList
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if len(list.Integrations) == 0 {
		_, err := fmt.Fprintln(w, "No integrations yet. Create one with `chatrabridge integrations create`.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCHATRA PUBLIC KEY\tPLANFIX ACCOUNT\tTASK TEMPLATE\tUPDATED")
	for _, i := range list.Integrations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", i.ID, i.Name, i.Chatra.PublicKey, i.Planfix.AccountURL,
			i.Planfix.TaskTemplateID, i.UpdatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func printRotated(w io.Writer, b []byte) error {
	var r api.RotateAnswer
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	printWebhooks(w, "New webhook URLs of "+r.ID+" (the old ones stopped working; update Chatra and Planfix now):", r.Webhooks)
	return nil
}

func printVerify(w io.Writer, r api.VerifyResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.Deep {
		fmt.Fprintln(tw, "CHECK\tRESULT\tDETAILS\tWHAT IT MEANS FOR THE BRIDGE")
	} else {
		fmt.Fprintln(tw, "CHECK\tRESULT\tDETAILS")
	}
	for _, c := range r.Checks {
		result := "ok"
		if !c.OK {
			result = "FAILED (" + c.Problem + ")"
			if c.Problem == api.ProblemSkipped {
				result = "skipped"
			}
		}
		if r.Deep {
			means := oneLine(c.Means)
			if means == "" {
				means = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, result, oneLine(c.Message), means)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, result, oneLine(c.Message))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c := r.Capabilities; c != nil {
		unknown := func(s string) string {
			if s == "" {
				return "unknown"
			}
			return s
		}
		fmt.Fprintf(w, "\nStored on the integration: the contact's role on tasks %s, sourceObjectId %s.\n", unknown(c.ContactRole), unknown(c.SourceIDs))
	}
	list := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintln(w, "\n"+title)
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	var tt, ct, st []string
	for _, t := range r.TaskTemplates {
		tt = append(tt, fmt.Sprintf("%d\t%s", t.ID, t.Name))
	}
	for _, t := range r.ContactTemplates {
		ct = append(ct, fmt.Sprintf("%d\t%s", t.ID, t.Name))
	}
	for _, s := range r.Statuses {
		state := "active"
		if !s.IsActive {
			state = "inactive"
		}
		st = append(st, fmt.Sprintf("%d\t%s (%s)", s.ID, s.Name, state))
	}
	list("Task templates (--task-template-id):", tabbed(tt))
	list("Contact templates (--contact-template-id):", tabbed(ct))
	list("Statuses of the task template's process (--completed-status-id: an inactive one):", tabbed(st))
	if r.OK {
		fmt.Fprintln(w, "\nAll checks passed.")
	}
	return nil
}

// tabbed aligns "id\tname" lines.
func tabbed(lines []string) []string {
	if len(lines) == 0 {
		return nil
	}
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	_ = tw.Flush()
	return strings.Split(strings.TrimRight(sb.String(), "\n"), "\n")
}
