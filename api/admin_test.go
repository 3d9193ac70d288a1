package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The admin tests' secrets: distinctive, so that a leak is found by a plain search.
const (
	adminTestToken      = "admin-token-7f3c9e1d-for-tests"
	adminSecretsKey     = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	adminChatraPublic   = "chatra-public-key-31"
	adminChatraSecret   = "chatra-secret-key-9b2e77f0a1"
	adminPlanfixToken   = "planfix-token-c4d5e6f7a8b9"
	adminPublicURL      = "https://bridge.example.com"
	adminStateQueue     = "admin-test-state"
	adminSignalTestDone = "admin-test-done"
)

// adminLogs collects the API's log output (debug level) from concurrent handlers.
type adminLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *adminLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *adminLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// adminEnv is an API server on a fresh test schema, with the Chatra and Planfix sandboxes
// behind real sockets. It keeps every answer body, for the security test.
type adminEnv struct {
	url        string
	server     *api.Server
	db         *postgres.DB
	store      *postgres.IntegrationStore
	logs       *adminLogs
	chatra     *sandbox.Chatra
	chatraURL  string
	planfix    *sandbox.Planfix
	planfixURL string

	mu      sync.Mutex
	answers []adminAnswer
}

type adminAnswer struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

func (a adminAnswer) String() string {
	return fmt.Sprintf("%s %s: %d %s", a.method, a.path, a.status, a.body)
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	return newAdminEnvWith(t, adminTestToken)
}

func newAdminEnvWith(t *testing.T, token string) *adminEnv {
	t.Helper()
	return newAdminEnvConfig(t, config.Config{AdminToken: secrets.String(token), AllowPrivateURLs: true}) // the stand-ins are on 127.0.0.1
}

// newAdminEnvConfig is an admin API with cfg (its PublicURL and TaskQueue set here).
func newAdminEnvConfig(t *testing.T, cfg config.Config) *adminEnv {
	t.Helper()
	db, _ := postgrestest.New(t)
	logs := &adminLogs{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sealer, err := secrets.NewSealer(adminSecretsKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &adminEnv{db: db, logs: logs, store: postgres.NewIntegrationStore(db, sealer)}

	e.chatra = sandbox.NewChatra(adminChatraPublic, adminChatraSecret)
	cs := httptest.NewServer(e.chatra)
	t.Cleanup(cs.Close)
	e.chatraURL = cs.URL
	e.planfix = sandbox.NewPlanfix(adminPlanfixToken)
	e.planfix.SetRateInterval(0)
	ps := httptest.NewServer(e.planfix)
	t.Cleanup(ps.Close)
	e.planfixURL = ps.URL

	reg := metrics.New(logger)
	t.Cleanup(func() { _ = reg.Close() })
	cfg.PublicURL, cfg.TaskQueue = adminPublicURL, adminStateQueue
	s := api.New(api.Params{
		DB: db, Temporal: temporalClient, Metrics: reg, Logger: logger,
		Config:         cfg,
		Integrations:   e.store,
		PlanfixLimiter: postgres.NewRateLimiter(db, 50*time.Millisecond),
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	e.url, e.server = ts.URL, s
	return e
}

// call sends a request with the admin token (or the given Authorization header value;
// "-" sends none) and records the answer.
func (e *adminEnv) call(t *testing.T, method, path, body string, auth ...string) adminAnswer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	authz := "Bearer " + adminTestToken
	if len(auth) > 0 {
		authz = auth[0]
	}
	if authz != "-" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := adminAnswer{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}
	e.mu.Lock()
	e.answers = append(e.answers, a)
	e.mu.Unlock()
	return a
}

func (e *adminEnv) allAnswers() []adminAnswer {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.answers)
}

// decodeAnswer checks the status and decodes the body into T.
func decodeAnswer[T any](t *testing.T, a adminAnswer, status int) T {
	t.Helper()
	var v T
	if a.status != status {
		t.Fatalf("%s; want status %d", a, status)
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	return v
}

// adminError checks an error answer: status, code, field, and a message.
func adminError(t *testing.T, a adminAnswer, status int, code, field string) api.ErrorDetail {
	t.Helper()
	var body api.ErrorBody
	if a.status != status || json.Unmarshal(a.body, &body) != nil || body.Error.Code != code || body.Error.Field != field || body.Error.Message == "" {
		t.Fatalf("%s; want %d %s field %q", a, status, code, field)
	}
	return body.Error
}

// createBody is the create request, pointing at the sandboxes; edit changes it.
func (e *adminEnv) createBody(t *testing.T, edits ...func(m map[string]any)) string {
	t.Helper()
	m := map[string]any{
		"name": "Example shop",
		"chatra": map[string]any{"apiUrl": e.chatraURL, "publicKey": adminChatraPublic, "secretKey": adminChatraSecret,
			"agentId": "", "agentEmail": "support@example.com", "agentName": "Example shop"},
		"planfix": map[string]any{"accountUrl": e.planfixURL, "token": adminPlanfixToken,
			"taskTemplateId": 101, "contactTemplateId": 7, "completedStatusId": 3,
			"assigneeUserIds": []int{5}, "employeeUserIds": []int{5, 6}},
		"options": map[string]any{"newTaskOnlyIfNoActiveTask": true, "sendAsEmployee": false,
			"lateReplyWindow": "72h", "idleTimeout": "24h"},
	}
	for _, edit := range edits {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// set sets a dotted path of a request body; del removes it.
func set(path string, v any) func(map[string]any) {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		m[keys[len(keys)-1]] = v
	}
}

func del(path string) func(map[string]any) {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		delete(m, keys[len(keys)-1])
	}
}

func (e *adminEnv) create(t *testing.T, edits ...func(map[string]any)) api.IntegrationAnswer {
	t.Helper()
	return decodeAnswer[api.IntegrationAnswer](t, e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t, edits...)), http.StatusCreated)
}

// webhookToken takes the token out of a webhook URL, checking the URL's shape.
func webhookToken(t *testing.T, rawURL, kind, id string) string {
	t.Helper()
	prefix := adminPublicURL + "/webhooks/" + kind + "/" + id + "/"
	tok, ok := strings.CutPrefix(rawURL, prefix)
	if !ok || len(tok) != 43 || strings.ContainsAny(tok, "/+=") {
		t.Fatalf("%s webhook URL %q is not %s<43-char token>", kind, rawURL, prefix)
	}
	return tok
}

func TestAdminAuthentication(t *testing.T) {
	e := newAdminEnv(t)
	in := e.create(t)
	endpoints := []struct{ method, path, body string }{
		{http.MethodPost, "/api/v1/integrations", e.createBody(t)},
		{http.MethodGet, "/api/v1/integrations", ""},
		{http.MethodGet, "/api/v1/integrations/" + in.ID, ""},
		{http.MethodPatch, "/api/v1/integrations/" + in.ID, `{"name":"x"}`},
		{http.MethodDelete, "/api/v1/integrations/" + in.ID, ""},
		{http.MethodPost, "/api/v1/integrations/" + in.ID + "/rotate-tokens", ""},
		{http.MethodPost, "/api/v1/integrations/" + in.ID + "/verify", ""},
		{http.MethodGet, "/api/v1/conversations", ""},
		{http.MethodGet, "/api/v1/conversations/chatra%2F" + in.ID + "%2FC1", ""},
		{http.MethodGet, "/api/v1/no-such-route", ""},
	}
	for _, ep := range endpoints {
		for _, authz := range []string{"-", "Bearer", "Bearer ", "Bearer wrong-token", "Bearer " + adminTestToken + "x",
			"Basic " + adminTestToken, adminTestToken, "Bearer " + adminTestToken[:len(adminTestToken)-1]} {
			a := e.call(t, ep.method, ep.path, ep.body, authz)
			adminError(t, a, http.StatusUnauthorized, chatrabridge.EUNAUTHORIZED, "")
			if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%s: no WWW-Authenticate: Bearer", a)
			}
		}
	}
	// Nothing changed behind the refusals.
	list := decodeAnswer[api.IntegrationList](t, e.call(t, http.MethodGet, "/api/v1/integrations", ""), http.StatusOK)
	if len(list.Integrations) != 1 || list.Integrations[0].Name != "Example shop" {
		t.Fatalf("after refused requests: %+v", list)
	}
	// The scheme is case-insensitive; an unknown route behind the token is a 404.
	decodeAnswer[api.IntegrationList](t, e.call(t, http.MethodGet, "/api/v1/integrations", "", "bearer "+adminTestToken), http.StatusOK)
	adminError(t, e.call(t, http.MethodGet, "/api/v1/no-such-route", ""), http.StatusNotFound, chatrabridge.ENOTFOUND, "")

	// A server built without a token lets nothing through, not even an empty bearer.
	open := newAdminEnvWith(t, "")
	for _, authz := range []string{"-", "Bearer ", "Bearer"} {
		adminError(t, open.call(t, http.MethodGet, "/api/v1/integrations", "", authz), http.StatusUnauthorized, chatrabridge.EUNAUTHORIZED, "")
	}
}

