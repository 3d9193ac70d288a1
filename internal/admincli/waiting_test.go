package admincli_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// createShop creates the integration shop through the CLI.
func createShop(t *testing.T, e *env, extra ...string) string {
	t.Helper()
	args := append([]string{"create", "--id", "shop", "--name", "Example shop",
		"--chatra-api-url", e.chatraURL, "--chatra-public-key", chatraPublic, "--chatra-secret-key", chatraSecret,
		"--planfix-account-url", e.planfixURL, "--planfix-token", planfixToken,
		"--task-template-id", "101", "--contact-template-id", "7"}, extra...)
	return mustRun(t, e.getenv, args...)
}

func TestCLIFirstResponse(t *testing.T) {
	e := newEnv(t)
	out := createShop(t, e)
	hasRow(t, out, "First-response target", "none")

	out = mustRun(t, e.getenv, "update", "shop", "--first-response-target", "5m", "--reminder-interval", "15m", "--max-reminders", "2",
		"--working-hours", "Mon-Fri 09:00-18:00 Europe/Riga")
	hasRow(t, out, "First-response target", "5m0s")
	hasRow(t, out, "Reminders", "every 15m0s, 2 at most")
	hasRow(t, out, "Working hours", "mon-fri 09:00-18:00 Europe/Riga")

	out = mustRun(t, e.getenv, "update", "shop", "--working-hours", "", "--max-reminders", "0")
	hasRow(t, out, "Working hours", "always")
	hasRow(t, out, "Reminders", "every 15m0s, 3 at most") // the default
	hasRow(t, out, "First-response target", "5m0s")       // untouched

	out = mustRun(t, e.getenv, "update", "shop", "--first-response-target", "0")
	hasRow(t, out, "First-response target", "none")

	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--working-hours", "weekdays 9-18"}, `--working-hours: "weekdays 9-18": write working hours as "mon-fri 09:00-18:00 Europe/Riga"`},
		{[]string{"--working-hours", "mon-fri 09:00-18:00 Nowhere/City"}, "invalid: "},
		{[]string{"--first-response-target", "soon"}, `--first-response-target: "soon" is not a duration (use e.g. 72h or 30m)`},
		{[]string{"--max-reminders", "500"}, "(field options.firstResponse.maxReminders)"},
	} {
		_, err := run(t, e.getenv, "", append([]string{"update", "shop"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("update %q: %v, want %q", c.args, err, c.err)
		}
	}
}

// standIn stands in for a conversation: it keeps running until signalled "done".
func standIn(ctx workflow.Context, _ workflows.ConversationInput) error {
	workflow.GetSignalChannel(ctx, "done").Receive(ctx, nil)
	return nil
}

// `waiting` lists the waiting chats the API reads from a real Temporal's visibility.
func TestCLIWaiting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	tc, err := client.Dial(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	w := worker.New(tc, "cli-waiting", worker.Options{})
	w.RegisterWorkflowWithOptions(standIn, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	e := newEnvWith(t, tc)
	createShop(t, e)

	if out := mustRun(t, e.getenv, "waiting", "shop"); out != "No customer waits for an answer.\n" {
		t.Fatalf("waiting before any chat: %q", out)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for chat, waited := range map[string]time.Duration{"C-LONG": 40 * time.Minute, "C-SHORT": 3 * time.Minute} {
		id := workflows.ConversationWorkflowID("shop", chat)
		if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "cli-waiting",
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SAIntegration.ValueSet("shop"), workflows.SAChatID.ValueSet(chat),
				workflows.SAName.ValueSet("Ivan "+chat), workflows.SATaskID.ValueSet(1042), workflows.SAWaitingSince.ValueSet(now.Add(-waited)))},
			workflows.ConversationWorkflowName, workflows.ConversationInput{IntegrationID: "shop", ChatID: chat}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tc.SignalWorkflow(context.Background(), id, "", "done", nil) })
	}
	var out string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) { // visibility catches up
		if out = mustRun(t, e.getenv, "waiting", "shop"); strings.Count(out, "\n") == 3 || time.Now().After(deadline) {
			break
		}
	}
	if !regexp.MustCompile(`(?s)^WAITING\s+SINCE\s+CHAT\s+CUSTOMER\s+TASK\n40m\d*s?\s+\S+ \S+\s+C-LONG\s+Ivan C-LONG\s+1042\n3m\d*s?\s+\S+ \S+\s+C-SHORT\s+Ivan C-SHORT\s+1042\n$`).MatchString(out) {
		t.Fatalf("waiting:\n%s", out)
	}
	out = mustRun(t, e.getenv, "waiting", "shop", "--longer-than", "10m", "--json")
	var list api.WaitingList
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Waiting) != 1 || list.Waiting[0].ChatID != "C-LONG" ||
		!list.Waiting[0].WaitingSince.Equal(now.Add(-40*time.Minute)) {
		t.Fatalf("waiting --longer-than 10m --json: %v\n%s", err, out)
	}
	if _, err := run(t, e.getenv, "", "waiting", "shop", "--longer-than", "a while"); err == nil || !strings.Contains(err.Error(), "--longer-than") {
		t.Errorf("a bad --longer-than: %v", err)
	}
	if _, err := run(t, e.getenv, "", "waiting", "nope"); err == nil || !strings.HasPrefix(err.Error(), "not_found:") {
		t.Errorf("an unknown integration: %v", err)
	}
}
