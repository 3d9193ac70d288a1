package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/internal/testkit"
)

const testSecretsKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func testStore(t *testing.T) (*postgres.DB, *postgres.IntegrationStore) {
	t.Helper()
	db, _ := postgrestest.New(t)
	sealer, err := secrets.NewSealer(testSecretsKey)
	if err != nil {
		t.Fatal(err)
	}
	return db, postgres.NewIntegrationStore(db, sealer)
}

// checkDemo asserts the stored demo integration is wired to the given sandbox URLs with
// the settings the brief asks for, its secrets the sandbox's.
func checkDemo(t *testing.T, store *postgres.IntegrationStore, chatraURL, planfixURL string) {
	t.Helper()
	i, err := store.Integration(context.Background(), DemoIntegrationID)
	if err != nil {
		t.Fatal(err)
	}
	c, p := i.Chatra, i.Planfix
	if c.APIURL != chatraURL || c.PublicKey != sandbox.DefaultChatraPublicKey || c.SecretKey.Reveal() != sandbox.DefaultChatraSecretKey ||
		c.AgentEmail == "" || p.AccountURL != planfixURL || p.Token.Reveal() != sandbox.DefaultPlanfixToken ||
		p.TaskTemplateID != 101 || p.ContactTemplateID != 7 || p.CompletedStatusID != 3 ||
		!slices.Equal(p.AssigneeUserIDs, []int64{5}) || !slices.Equal(p.EmployeeUserIDs, []int64{5, 6}) ||
		i.Options.SendAsEmployee || i.Options.NewTaskOnlyIfNoActiveTask {
		t.Fatalf("demo integration: %+v", i)
	}
}

// checkTokens asserts which webhook tokens the store accepts.
func checkTokens(t *testing.T, db *postgres.DB, tokens chatrabridge.WebhookTokens, valid bool) {
	t.Helper()
	ctx := context.Background()
	for kind, tok := range map[string]secrets.String{postgres.WebhookChatra: tokens.Chatra, postgres.WebhookPlanfix: tokens.Planfix} {
		err := db.CheckWebhookToken(ctx, DemoIntegrationID, kind, tok.Reveal())
		if (err == nil) != valid {
			t.Errorf("%s token: valid=%v, want %v (%v)", kind, err == nil, valid, err)
		}
	}
}

func TestEnsureDemoIntegration(t *testing.T) {
	db, store := testStore(t)
	ctx := context.Background()

	first, created, err := EnsureDemoIntegration(ctx, store, "http://127.0.0.1:8090/chatra", "http://127.0.0.1:8090/planfix")
	if err != nil || !created {
		t.Fatalf("first: created=%v %v", created, err)
	}
	checkDemo(t, store, "http://127.0.0.1:8090/chatra", "http://127.0.0.1:8090/planfix")
	checkTokens(t, db, first, true)

	// An admin changed it; the next start (on another port) puts it back, with new tokens.
	other := "https://elsewhere.planfix.com"
	if _, err := store.UpdateIntegration(ctx, DemoIntegrationID, chatrabridge.IntegrationUpdate{
		Planfix: &chatrabridge.PlanfixUpdate{AccountURL: &other, EmployeeUserIDs: &[]int64{6}}}); err != nil {
		t.Fatal(err)
	}
	second, created, err := EnsureDemoIntegration(ctx, store, "http://127.0.0.1:9999/chatra", "http://127.0.0.1:9999/planfix")
	if err != nil || created {
		t.Fatalf("second: created=%v %v", created, err)
	}
	checkDemo(t, store, "http://127.0.0.1:9999/chatra", "http://127.0.0.1:9999/planfix")
	checkTokens(t, db, second, true)
	checkTokens(t, db, first, false)
	if list, err := store.ListIntegrations(ctx); err != nil || len(list) != 1 {
		t.Fatalf("integrations after two starts: %d %v", len(list), err)
	}
}

func TestWebhookURLs(t *testing.T) {
	c, p := WebhookURLs("http://localhost:8080/", "demo", chatrabridge.WebhookTokens{Chatra: "tc", Planfix: "tp"})
	if c != "http://localhost:8080/webhooks/chatra/demo/tc" || p != "http://localhost:8080/webhooks/planfix/demo/tp" {
		t.Fatalf("%q %q", c, p)
	}
}

func TestWriteDevBanner(t *testing.T) {
	var b bytes.Buffer
	err := WriteDevBanner(&b, DevBanner{UIURL: "http://127.0.0.1:8233", TemporalAddr: "127.0.0.1:7233", Namespace: "default",
		PublicURL: "http://localhost:8080", AdminToken: "admin-tok", DataDir: ".chatrabridge", SandboxURL: "http://127.0.0.1:8090",
		CodecURL: "http://localhost:8080/codec", CodecToken: "codec-tok",
		Demo: &DevDemo{ID: "demo", ChatraWebhookURL: "http://localhost:8080/webhooks/chatra/demo/tc",
			PlanfixWebhookURL: "http://localhost:8080/webhooks/planfix/demo/tp", Created: true}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Temporal Web UI   http://127.0.0.1:8233\n",
		"Admin token       admin-tok\n",
		"--codec-endpoint http://localhost:8080/codec --codec-auth 'Bearer codec-tok'\n",
		"Sandbox           http://127.0.0.1:8090 ",
		`Demo integration "demo" (created`,
		"Chatra webhook    http://localhost:8080/webhooks/chatra/demo/tc\n",
		"Planfix webhook   http://localhost:8080/webhooks/planfix/demo/tp\n",
		"http://127.0.0.1:8233/namespaces/default/workflows?query=ChatraIntegration%3D%22demo%22\n",
		filepath.Join(".chatrabridge", DemoWebhooksFile),
		"Press Ctrl-C to stop.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner lacks %q:\n%s", want, out)
		}
	}

	b.Reset()
	_ = WriteDevBanner(&b, DevBanner{UIURL: "http://127.0.0.1:8233", AdminToken: "admin-tok"})
	if out := b.String(); !strings.Contains(out, "off (--no-sandbox)") || strings.Contains(out, "webhook") {
		t.Errorf("the banner without the sandbox:\n%s", out)
	}
}