// The API module refuses to start without ADMIN_TOKEN, with a message naming the fix.
func TestAdminRefusesToStartWithoutToken(t *testing.T) {
	db, _ := postgrestest.New(t)
	sealer, _ := secrets.NewSealer(adminSecretsKey)
	graph := func(token string) *fxtest.App {
		logger := slog.New(slog.DiscardHandler)
		return fxtest.New(t,
			fx.Supply(db, logger, postgres.NewIntegrationStore(db, sealer), api.Addr("127.0.0.1:0"),
				config.Config{AdminToken: secrets.String(token), PublicURL: adminPublicURL},
				fx.Annotate(temporalClient, fx.As(new(client.Client)))),
			fx.Provide(func() *metrics.Registry { return metrics.New(logger) }),
			api.Module,
		)
	}
	err := graph("").Start(context.Background())
	// The error is the hook's own, unwrapped: main prints it as it is, in one line.
	if err == nil || err.Error() != "ADMIN_TOKEN is not set: the admin API refuses to run without it; set ADMIN_TOKEN or ADMIN_TOKEN_FILE (generate one with `openssl rand -base64 32`)" {
		t.Fatalf("start without ADMIN_TOKEN: %v", err)
	}
	a := graph(adminTestToken)
	a.RequireStart()
	a.RequireStop()
}

