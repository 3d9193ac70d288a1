//go:build !nodev

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// DemoIntegrationID is the id of the integration `dev` wires to the sandbox. `dev` owns
// it: every start puts its settings back to DemoIntegration's.
const DemoIntegrationID = "demo"

// DemoWebhooksFile is the file, in the data directory, where `dev` writes the demo
// integration's webhook URLs (DevDemo as JSON) for the demo command to read.
const DemoWebhooksFile = "demo-webhooks.json"

// DevDemo is the demo integration as `dev` left it at start: its webhook URLs, with the
// tokens made at that start, where the sandbox, Temporal and its Web UI run, and whether
// the start created it. Its JSON form is the content of DemoWebhooksFile, which
// `chatrabridge demo` reads.
type DevDemo struct {
	ID                string `json:"id"`
	ChatraWebhookURL  string `json:"chatraUrl"`
	PlanfixWebhookURL string `json:"planfixUrl"`
	SandboxURL        string `json:"sandboxUrl"`
	TemporalAddress   string `json:"temporalAddress,omitempty"` // host:port of the frontend
	Namespace         string `json:"namespace,omitempty"`
	UIURL             string `json:"uiUrl,omitempty"` // empty when dev runs no Web UI
	Created           bool   `json:"-"`
}

// sandboxModule starts the sandbox (before the worker and the API, so it stops after
// them) and makes the demo integration when the app starts.
var sandboxModule = fx.Module("sandbox",
	fx.Provide(startSandbox, ensureDemo),
	fx.Invoke(func(*sandbox.Server, *DevDemo) {}),
)

// sandboxAddr is where `dev` serves the sandbox: loopback only, it answers anyone.
func sandboxAddr(o DevOptions) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(o.SandboxPort))
}

// startSandbox returns the sandbox with Planfix's real rate limit, listening from the
// app's start until its stop.
func startSandbox(lc fx.Lifecycle, o DevOptions) *sandbox.Server {
	s := sandbox.New(sandbox.Options{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if err := s.Start(sandboxAddr(o)); err != nil {
				return fmt.Errorf("%w: stop that process, choose another port with --sandbox-port, or run with --no-sandbox", err)
			}
			return nil
		},
		OnStop: func(context.Context) error { return s.Close() },
	})
	return s
}

// demoParams are what ensureDemo needs; the Temporal server is absent in tests of the
// sandbox module alone.
type demoParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Store     *postgres.IntegrationStore
	Sandbox   *sandbox.Server
	Config    config.Config
	Options   DevOptions
	Temporal  *devserver.Server `optional:"true"`
}

// ensureDemo makes the demo integration, wired to the sandbox, when the app starts, and
// writes its webhook URLs (and where Temporal and its Web UI run) to DemoWebhooksFile.
// The returned DevDemo is filled then.
func ensureDemo(p demoParams) *DevDemo {
	demo := &DevDemo{ID: DemoIntegrationID}
	store, sb, cfg, o := p.Store, p.Sandbox, p.Config, p.Options
	p.Lifecycle.Append(fx.StartHook(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		tokens, created, err := EnsureDemoIntegration(ctx, store, sb.ChatraURL(), sb.PlanfixURL())
		if err != nil {
			return fmt.Errorf("demo integration: %w", err)
		}
		demo.Created = created
		demo.SandboxURL = sb.URL()
		demo.ChatraWebhookURL, demo.PlanfixWebhookURL = WebhookURLs(cfg.PublicURL, DemoIntegrationID, tokens)
		if t := p.Temporal; t != nil {
			demo.TemporalAddress, demo.Namespace = t.Address(), t.Namespace()
			if a := t.UIAddress(); a != "" {
				demo.UIURL = "http://" + a
			}
		}
		data, _ := json.MarshalIndent(demo, "", "  ") // plain strings: cannot fail
		file := filepath.Join(o.DataDir, DemoWebhooksFile)
		if err := os.WriteFile(file, append(data, '\n'), 0o600); err != nil {
			return fmt.Errorf("demo integration: write %s: %w", file, err)
		}
		return nil
	}))
	return demo
}