// The sandbox module starts the sandbox with the app, makes the demo integration wired
// to it, writes its webhook URLs (with tokens the store accepts), and stops the sandbox
// with the app.
func TestSandboxModule(t *testing.T) {
	db, store := testStore(t)
	o := DevOptions{DataDir: t.TempDir(), SandboxPort: testkit.FreePort(t)}
	cfg := config.Config{PublicURL: "http://localhost:8080"}
	var sb *sandbox.Server
	var demo *DevDemo
	app := fxtest.New(t,
		fx.Supply(cfg, o, db, store),
		sandboxModule,
		fx.Populate(&sb, &demo),
	)
	app.RequireStart()
	stopped := false
	defer func() {
		if !stopped {
			app.RequireStop()
		}
	}()

	base := "http://127.0.0.1:" + strconv.Itoa(o.SandboxPort)
	if sb.URL() != base || demo.SandboxURL != base || !demo.Created {
		t.Fatalf("sandbox at %q, demo %+v", sb.URL(), demo)
	}
	checkDemo(t, store, base+"/chatra", base+"/planfix")

	data, err := os.ReadFile(filepath.Join(o.DataDir, DemoWebhooksFile))
	if err != nil {
		t.Fatal(err)
	}
	var file DevDemo
	if err := json.Unmarshal(data, &file); err != nil || file.ChatraWebhookURL != demo.ChatraWebhookURL || file.PlanfixWebhookURL != demo.PlanfixWebhookURL {
		t.Fatalf("%s: %s (%v)", DemoWebhooksFile, data, err)
	}
	if info, err := os.Stat(filepath.Join(o.DataDir, DemoWebhooksFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("%s mode: %v %v", DemoWebhooksFile, info.Mode(), err)
	}
	prefix := "http://localhost:8080/webhooks/chatra/demo/"
	if !strings.HasPrefix(demo.ChatraWebhookURL, prefix) || !strings.HasPrefix(demo.PlanfixWebhookURL, "http://localhost:8080/webhooks/planfix/demo/") {
		t.Fatalf("webhook URLs: %+v", demo)
	}
	tokens := chatrabridge.WebhookTokens{
		Chatra:  secrets.String(strings.TrimPrefix(demo.ChatraWebhookURL, prefix)),
		Planfix: secrets.String(demo.PlanfixWebhookURL[strings.LastIndexByte(demo.PlanfixWebhookURL, '/')+1:]),
	}
	checkTokens(t, db, tokens, true)

	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/_sandbox/state")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the sandbox does not answer: %v", err)
	}
	resp.Body.Close()

	app.RequireStop()
	stopped = true
	if resp, err := c.Get(base + "/_sandbox/state"); err == nil {
		resp.Body.Close()
		t.Fatal("the sandbox still answers after the app stopped")
	}
}

// A taken sandbox port stops dev before anything starts, naming the port and the flags.
func TestDevPreflightNamesTakenSandboxPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	cfg := config.Config{HTTPAddr: "127.0.0.1:0", DatabaseURL: secrets.String(postgrestest.URL())}

	err = DevPreflight(context.Background(), cfg, DevOptions{SandboxPort: taken})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(taken)) || !strings.Contains(err.Error(), "--sandbox-port") ||
		!strings.Contains(err.Error(), "--no-sandbox") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want one line naming port %d, --sandbox-port and --no-sandbox, got %v", taken, err)
	}
	if err := DevPreflight(context.Background(), cfg, DevOptions{SandboxPort: taken, NoSandbox: true}); err != nil {
		t.Fatalf("with --no-sandbox the sandbox's port does not matter: %v", err)
	}
}

// Started on a taken port (taken after the preflight), the module fails the app's
// start with the same advice.
func TestSandboxModuleTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	db, store := testStore(t)
	o := DevOptions{DataDir: t.TempDir(), SandboxPort: l.Addr().(*net.TCPAddr).Port}
	app := fx.New(fx.NopLogger, fx.Supply(config.Config{PublicURL: "http://localhost:8080"}, o, db, store), sandboxModule)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = app.Start(ctx)
	if err == nil {
		_ = app.Stop(ctx)
		t.Fatal("the app started with the sandbox's port taken")
	}
	if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(o.SandboxPort)) || !strings.Contains(msg, "--sandbox-port") {
		t.Fatalf("start error: %v", err)
	}
}