func TestAdminIntegrationLifecycle(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()

	// Create: 201, the integration without secrets, webhook URLs with the tokens.
	a := e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t))
	created := decodeAnswer[api.IntegrationAnswer](t, a, http.StatusCreated)
	var raw map[string]map[string]any
	_ = json.Unmarshal(a.body, &raw)
	if _, ok := raw["chatra"]["secretKey"]; ok {
		t.Fatalf("the answer carries chatra.secretKey: %s", a.body)
	}
	if _, ok := raw["planfix"]["token"]; ok {
		t.Fatalf("the answer carries planfix.token: %s", a.body)
	}
	i := created.Integration
	if i.ID == "" || i.Name != "Example shop" || !i.Chatra.HasSecretKey || !i.Planfix.HasToken ||
		i.Chatra.APIURL != e.chatraURL || i.Chatra.PublicKey != adminChatraPublic || i.Chatra.AgentEmail != "support@example.com" ||
		i.Chatra.AgentName != "Example shop" || i.Planfix.AccountURL != e.planfixURL || i.Planfix.TaskTemplateID != 101 ||
		i.Planfix.ContactTemplateID != 7 || i.Planfix.CompletedStatusID != 3 || !slices.Equal(i.Planfix.AssigneeUserIDs, []int64{5}) ||
		!slices.Equal(i.Planfix.EmployeeUserIDs, []int64{5, 6}) || !i.Options.NewTaskOnlyIfNoActiveTask || i.Options.SendAsEmployee ||
		time.Duration(i.Options.LateReplyWindow) != 72*time.Hour || time.Duration(i.Options.IdleTimeout) != 24*time.Hour ||
		i.CreatedAt.IsZero() || i.UpdatedAt.IsZero() {
		t.Fatalf("created = %s", a.body)
	}
	if created.Webhooks == nil {
		t.Fatalf("no webhooks in %s", a.body)
	}
	chatraTok := webhookToken(t, created.Webhooks.ChatraURL, "chatra", i.ID)
	planfixTok := webhookToken(t, created.Webhooks.PlanfixURL, "planfix", i.ID)
	if err := e.db.CheckWebhookToken(ctx, i.ID, postgres.WebhookChatra, chatraTok); err != nil {
		t.Fatalf("the Chatra URL's token does not open the webhook: %v", err)
	}
	if err := e.db.CheckWebhookToken(ctx, i.ID, postgres.WebhookPlanfix, planfixTok); err != nil {
		t.Fatalf("the Planfix URL's token does not open the webhook: %v", err)
	}
	stored, err := e.store.Integration(ctx, i.ID)
	if err != nil || stored.Chatra.SecretKey.Reveal() != adminChatraSecret || stored.Planfix.Token.Reveal() != adminPlanfixToken {
		t.Fatalf("the store does not hold the given secrets: %v", err)
	}

	// Show and list: no webhooks, no secrets.
	a = e.call(t, http.MethodGet, "/api/v1/integrations/"+i.ID, "")
	shown := decodeAnswer[api.IntegrationAnswer](t, a, http.StatusOK)
	if shown.Webhooks != nil || shown.ID != i.ID || shown.Planfix.CompletedStatusID != 3 || !shown.Chatra.HasSecretKey ||
		bytes.Contains(a.body, []byte(chatraTok)) {
		t.Fatalf("show = %s", a.body)
	}
	second := e.create(t, set("name", "Another shop"), set("id", "another"))
	if second.ID != "another" {
		t.Fatalf("chosen id not kept: %q", second.ID)
	}
	list := decodeAnswer[api.IntegrationList](t, e.call(t, http.MethodGet, "/api/v1/integrations", ""), http.StatusOK)
	if len(list.Integrations) != 2 || list.Integrations[0].ID != "another" || list.Integrations[1].ID != i.ID {
		t.Fatalf("list = %+v", list)
	}
	adminError(t, e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t, set("id", "another"))), http.StatusConflict, chatrabridge.ECONFLICT, "id")

	// PATCH: only the given fields change.
	a = e.call(t, http.MethodPatch, "/api/v1/integrations/"+i.ID, `{"name":"Renamed shop",
		"planfix":{"employeeUserIds":[7,6,7],"assigneeUserIds":[]},
		"options":{"sendAsEmployee":true,"idleTimeout":"2h"}}`)
	patched := decodeAnswer[api.IntegrationAnswer](t, a, http.StatusOK)
	if patched.Name != "Renamed shop" || patched.Chatra.AgentName != "Example shop" || !slices.Equal(patched.Planfix.EmployeeUserIDs, []int64{6, 7}) ||
		len(patched.Planfix.AssigneeUserIDs) != 0 || !patched.Options.SendAsEmployee || !patched.Options.NewTaskOnlyIfNoActiveTask ||
		time.Duration(patched.Options.IdleTimeout) != 2*time.Hour || time.Duration(patched.Options.LateReplyWindow) != 72*time.Hour ||
		patched.Planfix.TaskTemplateID != 101 || patched.Chatra.PublicKey != adminChatraPublic || !patched.UpdatedAt.After(i.UpdatedAt) {
		t.Fatalf("patched = %s", a.body)
	}
	if !bytes.Contains(a.body, []byte(`"assigneeUserIds":[]`)) || !bytes.Contains(a.body, []byte(`"idleTimeout":"2h0m0s"`)) {
		t.Fatalf("patched JSON = %s", a.body)
	}
	stored, _ = e.store.Integration(ctx, i.ID)
	if stored.Chatra.SecretKey.Reveal() != adminChatraSecret || stored.Planfix.Token.Reveal() != adminPlanfixToken {
		t.Fatal("a PATCH without secrets changed them")
	}
	var employees []int64
	_ = e.db.Pool.QueryRow(ctx, `SELECT array_agg(planfix_user_id ORDER BY 1) FROM employees WHERE integration_id = $1`, i.ID).Scan(&employees)
	if !slices.Equal(employees, []int64{6, 7}) {
		t.Fatalf("employees table = %v", employees)
	}
	// A PATCH of the secrets replaces them, and nothing else.
	decodeAnswer[api.IntegrationAnswer](t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+i.ID,
		`{"chatra":{"secretKey":"replaced-chatra-secret-55"},"planfix":{"token":"replaced-planfix-token-66"}}`), http.StatusOK)
	stored, _ = e.store.Integration(ctx, i.ID)
	if stored.Chatra.SecretKey.Reveal() != "replaced-chatra-secret-55" || stored.Planfix.Token.Reveal() != "replaced-planfix-token-66" || stored.Name != "Renamed shop" {
		t.Fatal("the secrets were not replaced")
	}
	// completedStatusId 0 asks for resolution again (with the restored token).
	a = e.call(t, http.MethodPatch, "/api/v1/integrations/"+i.ID, `{"planfix":{"token":"`+adminPlanfixToken+`","completedStatusId":0}}`)
	if got := decodeAnswer[api.IntegrationAnswer](t, a, http.StatusOK); got.Planfix.CompletedStatusID != 3 {
		t.Fatalf("re-resolved completed status = %s", a.body)
	}

	// Rotation: new URLs, the old tokens stop working at once.
	a = e.call(t, http.MethodPost, "/api/v1/integrations/"+i.ID+"/rotate-tokens", "")
	rotated := decodeAnswer[api.RotateAnswer](t, a, http.StatusOK)
	newChatraTok := webhookToken(t, rotated.Webhooks.ChatraURL, "chatra", i.ID)
	newPlanfixTok := webhookToken(t, rotated.Webhooks.PlanfixURL, "planfix", i.ID)
	if rotated.ID != i.ID || newChatraTok == chatraTok || newPlanfixTok == planfixTok {
		t.Fatalf("rotate = %s", a.body)
	}
	for _, c := range []struct{ kind, old, new string }{{postgres.WebhookChatra, chatraTok, newChatraTok}, {postgres.WebhookPlanfix, planfixTok, newPlanfixTok}} {
		if err := e.db.CheckWebhookToken(ctx, i.ID, c.kind, c.old); chatrabridge.ErrorCode(err) != chatrabridge.EUNAUTHORIZED {
			t.Fatalf("old %s token after rotation: %v", c.kind, err)
		}
		if err := e.db.CheckWebhookToken(ctx, i.ID, c.kind, c.new); err != nil {
			t.Fatalf("new %s token: %v", c.kind, err)
		}
	}
	// The webhook endpoint itself refuses the old token.
	old := e.call(t, http.MethodPost, "/webhooks/chatra/"+i.ID+"/"+chatraTok, `{"eventName":"chatStarted","client":{"id":"V1","chatId":"C1"}}`, "-")
	if old.status != http.StatusUnauthorized {
		t.Fatalf("Chatra webhook with the old token: %s", old)
	}

	// Delete, then 404 everywhere.
	if a := e.call(t, http.MethodDelete, "/api/v1/integrations/"+i.ID, ""); a.status != http.StatusNoContent || len(a.body) != 0 {
		t.Fatalf("delete = %s", a)
	}
	for _, ep := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/integrations/" + i.ID, ""},
		{http.MethodPatch, "/api/v1/integrations/" + i.ID, `{"name":"x"}`},
		{http.MethodPatch, "/api/v1/integrations/" + i.ID, `{"planfix":{"completedStatusId":0}}`},
		{http.MethodDelete, "/api/v1/integrations/" + i.ID, ""},
		{http.MethodPost, "/api/v1/integrations/" + i.ID + "/rotate-tokens", ""},
		{http.MethodPost, "/api/v1/integrations/" + i.ID + "/verify", ""},
	} {
		d := adminError(t, e.call(t, ep.method, ep.path, ep.body), http.StatusNotFound, chatrabridge.ENOTFOUND, "")
		if !strings.Contains(d.Message, i.ID) {
			t.Fatalf("404 message %q does not name the id", d.Message)
		}
	}
	if err := e.db.CheckWebhookToken(ctx, i.ID, postgres.WebhookChatra, newChatraTok); chatrabridge.ErrorCode(err) != chatrabridge.EUNAUTHORIZED {
		t.Fatalf("token of a deleted integration: %v", err)
	}
}