// DemoIntegration is the demo integration's settings, wired to a sandbox whose Chatra
// API is at chatraURL and Planfix account at planfixURL: the sandbox's credentials and
// seeded templates, user 5 on every task, users 5 and 6 allowed to reply, replies sent as
// the integration's Chatra user.
func DemoIntegration(chatraURL, planfixURL string) chatrabridge.IntegrationUpdate {
	id, name := DemoIntegrationID, "Demo shop (sandbox)"
	agentEmail, agentName := "support@example.com", "Demo shop support"
	publicKey := sandbox.DefaultChatraPublicKey
	secretKey, token := secrets.String(sandbox.DefaultChatraSecretKey), secrets.String(sandbox.DefaultPlanfixToken)
	taskTemplate, contactTemplate, completed := int64(sandbox.PlanfixTaskTemplateID), int64(sandbox.PlanfixContactTemplateID), int64(sandbox.PlanfixStatusCompleted)
	assignees, employees := []int64{5}, []int64{5, 6}
	onlyIfNoActive, asEmployee := false, false
	return chatrabridge.IntegrationUpdate{
		ID:   &id,
		Name: &name,
		Chatra: &chatrabridge.ChatraUpdate{APIURL: &chatraURL, PublicKey: &publicKey, SecretKey: &secretKey,
			AgentEmail: &agentEmail, AgentName: &agentName},
		Planfix: &chatrabridge.PlanfixUpdate{AccountURL: &planfixURL, Token: &token, TaskTemplateID: &taskTemplate,
			ContactTemplateID: &contactTemplate, CompletedStatusID: &completed,
			AssigneeUserIDs: &assignees, EmployeeUserIDs: &employees},
		Options: &chatrabridge.OptionsUpdate{NewTaskOnlyIfNoActiveTask: &onlyIfNoActive, SendAsEmployee: &asEmployee},
	}
}

// EnsureDemoIntegration makes the integration DemoIntegrationID match
// DemoIntegration(chatraURL, planfixURL): it creates it when missing, else updates it
// (the sandbox's port may have changed) and rotates its webhook tokens, which are stored
// only hashed. It returns the new tokens and whether it created the integration. It is
// idempotent but for the tokens, which are new at every call.
func EnsureDemoIntegration(ctx context.Context, store *postgres.IntegrationStore, chatraURL, planfixURL string) (chatrabridge.WebhookTokens, bool, error) {
	u := DemoIntegration(chatraURL, planfixURL)
	_, err := store.IntegrationSettings(ctx, DemoIntegrationID)
	switch chatrabridge.ErrorCode(err) {
	case "":
	case chatrabridge.ENOTFOUND:
		i, err := chatrabridge.NewIntegration(u)
		if err != nil {
			return chatrabridge.WebhookTokens{}, false, err
		}
		tokens, err := store.CreateIntegration(ctx, i)
		if err == nil {
			return tokens, true, nil
		}
		if chatrabridge.ErrorCode(err) != chatrabridge.ECONFLICT { // else made meanwhile: update it
			return chatrabridge.WebhookTokens{}, false, err
		}
	default:
		return chatrabridge.WebhookTokens{}, false, err
	}
	if _, err := store.UpdateIntegration(ctx, DemoIntegrationID, u); err != nil {
		return chatrabridge.WebhookTokens{}, false, err
	}
	tokens, err := store.RotateWebhookTokens(ctx, DemoIntegrationID)
	if err != nil {
		return chatrabridge.WebhookTokens{}, false, err
	}
	return tokens, false, nil
}

// WebhookURLs returns an integration's Chatra and Planfix webhook URLs, tokens included,
// below the API's public URL, as the admin API prints them.
func WebhookURLs(publicURL, id string, t chatrabridge.WebhookTokens) (chatraURL, planfixURL string) {
	base := strings.TrimRight(publicURL, "/") + "/webhooks/%s/" + url.PathEscape(id) + "/"
	return fmt.Sprintf(base, "chatra") + t.Chatra.Reveal(), fmt.Sprintf(base, "planfix") + t.Planfix.Reveal()
}

