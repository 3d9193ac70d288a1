package admincli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/admincli"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

const (
	adminToken    = "cli-admin-token-0b7d2c"
	chatraPublic  = "cli-chatra-public"
	chatraSecret  = "cli-chatra-secret-5e8a1f"
	planfixToken  = "cli-planfix-token-93c4b2"
	publicURL     = "https://bridge.example.com"
	secretsKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	fieldsPattern = `(?m)^%s\s{2,}%s$`
)

// env is a running admin API (real PostgreSQL, the Chatra and Planfix sandboxes) for the
// CLI to talk to.
type env struct {
	url, chatraURL, planfixURL string
	db                         *postgres.DB
	logs                       *bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv whose API reaches Temporal through tc (nil: none).
func newEnvWith(t *testing.T, tc client.Client) *env {
	t.Helper()
	db, _ := postgrestest.New(t)
	e := &env{db: db, logs: &bytes.Buffer{}}
	cs := httptest.NewServer(sandbox.NewChatra(chatraPublic, chatraSecret))
	t.Cleanup(cs.Close)
	pf := sandbox.NewPlanfix(planfixToken)
	pf.SetRateInterval(0)
	ps := httptest.NewServer(pf)
	t.Cleanup(ps.Close)
	e.chatraURL, e.planfixURL = cs.URL, ps.URL

	sealer, err := secrets.NewSealer(secretsKey)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := metrics.New(logger)
	t.Cleanup(func() { _ = reg.Close() })
	s := api.New(api.Params{
		DB: db, Metrics: reg, Logger: logger, Temporal: tc,
		Config:         config.Config{AdminToken: adminToken, PublicURL: publicURL, AllowPrivateURLs: true}, // the stand-ins are on 127.0.0.1
		Integrations:   postgres.NewIntegrationStore(db, sealer),
		PlanfixLimiter: postgres.NewRateLimiter(db, 50*time.Millisecond),
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	e.url = ts.URL
	return e
}

// getenv is the environment the CLI sees: the API's URL and the admin token.
func (e *env) getenv(name string) string {
	switch name {
	case "CHATRABRIDGE_URL":
		return e.url
	case "ADMIN_TOKEN":
		return adminToken
	}
	return ""
}

func noEnv(string) string { return "" }

// run executes `integrations <args>` in-process and returns what it printed.
func run(t *testing.T, getenv func(string) string, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := admincli.Command(getenv)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	for _, secret := range []string{chatraSecret, planfixToken, adminToken, "new-cli-planfix-token"} {
		if strings.Contains(out.String(), secret) || (err != nil && strings.Contains(err.Error(), secret)) {
			t.Errorf("`integrations %s` printed a secret", strings.Join(args, " "))
		}
	}
	return out.String(), err
}

func mustRun(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	out, err := run(t, getenv, "", args...)
	if err != nil {
		t.Fatalf("integrations %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func hasRow(t *testing.T, out, key, value string) {
	t.Helper()
	if !regexp.MustCompile(fmt.Sprintf(fieldsPattern, regexp.QuoteMeta(key), regexp.QuoteMeta(value))).MatchString(out) {
		t.Fatalf("no row %q = %q in:\n%s", key, value, out)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var webhookLine = regexp.MustCompile(`(?m)^  (Chatra|Planfix)\s+(https://\S+)$`)

func webhookURLs(t *testing.T, out string) map[string]string {
	t.Helper()
	urls := map[string]string{}
	for _, m := range webhookLine.FindAllStringSubmatch(out, -1) {
		urls[m[1]] = m[2]
	}
	if len(urls) != 2 {
		t.Fatalf("no webhook URLs in:\n%s", out)
	}
	return urls
}

func TestCLIIntegrationLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyFile := writeFile(t, "chatra.key", chatraSecret+"\n")

	out := mustRun(t, e.getenv, "create", "--id", "shop", "--name", "Example shop",
		"--chatra-api-url", e.chatraURL, "--chatra-public-key", chatraPublic, "--chatra-secret-key-file", keyFile,
		"--chatra-agent-email", "support@example.com",
		"--planfix-account-url", e.planfixURL, "--planfix-token", planfixToken,
		"--task-template-id", "101", "--contact-template-id", "7",
		"--assignee-user-ids", "5", "--employee-user-ids", "5, 6", "--send-as-employee", "--late-reply-window", "48h")
	hasRow(t, out, "ID", "shop")
	hasRow(t, out, "Name", "Example shop")
	hasRow(t, out, "Chatra secret key", "set")
	hasRow(t, out, "Planfix token", "set")
	hasRow(t, out, "Completed status", "3") // resolved from the sandbox
	hasRow(t, out, "Employees on the channel", "5, 6")
	hasRow(t, out, "Send as employee", "yes")
	hasRow(t, out, "New task only if no active task", "no")
	hasRow(t, out, "Late-reply window", "48h0m0s")
	urls := webhookURLs(t, out)
	chatraTok, ok := strings.CutPrefix(urls["Chatra"], publicURL+"/webhooks/chatra/shop/")
	if !ok {
		t.Fatalf("Chatra URL %q", urls["Chatra"])
	}
	if err := e.db.CheckWebhookToken(ctx, "shop", postgres.WebhookChatra, chatraTok); err != nil {
		t.Fatalf("the printed Chatra URL's token: %v", err)
	}

	out = mustRun(t, e.getenv, "list")
	if !regexp.MustCompile(`(?m)^ID\s+NAME\s+CHATRA PUBLIC KEY\s+PLANFIX ACCOUNT\s+TASK TEMPLATE\s+UPDATED$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^shop\s+Example shop\s+`+chatraPublic+`\s+`+regexp.QuoteMeta(e.planfixURL)+`\s+101\s+`).MatchString(out) {
		t.Fatalf("list:\n%s", out)
	}

	out = mustRun(t, e.getenv, "show", "shop", "--json")
	var shown chatrabridge.Integration
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("show --json is not JSON: %v\n%s", err, out)
	}
	if shown.ID != "shop" || !shown.Chatra.HasSecretKey || shown.Chatra.AgentEmail != "support@example.com" ||
		!slices.Equal(shown.Planfix.EmployeeUserIDs, []int64{5, 6}) || !strings.Contains(out, "\n  \"name\"") {
		t.Fatalf("show --json:\n%s", out)
	}
	if strings.Contains(out, "webhooks") {
		t.Fatal("show prints webhooks")
	}

	out = mustRun(t, e.getenv, "update", "shop", "--name", "Renamed", "--employee-user-ids", "", "--send-as-employee=false", "--idle-timeout", "2h")
	hasRow(t, out, "Name", "Renamed")
	hasRow(t, out, "Employees on the channel", "all")
	hasRow(t, out, "Send as employee", "no")
	hasRow(t, out, "Idle timeout", "2h0m0s")
	hasRow(t, out, "Late-reply window", "48h0m0s") // untouched
	hasRow(t, out, "Chatra agent email", "support@example.com")

	out = mustRun(t, e.getenv, "verify", "shop")
	if !strings.Contains(out, "All checks passed.") || !regexp.MustCompile(`(?m)^chatra.keys\s+ok\s+`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^  101\s+Chat from the website$`).MatchString(out) || !regexp.MustCompile(`(?m)^  3\s+Completed \(inactive\)$`).MatchString(out) {
		t.Fatalf("verify:\n%s", out)
	}

	// --deep: the calls the bridge makes, what each finding means, and what was stored.
	out = mustRun(t, e.getenv, "verify", "shop", "--deep")
	if !regexp.MustCompile(`(?m)^CHECK\s+RESULT\s+DETAILS\s+WHAT IT MEANS FOR THE BRIDGE$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^planfix.contactAsAssigner\s+ok\s+Planfix kept contact \d+ as the task's assigner\s+chat tasks name the customer as assigner`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^planfix.completeTask\s+ok\s+`).MatchString(out) ||
		!strings.Contains(out, "Stored on the integration: the contact's role on tasks assigner, sourceObjectId returned.") ||
		!strings.Contains(out, "All checks passed.") {
		t.Fatalf("verify --deep:\n%s", out)
	}

	// A wrong Planfix token: the table says why, and the command fails.
	tokenFile := writeFile(t, "planfix.token", "new-cli-planfix-token")
	mustRun(t, e.getenv, "update", "shop", "--planfix-token-file", tokenFile)
	out, err := run(t, e.getenv, "", "verify", "shop")
	if err == nil || err.Error() != "verify: 4 of 5 checks failed" ||
		!regexp.MustCompile(`(?m)^planfix.token\s+FAILED \(bad_token\)\s+\S`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^planfix.taskTemplate\s+skipped\s+`).MatchString(out) {
		t.Fatalf("verify with a wrong token: %v\n%s", err, out)
	}
	out, err = run(t, e.getenv, "", "verify", "shop", "--json")
	var vr api.VerifyResult
	if err == nil || json.Unmarshal([]byte(out), &vr) != nil || vr.OK {
		t.Fatalf("verify --json with a wrong token: %v\n%s", err, out)
	}

	out = mustRun(t, e.getenv, "rotate-tokens", "shop")
	rotated := webhookURLs(t, out)
	if rotated["Chatra"] == urls["Chatra"] || !strings.Contains(out, "the old ones stopped working") {
		t.Fatalf("rotate-tokens:\n%s", out)
	}
	if err := e.db.CheckWebhookToken(ctx, "shop", postgres.WebhookChatra, chatraTok); chatrabridge.ErrorCode(err) != chatrabridge.EUNAUTHORIZED {
		t.Fatalf("old token after rotate-tokens: %v", err)
	}
	out = mustRun(t, e.getenv, "rotate-tokens", "shop", "--json")
	var ra api.RotateAnswer
	if err := json.Unmarshal([]byte(out), &ra); err != nil || ra.ID != "shop" || !strings.HasPrefix(ra.Webhooks.PlanfixURL, publicURL+"/webhooks/planfix/shop/") {
		t.Fatalf("rotate-tokens --json: %v\n%s", err, out)
	}

	if out := mustRun(t, e.getenv, "delete", "shop"); out != "Deleted integration shop.\n" {
		t.Fatalf("delete: %q", out)
	}
	_, err = run(t, e.getenv, "", "show", "shop")
	if err == nil || err.Error() != `not_found: no integration with the id "shop"` {
		t.Fatalf("show after delete: %v", err)
	}
	if out := mustRun(t, e.getenv, "list"); !strings.Contains(out, "No integrations yet") {
		t.Fatalf("empty list: %q", out)
	}
}

func TestCLIFromFile(t *testing.T) {
	e := newEnv(t)
	// The example, pointing at the sandboxes, completedStatusId left out.
	file := fmt.Sprintf(`{"name": "Example shop",
	 "chatra": {"apiUrl": %q, "publicKey": %q, "secretKey": %q,
	            "agentId": "", "agentEmail": "support@example.com", "agentName": "Example shop"},
	 "planfix": {"accountUrl": %q, "token": %q,
	             "taskTemplateId": 101, "contactTemplateId": 7,
	             "assigneeUserIds": [5], "employeeUserIds": [5, 6]},
	 "options": {"newTaskOnlyIfNoActiveTask": true, "sendAsEmployee": false,
	             "lateReplyWindow": "72h", "idleTimeout": "24h"}}`, e.chatraURL, chatraPublic, chatraSecret, e.planfixURL, planfixToken)
	out := mustRun(t, e.getenv, "create", "--from-file", writeFile(t, "shop.json", file), "--name", "Overridden", "--json")
	var created api.IntegrationAnswer
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	if created.Name != "Overridden" || created.Chatra.AgentName != "Example shop" || created.Planfix.CompletedStatusID != 3 ||
		!created.Options.NewTaskOnlyIfNoActiveTask || created.Webhooks == nil || !strings.HasPrefix(created.Webhooks.ChatraURL, publicURL+"/webhooks/chatra/"+created.ID+"/") {
		t.Fatalf("created:\n%s", out)
	}
	// From stdin, a PATCH body.
	out, err := run(t, e.getenv, `{"options": {"sendAsEmployee": true}}`, "update", created.ID, "--from-file", "-")
	if err != nil {
		t.Fatal(err)
	}
	hasRow(t, out, "Send as employee", "yes")
	hasRow(t, out, "Name", "Overridden")
	// An unknown field in the file is the API's 400, named.
	_, err = run(t, e.getenv, `{"options": {"sendAsEmploye": true}}`, "update", created.ID, "--from-file", "-")
	if err == nil || err.Error() != "invalid: unknown field options.sendAsEmploye (field options.sendAsEmploye)" {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestCLIErrors(t *testing.T) {
	e := newEnv(t)
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html><body>\n<h1>502 Bad Gateway</h1>\n</body></html>")
	}))
	t.Cleanup(html.Close)
	tokenFile := writeFile(t, "admin-token", adminToken+"\n")
	fromFileEnv := func(name string) string {
		switch name {
		case "CHATRABRIDGE_URL":
			return e.url
		case "ADMIN_TOKEN_FILE":
			return tokenFile
		}
		return ""
	}
	cases := []struct {
		name   string
		getenv func(string) string
		args   []string
		want   string // the whole error, or its start when it ends with "…"
	}{
		{"no token", noEnv, []string{"list", "--url", e.url}, "no admin token: set --token or ADMIN_TOKEN…"},
		{"wrong token", e.getenv, []string{"list", "--token", "wrong"}, `unauthorized: missing or wrong admin token: send the header "Authorization: Bearer <ADMIN_TOKEN>"; check --token or ADMIN_TOKEN`},
		{"not a URL", e.getenv, []string{"list", "--url", "localhost:8080"}, `--url "localhost:8080" is not an http(s) URL such as http://localhost:8080`},
		{"nothing listening", e.getenv, []string{"list", "--url", "http://127.0.0.1:1"}, "cannot reach the admin API at http://127.0.0.1:1: …"},
		{"not the API", e.getenv, []string{"list", "--url", html.URL}, "GET " + html.URL + "/api/v1/integrations answered 502 Bad Gateway, not the admin API's JSON (is --url right?): <html><body> <h1>502 Bad Gateway</h1> </body></html>"},
		{"missing field", e.getenv, []string{"create", "--name", "x"}, "invalid: chatra.publicKey is required: copy it from the Chatra dashboard, Settings, API keys (field chatra.publicKey)"},
		{"no flags at all", e.getenv, []string{"create"}, "invalid: name is required…"},
		{"bad number", e.getenv, []string{"create", "--task-template-id", "x"}, `--task-template-id: "x" is not a whole number`},
		{"bad list", e.getenv, []string{"update", "shop", "--assignee-user-ids", "5,x"}, `--assignee-user-ids: "x" is not a whole number (give ids like 5,6)`},
		{"bad duration", e.getenv, []string{"update", "shop", "--late-reply-window", "3 days"}, `--late-reply-window: "3 days" is not a duration (use e.g. 72h or 30m)`},
		{"nothing to update", e.getenv, []string{"update", "shop"}, "nothing to update: give at least one field flag or --from-file (see --help)"},
		{"token twice", e.getenv, []string{"update", "shop", "--planfix-token", "a", "--planfix-token-file", tokenFile}, "set --planfix-token or --planfix-token-file, not both"},
		{"missing file", e.getenv, []string{"create", "--from-file", "/nonexistent/shop.json"}, "--from-file: open /nonexistent/shop.json: no such file or directory"},
		{"file not an object", e.getenv, []string{"create", "--from-file", writeFile(t, "a.json", "[1]")}, "--from-file …"},
		{"unknown id", e.getenv, []string{"show", "nope"}, `not_found: no integration with the id "nope"`},
		{"unknown id, verify", e.getenv, []string{"verify", "nope"}, `not_found: no integration with the id "nope"`},
		{"missing id", e.getenv, []string{"show"}, "accepts 1 arg(s), received 0"},
		{"token from ADMIN_TOKEN_FILE", fromFileEnv, []string{"show", "nope"}, `not_found: no integration with the id "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, c.getenv, "", c.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if prefix, ok := strings.CutSuffix(c.want, "…"); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("error %q, want it to start with %q", err, prefix)
				}
			} else if err.Error() != c.want {
				t.Fatalf("error %q, want %q", err, c.want)
			}
		})
	}
	// The admin token never reaches the API's logs either.
	if strings.Contains(e.logs.String(), adminToken) || strings.Contains(e.logs.String(), "wrong") && strings.Contains(e.logs.String(), "Bearer") {
		t.Fatalf("the API logged a presented token:\n%s", e.logs.String())
	}
}