// Left-out settings take their defaults; a left-out completedStatusId is resolved from
// Planfix (the sandbox's process 1: "Completed", id 3).
func TestAdminCreateDefaults(t *testing.T) {
	e := newAdminEnv(t)
	a := e.call(t, http.MethodPost, "/api/v1/integrations", fmt.Sprintf(`{"name":"  Minimal  ",
		"chatra":{"publicKey":"pk","secretKey":"sk"},
		"planfix":{"accountUrl":%q,"token":%q,"taskTemplateId":101,"contactTemplateId":7}}`, e.planfixURL+"/rest/", adminPlanfixToken))
	got := decodeAnswer[api.IntegrationAnswer](t, a, http.StatusCreated)
	if got.Name != "Minimal" || got.Chatra.APIURL != "https://app.chatra.io" || got.Chatra.AgentName != "Minimal" ||
		got.Planfix.AccountURL != e.planfixURL || got.Planfix.CompletedStatusID != sandbox.PlanfixStatusCompleted ||
		got.Options.NewTaskOnlyIfNoActiveTask || got.Options.SendAsEmployee || len(got.Planfix.EmployeeUserIDs) != 0 {
		t.Fatalf("created = %s", a.body)
	}
	for _, want := range []string{`"lateReplyWindow":"72h0m0s"`, `"idleTimeout":"24h0m0s"`, `"employeeUserIds":[]`, `"assigneeUserIds":[]`, `"agentName":"Minimal"`} {
		if !bytes.Contains(a.body, []byte(want)) {
			t.Errorf("created lacks %s: %s", want, a.body)
		}
	}
	// The generated id fits URLs and workflow ids.
	if err := chatrabridge.ValidateIntegrationID(got.ID); err != nil || len(got.ID) != 16 {
		t.Fatalf("generated id %q: %v", got.ID, err)
	}
}

// fakePlanfix serves the calls that resolve a completed status, with the given process
// statuses, for the cases the sandbox's seed does not have.
func fakePlanfix(t *testing.T, processID int64, statuses string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rest/task/templates", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("offset") != "0" {
			fmt.Fprint(w, `{"result":"success","templates":[]}`)
			return
		}
		fmt.Fprintf(w, `{"result":"success","templates":[{"id":55,"name":"Чат с сайта","processId":%d}]}`, processID)
	})
	mux.HandleFunc("GET /rest/process/task", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"result":"success","processes":[{"id":9,"name":"Чаты"}]}`)
	})
	mux.HandleFunc("GET /rest/process/task/9/statuses", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"result":"success","statuses":%s}`, statuses)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

func TestAdminCompletedStatusResolution(t *testing.T) {
	e := newAdminEnv(t)
	create := func(accountURL, token string, taskTemplate int) adminAnswer {
		return e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t, del("planfix.completedStatusId"),
			set("planfix.accountUrl", accountURL), set("planfix.token", token), set("planfix.taskTemplateId", taskTemplate)))
	}
	// Russian names; "Не выполнена" is inactive and holds "выполн" but is not completed;
	// the template's process is not reported, and there is one process.
	url := fakePlanfix(t, 0, `[{"id":11,"name":"Новая","isActive":true},{"id":12,"name":"Не выполнена","isActive":false},
		{"id":13,"name":"Завершенная","isActive":false},{"id":14,"name":"Выполненная","isActive":true}]`)
	if got := decodeAnswer[api.IntegrationAnswer](t, create(url, "any", 55), http.StatusCreated); got.Planfix.CompletedStatusID != 13 {
		t.Fatalf("resolved %d, want 13 (Завершенная)", got.Planfix.CompletedStatusID)
	}
	url = fakePlanfix(t, 9, `[{"id":21,"name":"В работе","isActive":true},{"id":22,"name":"Выполненная","isActive":false}]`)
	if got := decodeAnswer[api.IntegrationAnswer](t, create(url, "any", 55), http.StatusCreated); got.Planfix.CompletedStatusID != 22 {
		t.Fatalf("resolved %d, want 22 (Выполненная)", got.Planfix.CompletedStatusID)
	}
	// No inactive status named like completed: 400 naming the field, the process's
	// inactive statuses, and what to do.
	url = fakePlanfix(t, 9, `[{"id":31,"name":"Open","isActive":true},{"id":32,"name":"Cancelled","isActive":false},{"id":33,"name":"Done","isActive":true}]`)
	d := adminError(t, create(url, "any", 55), http.StatusBadRequest, chatrabridge.EINVALID, "planfix.completedStatusId")
	if !strings.Contains(d.Message, `32 "Cancelled"`) || !strings.Contains(d.Message, "set planfix.completedStatusId") {
		t.Fatalf("message: %s", d.Message)
	}
	// An unknown task template names taskTemplateId and lists the choices.
	d = adminError(t, create(e.planfixURL, adminPlanfixToken, 999), http.StatusBadRequest, chatrabridge.EINVALID, "planfix.taskTemplateId")
	if !strings.Contains(d.Message, "999") || !strings.Contains(d.Message, `101 "Chat from the website"`) {
		t.Fatalf("message: %s", d.Message)
	}
	// Planfix refusing the token: the field, and why.
	d = adminError(t, create(e.planfixURL, "wrong-planfix-token", 101), http.StatusBadRequest, chatrabridge.EINVALID, "planfix.completedStatusId")
	if !strings.Contains(strings.ToLower(d.Message), "token") {
		t.Fatalf("message: %s", d.Message)
	}
	// Planfix not answering at all.
	d = adminError(t, create("http://127.0.0.1:1", "any", 101), http.StatusBadRequest, chatrabridge.EINVALID, "planfix.completedStatusId")
	if !strings.Contains(d.Message, "cannot be resolved") {
		t.Fatalf("message: %s", d.Message)
	}
	// Nothing was stored by the refused creates.
	list := decodeAnswer[api.IntegrationList](t, e.call(t, http.MethodGet, "/api/v1/integrations", ""), http.StatusOK)
	if len(list.Integrations) != 2 {
		t.Fatalf("%d integrations stored, want the 2 created", len(list.Integrations))
	}

	// PATCH of the task template re-resolves; to an unknown one is refused.
	in := e.create(t)
	adminError(t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, `{"planfix":{"taskTemplateId":999}}`),
		http.StatusBadRequest, chatrabridge.EINVALID, "planfix.taskTemplateId")
	// With an explicit completedStatusId nothing is resolved (so verify can report it).
	a := e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, `{"planfix":{"taskTemplateId":999,"completedStatusId":3}}`)
	if got := decodeAnswer[api.IntegrationAnswer](t, a, http.StatusOK); got.Planfix.TaskTemplateID != 999 {
		t.Fatalf("patched = %s", a.body)
	}
}