// DevBanner is what `dev` prints once everything runs.
type DevBanner struct {
	UIURL        string // the Temporal Web UI
	TemporalAddr string
	Namespace    string
	PublicURL    string // the HTTP API
	AdminToken   string
	CodecURL     string // the API's codec server (payloads are encrypted), for the temporal CLI
	CodecToken   string
	DataDir      string
	SandboxURL   string   // empty without the sandbox
	Demo         *DevDemo // nil without the sandbox
}

// WriteDevBanner writes the banner: where each part runs, the admin token, and the demo
// integration's webhook URLs with a link to its conversations in the Web UI.
func WriteDevBanner(w io.Writer, b DevBanner) error {
	var s strings.Builder
	fmt.Fprintf(&s, `
chatrabridge dev is running.
  Temporal Web UI   %s
  Temporal          %s (namespace %s; temporal CLI works with its defaults)
  HTTP API          %s  (health: %s/readyz)
  Admin token       %s
  Data directory    %s
`, b.UIURL, b.TemporalAddr, b.Namespace, b.PublicURL, b.PublicURL, b.AdminToken, b.DataDir)
	if b.CodecURL != "" {
		fmt.Fprintf(&s, "  Payloads          encrypted; the Web UI decodes them, the temporal CLI with\n"+
			"                    --codec-endpoint %s --codec-auth 'Bearer %s'\n", b.CodecURL, b.CodecToken)
	}
	if b.SandboxURL == "" {
		s.WriteString("  Sandbox           off (--no-sandbox): no demo integration\n")
	} else {
		fmt.Fprintf(&s, "  Sandbox           %s  (Chatra %s, Planfix %s, state %s)\n",
			b.SandboxURL, sandbox.ChatraPrefix, sandbox.PlanfixPrefix, sandbox.InspectPrefix+"/state")
	}
	if d := b.Demo; d != nil {
		verb := "updated"
		if d.Created {
			verb = "created"
		}
		fmt.Fprintf(&s, `
Demo integration %q (%s, wired to the sandbox; new webhook tokens at every start):
  Chatra webhook    %s
  Planfix webhook   %s
`, d.ID, verb, d.ChatraWebhookURL, d.PlanfixWebhookURL)
		if strings.HasPrefix(b.UIURL, "http") {
			query := url.QueryEscape(fmt.Sprintf("%s=%q", workflows.SAIntegration.GetName(), d.ID))
			fmt.Fprintf(&s, "  Conversations     %s/namespaces/%s/workflows?query=%s\n", b.UIURL, url.PathEscape(b.Namespace), query)
		}
		fmt.Fprintf(&s, "  (also written to %s)\n", filepath.Join(b.DataDir, DemoWebhooksFile))
	}
	s.WriteString("Press Ctrl-C to stop.\n")
	_, err := io.WriteString(w, s.String())
	return err
}

// bannerParams are what the banner shows; the sandbox's parts are absent without it.
type bannerParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Config
	Options   DevOptions
	Temporal  *devserver.Server
	Sandbox   *sandbox.Server `optional:"true"`
	Demo      *DevDemo        `optional:"true"`
}

// printDevBanner prints the banner when the app has started (its hook is the last). A
// banner that cannot be written (stdout closed) does not stop the app.
func printDevBanner(p bannerParams) {
	p.Lifecycle.Append(fx.StartHook(func() {
		ui := "off"
		if a := p.Temporal.UIAddress(); a != "" {
			ui = "http://" + a
		}
		b := DevBanner{
			UIURL:        ui,
			TemporalAddr: p.Temporal.Address(),
			Namespace:    p.Temporal.Namespace(),
			PublicURL:    p.Config.PublicURL,
			AdminToken:   p.Config.AdminToken.Reveal(),
			DataDir:      p.Options.DataDir,
			CodecToken:   p.Config.CodecToken.Reveal(),
			Demo:         p.Demo,
		}
		if p.Sandbox != nil {
			b.SandboxURL = p.Sandbox.URL()
		}
		if p.Config.PayloadEncryption {
			b.CodecURL = p.Config.PublicURL + "/codec"
		}
		out := p.Options.Out
		if out == nil {
			out = os.Stdout
		}
		_ = WriteDevBanner(out, b)
	}))
}