func TestAdminValidation(t *testing.T) {
	e := newAdminEnv(t)
	cases := []struct {
		name  string
		edits []func(map[string]any)
		field string
		want  string // in the message
	}{
		{"unknown top-level field", []func(map[string]any){set("color", "red")}, "color", "unknown field color"},
		{"unknown nested field", []func(map[string]any){set("chatra.secret", "x")}, "chatra.secret", "unknown field chatra.secret"},
		{"misspelt field", []func(map[string]any){set("options.SendAsEmployee", true)}, "options.SendAsEmployee", "did you mean sendAsEmployee"},
		{"secret under a wrong key", []func(map[string]any){set("planfix.Token", "leaked-value-1234")}, "planfix.Token", "did you mean token"},
		{"id with a slash", []func(map[string]any){set("id", "a/b")}, "id", "letters, digits"},
		{"id empty", []func(map[string]any){set("id", "")}, "id", "not a valid id"},
		{"name missing", []func(map[string]any){del("name")}, "name", "required"},
		{"name blank", []func(map[string]any){set("name", "   ")}, "name", "required"},
		{"name too long", []func(map[string]any){set("name", strings.Repeat("n", 201))}, "name", "longer than 200"},
		{"name not a string", []func(map[string]any){set("name", 5)}, "name", "must be a string"},
		{"chatra not an object", []func(map[string]any){set("chatra", "x")}, "chatra", "must be an object"},
		{"chatra missing", []func(map[string]any){del("chatra")}, "chatra.publicKey", "required"},
		{"chatra.apiUrl not http", []func(map[string]any){set("chatra.apiUrl", "ftp://chatra")}, "chatra.apiUrl", "not an http(s) URL"},
		{"chatra.apiUrl with credentials", []func(map[string]any){set("chatra.apiUrl", "https://u:p@app.chatra.io")}, "chatra.apiUrl", "without credentials"},
		{"chatra.publicKey missing", []func(map[string]any){del("chatra.publicKey")}, "chatra.publicKey", "required"},
		{"chatra.secretKey missing", []func(map[string]any){del("chatra.secretKey")}, "chatra.secretKey", "required"},
		{"chatra.secretKey empty", []func(map[string]any){set("chatra.secretKey", "")}, "chatra.secretKey", "required"},
		{"chatra.secretKey with a space", []func(map[string]any){set("chatra.secretKey", "leaked secret-5678")}, "chatra.secretKey", "spaces"},
		{"chatra.secretKey a number", []func(map[string]any){set("chatra.secretKey", 123456789)}, "chatra.secretKey", "must be a string"},
		{"chatra.agentEmail", []func(map[string]any){set("chatra.agentEmail", "support at example")}, "chatra.agentEmail", "not an email"},
		{"planfix.accountUrl missing", []func(map[string]any){del("planfix.accountUrl")}, "planfix.accountUrl", "required"},
		{"planfix.accountUrl no scheme", []func(map[string]any){set("planfix.accountUrl", "example.planfix.com")}, "planfix.accountUrl", "not an http(s) URL"},
		{"planfix.token missing", []func(map[string]any){del("planfix.token")}, "planfix.token", "required"},
		{"planfix.taskTemplateId missing", []func(map[string]any){del("planfix.taskTemplateId")}, "planfix.taskTemplateId", "required"},
		{"planfix.taskTemplateId a string", []func(map[string]any){set("planfix.taskTemplateId", "101")}, "planfix.taskTemplateId", "whole number"},
		{"planfix.taskTemplateId a fraction", []func(map[string]any){set("planfix.taskTemplateId", 1.5)}, "planfix.taskTemplateId", "whole number"},
		{"planfix.contactTemplateId zero", []func(map[string]any){set("planfix.contactTemplateId", 0)}, "planfix.contactTemplateId", "required"},
		{"planfix.completedStatusId negative", []func(map[string]any){set("planfix.completedStatusId", -3)}, "planfix.completedStatusId", "status id"},
		{"planfix.assigneeUserIds item", []func(map[string]any){set("planfix.assigneeUserIds", []any{5, "six"})}, "planfix.assigneeUserIds[1]", "whole number"},
		{"planfix.assigneeUserIds zero", []func(map[string]any){set("planfix.assigneeUserIds", []any{0})}, "planfix.assigneeUserIds[0]", "not a Planfix user id"},
		{"planfix.employeeUserIds string", []func(map[string]any){set("planfix.employeeUserIds", "5,6")}, "planfix.employeeUserIds", "must be a list"},
		{"options.lateReplyWindow words", []func(map[string]any){set("options.lateReplyWindow", "3 days")}, "options.lateReplyWindow", "not a duration"},
		{"options.lateReplyWindow negative", []func(map[string]any){set("options.lateReplyWindow", "-1h")}, "options.lateReplyWindow", "positive"},
		{"options.lateReplyWindow huge", []func(map[string]any){set("options.lateReplyWindow", "9000h")}, "options.lateReplyWindow", "longer than"},
		{"options.idleTimeout a number", []func(map[string]any){set("options.idleTimeout", 24)}, "options.idleTimeout", "must be a string"},
		{"options.sendAsEmployee a string", []func(map[string]any){set("options.sendAsEmployee", "yes")}, "options.sendAsEmployee", "true or false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := adminError(t, e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t, c.edits...)), http.StatusBadRequest, chatrabridge.EINVALID, c.field)
			if !strings.Contains(d.Message, c.want) {
				t.Fatalf("message %q lacks %q", d.Message, c.want)
			}
			for _, secret := range []string{adminChatraSecret, adminPlanfixToken, "leaked", "123456789"} {
				if strings.Contains(d.Message, secret) {
					t.Fatalf("message %q echoes a secret", d.Message)
				}
			}
		})
	}
	for _, body := range []string{"", "   ", "not json", "[1,2]", `"text"`, `{"name":"x"`, "null"} {
		a := e.call(t, http.MethodPost, "/api/v1/integrations", body)
		if body == "null" {
			// null is an object with nothing given: the first required field is named.
			adminError(t, a, http.StatusBadRequest, chatrabridge.EINVALID, "name")
			continue
		}
		adminError(t, a, http.StatusBadRequest, chatrabridge.EINVALID, "")
	}
	if list := decodeAnswer[api.IntegrationList](t, e.call(t, http.MethodGet, "/api/v1/integrations", ""), http.StatusOK); len(list.Integrations) != 0 {
		t.Fatalf("an invalid create stored something: %+v", list)
	}
	// Over 1 MiB: 413.
	a := e.call(t, http.MethodPost, "/api/v1/integrations", `{"name":"`+strings.Repeat("x", 1<<20)+`"}`)
	adminError(t, a, http.StatusRequestEntityTooLarge, chatrabridge.ETOOLARGE, "")

	// PATCH validation: same rules, nothing changes on a refusal.
	in := e.create(t)
	before := e.call(t, http.MethodGet, "/api/v1/integrations/"+in.ID, "").body
	for _, c := range []struct{ body, field string }{
		{`{"id":"other"}`, "id"},
		{`{"name":""}`, "name"},
		{`{"nmae":"x"}`, "nmae"},
		{`{"chatra":{"secretKey":""}}`, "chatra.secretKey"},
		{`{"chatra":{"publicKey":""}}`, "chatra.publicKey"},
		{`{"planfix":{"token":""}}`, "planfix.token"},
		{`{"planfix":{"contactTemplateId":-1}}`, "planfix.contactTemplateId"},
		{`{"planfix":{"employeeUserIds":[1,2,-3]}}`, "planfix.employeeUserIds[2]"},
		{`{"options":{"idleTimeout":"soon"}}`, "options.idleTimeout"},
		{`{"options":{"extra":true}}`, "options.extra"},
	} {
		adminError(t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, c.body), http.StatusBadRequest, chatrabridge.EINVALID, c.field)
	}
	adminError(t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, "[]"), http.StatusBadRequest, chatrabridge.EINVALID, "")
	if after := e.call(t, http.MethodGet, "/api/v1/integrations/"+in.ID, "").body; !bytes.Equal(before, after) {
		t.Fatalf("refused PATCHes changed the integration:\n%s\n%s", before, after)
	}
	// An empty PATCH changes nothing but is fine.
	decodeAnswer[api.IntegrationAnswer](t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, `{}`), http.StatusOK)
}

func checksByName(t *testing.T, r api.VerifyResult) map[string]api.VerifyCheck {
	t.Helper()
	want := []string{api.CheckChatraKeys, api.CheckPlanfixToken, api.CheckPlanfixTaskTemplate, api.CheckPlanfixContactTemplate, api.CheckPlanfixCompletedStatus}
	m := map[string]api.VerifyCheck{}
	var names []string
	for _, c := range r.Checks {
		m[c.Name] = c
		names = append(names, c.Name)
		if c.Message == "" || c.OK == (c.Problem != "") {
			t.Fatalf("check %+v: an ok check has no problem, a failed one has one, each has a message", c)
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("checks %v, want %v", names, want)
	}
	return m
}

func TestAdminVerify(t *testing.T) {
	e := newAdminEnv(t)
	in := e.create(t)
	verify := func() (api.VerifyResult, map[string]api.VerifyCheck) {
		t.Helper()
		r := decodeAnswer[api.VerifyResult](t, e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/verify", ""), http.StatusOK)
		return r, checksByName(t, r)
	}
	patch := func(body string) {
		t.Helper()
		decodeAnswer[api.IntegrationAnswer](t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, body), http.StatusOK)
	}
	expectProblem := func(checks map[string]api.VerifyCheck, name, problem string) {
		t.Helper()
		if c := checks[name]; c.OK || c.Problem != problem {
			t.Fatalf("check %s = %+v, want problem %s", name, c, problem)
		}
	}

	r, checks := verify()
	if !r.OK {
		t.Fatalf("verify of a good integration: %+v", r)
	}
	if len(r.TaskTemplates) != 1 || r.TaskTemplates[0].ID != 101 || len(r.ContactTemplates) != 1 || r.ContactTemplates[0].ID != 7 || len(r.Statuses) != 3 {
		t.Fatalf("choices = %+v %+v %+v", r.TaskTemplates, r.ContactTemplates, r.Statuses)
	}
	if !strings.Contains(checks[api.CheckPlanfixCompletedStatus].Message, `"Completed"`) {
		t.Fatalf("completed status check: %+v", checks[api.CheckPlanfixCompletedStatus])
	}
	// The Chatra check asked for a visitor, with the keys.
	if e.chatra.RequestCount() != 1 {
		t.Fatalf("Chatra got %d requests, want 1", e.chatra.RequestCount())
	}

	e.chatra.SetPaidPlan(false)
	r, checks = verify()
	expectProblem(checks, api.CheckChatraKeys, api.ProblemUnpaid)
	if r.OK || !checks[api.CheckPlanfixToken].OK {
		t.Fatalf("unpaid Chatra: %+v", r)
	}
	e.chatra.SetPaidPlan(true)

	patch(`{"chatra":{"secretKey":"wrong-chatra-secret"}}`)
	_, checks = verify()
	expectProblem(checks, api.CheckChatraKeys, api.ProblemBadKeys)
	patch(`{"chatra":{"secretKey":"` + adminChatraSecret + `","apiUrl":"http://127.0.0.1:1"}}`)
	_, checks = verify()
	expectProblem(checks, api.CheckChatraKeys, api.ProblemUnreachable)
	patch(`{"chatra":{"apiUrl":"` + e.chatraURL + `"}}`)

	patch(`{"planfix":{"token":"wrong-planfix-token"}}`)
	_, checks = verify()
	expectProblem(checks, api.CheckPlanfixToken, api.ProblemBadToken)
	for _, name := range []string{api.CheckPlanfixTaskTemplate, api.CheckPlanfixContactTemplate, api.CheckPlanfixCompletedStatus} {
		expectProblem(checks, name, api.ProblemSkipped)
	}
	if !checks[api.CheckChatraKeys].OK {
		t.Fatal("the Chatra check failed with good keys")
	}
	patch(`{"planfix":{"token":"` + adminPlanfixToken + `"}}`)

	patch(`{"planfix":{"taskTemplateId":999,"contactTemplateId":998,"completedStatusId":3}}`)
	r, checks = verify()
	expectProblem(checks, api.CheckPlanfixTaskTemplate, api.ProblemUnknownTemplate)
	expectProblem(checks, api.CheckPlanfixContactTemplate, api.ProblemUnknownTemplate)
	expectProblem(checks, api.CheckPlanfixCompletedStatus, api.ProblemSkipped)
	if !strings.Contains(checks[api.CheckPlanfixTaskTemplate].Message, `101 "Chat from the website"`) || len(r.TaskTemplates) != 1 {
		t.Fatalf("unknown template: %+v", checks[api.CheckPlanfixTaskTemplate])
	}

	patch(`{"planfix":{"taskTemplateId":101,"contactTemplateId":7,"completedStatusId":2}}`)
	_, checks = verify()
	expectProblem(checks, api.CheckPlanfixCompletedStatus, api.ProblemNoCompletedStatus)
	if msg := checks[api.CheckPlanfixCompletedStatus].Message; !strings.Contains(msg, "active") || !strings.Contains(msg, `3 "Completed"`) {
		t.Fatalf("active completed status: %s", msg)
	}
	patch(`{"planfix":{"completedStatusId":77}}`)
	_, checks = verify()
	expectProblem(checks, api.CheckPlanfixCompletedStatus, api.ProblemNoCompletedStatus)

	e.planfix.InjectFaults(sandbox.PlanfixFault{Status: http.StatusPaymentRequired, Code: 20, Message: "Account is unpaid"})
	patch(`{"planfix":{"completedStatusId":3}}`)
	_, checks = verify()
	expectProblem(checks, api.CheckPlanfixToken, api.ProblemUnpaid)

	r, _ = verify()
	if !r.OK {
		t.Fatalf("verify after the fixes: %+v", r)
	}
}

// adminStateWorkflow stands in for ConversationWorkflow: it answers the "state" query
// with a known State until told to end.
func adminStateWorkflow(ctx workflow.Context, in workflows.ConversationInput) error {
	st := workflows.State{IntegrationID: in.IntegrationID, ChatID: in.ChatID, Status: workflows.StatusOpen,
		TaskID: 4242, MessagesReceived: 3, CustomerName: "Ivan"}
	if err := workflow.SetQueryHandler(ctx, workflows.QueryState, func() (workflows.State, error) { return st, nil }); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, adminSignalTestDone).Receive(ctx, nil)
	return nil
}

func TestAdminConversations(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	w := worker.New(temporalClient, adminStateQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(adminStateWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	a, b := e.create(t, set("id", "shop-a")), e.create(t, set("id", "shop-b"))
	task := int64(4242)
	for _, c := range []postgres.Conversation{
		{IntegrationID: a.ID, ChatID: "C1", WorkflowID: workflows.ConversationWorkflowID(a.ID, "C1"), PlanfixTaskID: &task, CustomerName: "Ivan"},
		{IntegrationID: a.ID, ChatID: "C2", WorkflowID: workflows.ConversationWorkflowID(a.ID, "C2"), Status: postgres.StatusClosed},
		{IntegrationID: b.ID, ChatID: "C1", WorkflowID: workflows.ConversationWorkflowID(b.ID, "C1")},
	} {
		if _, err := e.db.SaveConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	run, err := temporalClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ConversationWorkflowID(a.ID, "C1"), TaskQueue: adminStateQueue},
		workflows.ConversationWorkflowName, workflows.ConversationInput{IntegrationID: a.ID, ChatID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = temporalClient.SignalWorkflow(ctx, run.GetID(), "", adminSignalTestDone, nil) })

	list := func(query string) []string {
		t.Helper()
		l := decodeAnswer[api.ConversationList](t, e.call(t, http.MethodGet, "/api/v1/conversations"+query, ""), http.StatusOK)
		var ids []string
		for _, c := range l.Conversations {
			ids = append(ids, c.IntegrationID+"/"+c.ChatID)
		}
		slices.Sort(ids)
		return ids
	}
	for query, want := range map[string][]string{
		"":                                    {"shop-a/C1", "shop-a/C2", "shop-b/C1"},
		"?integrationId=shop-a":               {"shop-a/C1", "shop-a/C2"},
		"?integrationId=shop-a&status=closed": {"shop-a/C2"},
		"?status=open":                        {"shop-a/C1", "shop-b/C1"},
		"?status=ended":                       nil,
		"?integrationId=unknown":              nil,
		"?limit=1":                            {"shop-b/C1"}, // the most recently active
		"?limit=2&offset=2":                   {"shop-a/C1"},
	} {
		if got := list(query); !slices.Equal(got, want) {
			t.Errorf("conversations%s = %v, want %v", query, got, want)
		}
	}
	if a := e.call(t, http.MethodGet, "/api/v1/conversations?status=ended", ""); !bytes.Contains(a.body, []byte(`"conversations":[]`)) {
		t.Fatalf("an empty list is not []: %s", a.body)
	}
	for query, field := range map[string]string{
		"?status=finished": "status", "?limit=0": "limit", "?limit=x": "limit", "?limit=1001": "limit",
		"?offset=-1": "offset", "?integration=shop-a": "integration",
	} {
		adminError(t, e.call(t, http.MethodGet, "/api/v1/conversations"+query, ""), http.StatusBadRequest, chatrabridge.EINVALID, field)
	}

	// Detail: the row plus the workflow's state, by the escaped workflow id or the short id.
	for _, path := range []string{
		"/api/v1/conversations/" + url.PathEscape(workflows.ConversationWorkflowID(a.ID, "C1")),
		"/api/v1/conversations/" + a.ID + "/C1",
		"/api/v1/conversations/chatra/" + a.ID + "/C1",
	} {
		d := decodeAnswer[api.ConversationDetail](t, e.call(t, http.MethodGet, path, ""), http.StatusOK)
		if d.IntegrationID != a.ID || d.ChatID != "C1" || d.WorkflowID != run.GetID() || d.PlanfixTaskID == nil || *d.PlanfixTaskID != 4242 ||
			d.State == nil || d.State.TaskID != 4242 || d.State.MessagesReceived != 3 || d.State.CustomerName != "Ivan" || d.StateError != "" {
			t.Fatalf("%s = %+v (state %+v)", path, d, d.State)
		}
	}
	// A conversation whose workflow does not exist: the row and a stateError.
	d := decodeAnswer[api.ConversationDetail](t, e.call(t, http.MethodGet, "/api/v1/conversations/"+a.ID+"/C2", ""), http.StatusOK)
	if d.ChatID != "C2" || d.Status != postgres.StatusClosed || d.State != nil || !strings.Contains(d.StateError, "does not exist") {
		t.Fatalf("detail without a workflow = %+v", d)
	}
	adminError(t, e.call(t, http.MethodGet, "/api/v1/conversations/"+a.ID+"/C9", ""), http.StatusNotFound, chatrabridge.ENOTFOUND, "")
	adminError(t, e.call(t, http.MethodGet, "/api/v1/conversations/nope%2FC1", ""), http.StatusNotFound, chatrabridge.ENOTFOUND, "")
	for _, bad := range []string{"only-one-part", "chatra%2Fshop-a", "chatra/shop-a/", "%2FC1"} {
		adminError(t, e.call(t, http.MethodGet, "/api/v1/conversations/"+bad, ""), http.StatusBadRequest, chatrabridge.EINVALID, "id")
	}
}

// The security test: every admin flow, with the API logging at debug level. No secret
// (Chatra secret key, Planfix token, admin token) appears in a log line, an answer body
// or header; a webhook token appears only in the answer that created it (create or
// rotate-tokens) and never in a log; the database holds none of them in clear.
func TestAdminSecretsNeverLeak(t *testing.T) {
	e := newAdminEnv(t)
	const (
		newChatraSecret  = "rotated-chatra-secret-d41d8cd9"
		newPlanfixToken  = "rotated-planfix-token-8f00b204"
		misplacedSecret  = "misplaced-secret-e9800998ecf8"
		wrongAdminSecret = "presented-wrong-admin-token-427e"
	)
	// tokenSources maps each webhook token to the answer (index) that revealed it.
	tokenSources := map[string]int{}
	index := func() int { return len(e.allAnswers()) - 1 }
	noteTokens := func(urls api.WebhookURLs, id string) {
		tokenSources[webhookToken(t, urls.ChatraURL, "chatra", id)] = index()
		tokenSources[webhookToken(t, urls.PlanfixURL, "planfix", id)] = index()
	}

	in := e.create(t)
	noteTokens(*in.Webhooks, in.ID)
	e.call(t, http.MethodGet, "/api/v1/integrations", "")
	e.call(t, http.MethodGet, "/api/v1/integrations/"+in.ID, "")
	e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/verify", "")
	// Refusals: a wrong admin token, a secret under a wrong key, an invalid secret.
	e.call(t, http.MethodGet, "/api/v1/integrations", "", "Bearer "+wrongAdminSecret)
	e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t, set("chatra.secretkey", misplacedSecret)))
	e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, `{"planfix":{"token":"`+misplacedSecret+` with spaces"}}`)
	e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, `{"chatra":{"secretKey":["`+misplacedSecret+`"]}}`)
	// Failing checks, whose answers come from Chatra's and Planfix's error bodies.
	e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, `{"chatra":{"secretKey":"`+newChatraSecret+`"},"planfix":{"token":"`+newPlanfixToken+`"}}`)
	e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/verify", "")
	// Resolving a completed status with a token Planfix refuses.
	e.call(t, http.MethodPatch, "/api/v1/integrations/"+in.ID, `{"planfix":{"completedStatusId":0}}`)
	e.call(t, http.MethodPost, "/api/v1/integrations", e.createBody(t, del("planfix.completedStatusId"), set("planfix.token", newPlanfixToken)))
	// Rotation, and the old token presented to the webhook.
	rotated := decodeAnswer[api.RotateAnswer](t, e.call(t, http.MethodPost, "/api/v1/integrations/"+in.ID+"/rotate-tokens", ""), http.StatusOK)
	noteTokens(rotated.Webhooks, in.ID)
	oldChatraTok := webhookToken(t, in.Webhooks.ChatraURL, "chatra", in.ID)
	e.call(t, http.MethodPost, "/webhooks/chatra/"+in.ID+"/"+oldChatraTok, `{"eventName":"chatStarted","client":{"id":"V1","chatId":"C1"}}`, "-")
	e.call(t, http.MethodGet, "/api/v1/conversations", "")
	e.call(t, http.MethodGet, "/metrics", "", "-")
	assertNoSecretInDB(t, e.db, adminChatraSecret, adminPlanfixToken, newChatraSecret, newPlanfixToken, misplacedSecret)
	for tok := range tokenSources {
		assertNoSecretInDB(t, e.db, tok)
	}
	e.call(t, http.MethodDelete, "/api/v1/integrations/"+in.ID, "")

	secretsAlways := []string{adminChatraSecret, adminPlanfixToken, adminTestToken, newChatraSecret, newPlanfixToken, misplacedSecret, wrongAdminSecret}
	answers := e.allAnswers()
	if len(answers) < 15 {
		t.Fatalf("only %d answers recorded", len(answers))
	}
	for n, a := range answers {
		var headers strings.Builder
		_ = a.header.Write(&headers)
		seen := string(a.body) + headers.String()
		for _, s := range secretsAlways {
			if strings.Contains(seen, s) {
				t.Errorf("answer %d (%s %s) contains the secret %s…", n, a.method, a.path, s[:12])
			}
		}
		for tok, source := range tokenSources {
			if n != source && strings.Contains(seen, tok) {
				t.Errorf("answer %d (%s %s) contains the webhook token revealed by answer %d", n, a.method, a.path, source)
			}
			if n == source && !strings.Contains(seen, tok) {
				t.Errorf("answer %d does not contain its webhook token", n)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "level=DEBUG") && !strings.Contains(logs, "level=INFO") {
		t.Fatalf("nothing was logged; the test would prove nothing:\n%s", logs)
	}
	for _, s := range secretsAlways {
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain the secret %s…", s[:12])
		}
	}
	for tok := range tokenSources {
		if strings.Contains(logs, tok) {
			t.Errorf("the logs contain a webhook token")
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}

// assertNoSecretInDB searches every table of the test schema, as text and as raw bytes,
// for the secrets (and their base64 forms).
func assertNoSecretInDB(t *testing.T, db *postgres.DB, secretValues ...string) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if rows.Err() != nil || !slices.Contains(tables, "integrations") {
		t.Fatalf("tables %v: %v", tables, rows.Err())
	}
	var dump bytes.Buffer
	for _, table := range tables {
		var text []byte
		if err := db.Pool.QueryRow(ctx, `SELECT convert_to(coalesce(string_agg(t::text, E'\n'), ''), 'UTF8') FROM `+table+` t`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		dump.Write(text)
	}
	// The bytea columns, raw.
	var raw []byte
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(coalesce(chatra_secret_key, '') || coalesce(planfix_token, '') || chatra_token_hash || planfix_token_hash, ''), '') FROM integrations`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	dump.Write(raw)
	if dump.Len() < 100 {
		t.Fatalf("the database dump is suspiciously small (%d bytes)", dump.Len())
	}
	for _, s := range secretValues {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s))} {
			if bytes.Contains(dump.Bytes(), []byte(form)) {
				t.Errorf("the database holds the secret %s… in clear", s[:12])
			}
		}
	}
}
