package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

const (
	testKey1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"
	testKey2 = "YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=" // "abcdef0123456789abcdef0123456789"

	chatraSecret = "chatra-secret-4f9d1c2b7a"
	planfixToken = "planfix-token-8e3a6b0d55"
)

func sealer(t *testing.T, keys string) *secrets.Sealer {
	t.Helper()
	s, err := secrets.NewSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func validUpdate() chatrabridge.IntegrationUpdate {
	return chatrabridge.IntegrationUpdate{
		Name: ptr("Example shop"),
		Chatra: &chatrabridge.ChatraUpdate{
			PublicKey: ptr("chatra-public"), SecretKey: ptr(secrets.String(chatraSecret)),
			AgentEmail: ptr("support@example.com"),
		},
		Planfix: &chatrabridge.PlanfixUpdate{
			AccountURL: ptr("https://example.planfix.com"), Token: ptr(secrets.String(planfixToken)),
			TaskTemplateID: ptr[int64](101), ContactTemplateID: ptr[int64](7), CompletedStatusID: ptr[int64](3),
			AssigneeUserIDs: &[]int64{5}, EmployeeUserIDs: &[]int64{6, 5},
		},
	}
}

func newIntegration(t *testing.T, u chatrabridge.IntegrationUpdate) *chatrabridge.Integration {
	t.Helper()
	i, err := chatrabridge.NewIntegration(u)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// rawColumns is everything the integrations and employees tables hold for one
// integration, as bytes, to search for secrets in clear.
func rawColumns(t *testing.T, db *postgres.DB, id string) []byte {
	t.Helper()
	var row []byte
	err := db.Pool.QueryRow(context.Background(), `
		SELECT convert_to(i::text, 'UTF8') || coalesce(i.chatra_secret_key, '') || coalesce(i.planfix_token, '')
			|| i.chatra_token_hash || i.planfix_token_hash
			|| convert_to(coalesce((SELECT string_agg(e::text, ',') FROM employees e WHERE e.integration_id = i.id), ''), 'UTF8')
		FROM integrations i WHERE id = $1`, id).Scan(&row)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

func assertNoClearSecret(t *testing.T, raw []byte, secretValues ...string) {
	t.Helper()
	for _, s := range secretValues {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))} {
			if bytes.Contains(raw, []byte(form)) {
				t.Fatalf("the database holds the secret %q in clear", s[:6]+"…")
			}
		}
	}
}

func TestIntegrationStoreCRUD(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	store := postgres.NewIntegrationStore(db, sealer(t, testKey1))

	in := newIntegration(t, validUpdate())
	tokens, err := store.CreateIntegration(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID == "" || in.CreatedAt.IsZero() || in.UpdatedAt.IsZero() {
		t.Fatalf("create did not set id and times: %+v", in)
	}
	if len(tokens.Chatra.Reveal()) != 43 || len(tokens.Planfix.Reveal()) != 43 || tokens.Chatra == tokens.Planfix {
		t.Fatalf("tokens are not two distinct 32-byte base64url values")
	}

	got, err := store.Integration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Chatra.SecretKey.Reveal() != chatraSecret || got.Planfix.Token.Reveal() != planfixToken {
		t.Fatal("Integration did not open the secrets")
	}
	if !got.Chatra.HasSecretKey || !got.Planfix.HasToken {
		t.Fatal("HasSecretKey/HasToken false")
	}
	if got.Name != "Example shop" || got.Chatra.APIURL != chatrabridge.DefaultChatraAPIURL || got.Chatra.AgentName != "Example shop" ||
		got.Chatra.PublicKey != "chatra-public" || got.Chatra.AgentEmail != "support@example.com" ||
		got.Planfix.AccountURL != "https://example.planfix.com" || got.Planfix.TaskTemplateID != 101 ||
		got.Planfix.ContactTemplateID != 7 || got.Planfix.CompletedStatusID != 3 ||
		!slices.Equal(got.Planfix.AssigneeUserIDs, []int64{5}) || !slices.Equal(got.Planfix.EmployeeUserIDs, []int64{5, 6}) ||
		time.Duration(got.Options.LateReplyWindow) != 72*time.Hour || time.Duration(got.Options.IdleTimeout) != 24*time.Hour {
		t.Fatalf("stored integration differs: %+v", got)
	}

	shown, err := store.IntegrationSettings(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if shown.Chatra.SecretKey != "" || shown.Planfix.Token != "" || !shown.Chatra.HasSecretKey || !shown.Planfix.HasToken {
		t.Fatal("IntegrationSettings opened the secrets or lost Has*")
	}

	// A second one, with its own id; the list is by name.
	u2 := validUpdate()
	u2.ID, u2.Name = ptr("alpha-shop"), ptr("Alpha shop")
	u2.Planfix.EmployeeUserIDs = nil
	if _, err := store.CreateIntegration(ctx, newIntegration(t, u2)); err != nil {
		t.Fatal(err)
	}
	_, err = store.CreateIntegration(ctx, newIntegration(t, u2))
	if chatrabridge.ErrorCode(err) != chatrabridge.ECONFLICT || chatrabridge.ErrorField(err) != "id" {
		t.Fatalf("duplicate id: %v (code %s)", err, chatrabridge.ErrorCode(err))
	}
	list, err := store.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "alpha-shop" || list[1].ID != in.ID {
		t.Fatalf("list = %+v", list)
	}
	if list[0].Chatra.SecretKey != "" || list[1].Planfix.Token != "" || len(list[0].Planfix.EmployeeUserIDs) != 0 || list[0].Planfix.EmployeeUserIDs == nil {
		t.Fatalf("list opened secrets or lost employees: %+v", list[0])
	}

	// PATCH: only what is given changes; a secret only when given.
	sealedKey := func() []byte {
		t.Helper()
		var b []byte
		if err := db.Pool.QueryRow(ctx, `SELECT chatra_secret_key FROM integrations WHERE id = $1`, in.ID).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := sealedKey()
	updated, err := store.UpdateIntegration(ctx, in.ID, chatrabridge.IntegrationUpdate{
		Name:    ptr("Renamed shop"),
		Planfix: &chatrabridge.PlanfixUpdate{EmployeeUserIDs: &[]int64{7, 6}},
		Options: &chatrabridge.OptionsUpdate{SendAsEmployee: ptr(true), LateReplyWindow: ptr(chatrabridge.Duration(time.Hour))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Name != "Renamed shop" || updated.Chatra.AgentName != "Example shop" || !updated.Options.SendAsEmployee ||
		time.Duration(updated.Options.LateReplyWindow) != time.Hour || time.Duration(updated.Options.IdleTimeout) != 24*time.Hour ||
		!slices.Equal(updated.Planfix.EmployeeUserIDs, []int64{6, 7}) || updated.Planfix.TaskTemplateID != 101 ||
		updated.Chatra.SecretKey != "" || !updated.Chatra.HasSecretKey || !updated.UpdatedAt.After(in.UpdatedAt) {
		t.Fatalf("after PATCH: %+v", updated)
	}
	var employees []int64
	if err := db.Pool.QueryRow(ctx, `SELECT array_agg(planfix_user_id ORDER BY planfix_user_id) FROM employees WHERE integration_id = $1`, in.ID).Scan(&employees); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(employees, []int64{6, 7}) {
		t.Fatalf("employees table = %v, want [6 7]", employees)
	}
	if !bytes.Equal(before, sealedKey()) {
		t.Fatal("a PATCH without secretKey re-sealed the secret key")
	}
	got, _ = store.Integration(ctx, in.ID)
	if got.Chatra.SecretKey.Reveal() != chatraSecret || got.Planfix.Token.Reveal() != planfixToken {
		t.Fatal("a PATCH without secrets lost them")
	}

	// Replacing a secret.
	if _, err := store.UpdateIntegration(ctx, in.ID, chatrabridge.IntegrationUpdate{
		Planfix: &chatrabridge.PlanfixUpdate{Token: ptr(secrets.String("new-planfix-token-77"))},
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = store.Integration(ctx, in.ID)
	if got.Planfix.Token.Reveal() != "new-planfix-token-77" || got.Chatra.SecretKey.Reveal() != chatraSecret {
		t.Fatal("replacing the Planfix token did not take, or changed the Chatra key")
	}
	assertNoClearSecret(t, rawColumns(t, db, in.ID), chatraSecret, "new-planfix-token-77", planfixToken,
		tokens.Chatra.Reveal(), tokens.Planfix.Reveal())

	// Invalid PATCHes change nothing.
	for _, c := range []struct {
		u     chatrabridge.IntegrationUpdate
		field string
	}{
		{chatrabridge.IntegrationUpdate{ID: ptr("other")}, "id"},
		{chatrabridge.IntegrationUpdate{Name: ptr("  ")}, "name"},
		{chatrabridge.IntegrationUpdate{Chatra: &chatrabridge.ChatraUpdate{SecretKey: ptr(secrets.String(""))}}, "chatra.secretKey"},
		{chatrabridge.IntegrationUpdate{Planfix: &chatrabridge.PlanfixUpdate{TaskTemplateID: ptr[int64](0)}}, "planfix.taskTemplateId"},
		{chatrabridge.IntegrationUpdate{Planfix: &chatrabridge.PlanfixUpdate{EmployeeUserIDs: &[]int64{5, -1}}}, "planfix.employeeUserIds[1]"},
	} {
		_, err := store.UpdateIntegration(ctx, in.ID, c.u)
		if chatrabridge.ErrorCode(err) != chatrabridge.EINVALID || chatrabridge.ErrorField(err) != c.field {
			t.Errorf("PATCH %+v: %v (field %q), want invalid %s", c.u, err, chatrabridge.ErrorField(err), c.field)
		}
	}
	if got, _ := store.Integration(ctx, in.ID); got.Name != "Renamed shop" || got.Chatra.SecretKey.Reveal() != chatraSecret ||
		!slices.Equal(got.Planfix.EmployeeUserIDs, []int64{6, 7}) {
		t.Fatalf("an invalid PATCH changed the integration: %+v", got)
	}

	// Unknown ids.
	for name, err := range map[string]error{
		"get":  func() error { _, err := store.Integration(ctx, "nope"); return err }(),
		"show": func() error { _, err := store.IntegrationSettings(ctx, "nope"); return err }(),
		"update": func() error {
			_, err := store.UpdateIntegration(ctx, "nope", chatrabridge.IntegrationUpdate{Name: ptr("x")})
			return err
		}(),
		"rotate": func() error { _, err := store.RotateWebhookTokens(ctx, "nope"); return err }(),
		"delete": store.DeleteIntegration(ctx, "nope"),
	} {
		if chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND || !strings.Contains(chatrabridge.ErrorMessage(err), `"nope"`) {
			t.Errorf("%s of an unknown id: %v", name, err)
		}
	}

	// Delete cascades to employees.
	if err := store.DeleteIntegration(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Integration(ctx, in.ID); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM employees WHERE integration_id = $1`, in.ID).Scan(&n)
	if n != 0 {
		t.Fatalf("%d employees left after delete", n)
	}
}

func TestWebhookTokens(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	store := postgres.NewIntegrationStore(db, sealer(t, testKey1))
	in := newIntegration(t, validUpdate())
	tokens, err := store.CreateIntegration(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(kind, token string) {
		t.Helper()
		if err := db.CheckWebhookToken(ctx, in.ID, kind, token); err != nil {
			t.Fatalf("CheckWebhookToken(%s) = %v", kind, err)
		}
	}
	refused := func(id, kind, token string) {
		t.Helper()
		err := db.CheckWebhookToken(ctx, id, kind, token)
		if chatrabridge.ErrorCode(err) != chatrabridge.EUNAUTHORIZED || chatrabridge.ErrorMessage(err) != "unknown integration or wrong token" {
			t.Fatalf("CheckWebhookToken(%s, %s) = %v, want the one unauthorized answer", id, kind, err)
		}
	}
	ok(postgres.WebhookChatra, tokens.Chatra.Reveal())
	ok(postgres.WebhookPlanfix, tokens.Planfix.Reveal())
	refused(in.ID, postgres.WebhookChatra, tokens.Planfix.Reveal()) // each token opens only its own webhook
	refused(in.ID, postgres.WebhookPlanfix, tokens.Chatra.Reveal())
	refused(in.ID, postgres.WebhookChatra, "")
	refused(in.ID, postgres.WebhookChatra, tokens.Chatra.Reveal()[:42])
	refused("unknown", postgres.WebhookChatra, tokens.Chatra.Reveal())
	if err := db.CheckWebhookToken(ctx, in.ID, "slack", tokens.Chatra.Reveal()); chatrabridge.ErrorCode(err) != chatrabridge.EINVALID {
		t.Fatalf("unknown kind: %v", err)
	}

	rotated, err := store.RotateWebhookTokens(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Chatra == tokens.Chatra || rotated.Planfix == tokens.Planfix {
		t.Fatal("rotation returned the old tokens")
	}
	refused(in.ID, postgres.WebhookChatra, tokens.Chatra.Reveal())
	refused(in.ID, postgres.WebhookPlanfix, tokens.Planfix.Reveal())
	ok(postgres.WebhookChatra, rotated.Chatra.Reveal())
	ok(postgres.WebhookPlanfix, rotated.Planfix.Reveal())
	assertNoClearSecret(t, rawColumns(t, db, in.ID), rotated.Chatra.Reveal(), rotated.Planfix.Reveal(), tokens.Chatra.Reveal())

	// The hashes are SHA-256 of the tokens, nothing else.
	var h []byte
	_ = db.Pool.QueryRow(ctx, `SELECT chatra_token_hash FROM integrations WHERE id = $1`, in.ID).Scan(&h)
	if !bytes.Equal(h, secrets.HashToken(rotated.Chatra.Reveal())) {
		t.Fatal("chatra_token_hash is not the token's hash")
	}
}

// Secrets sealed under an old key still open after SECRETS_KEY is rotated; without the
// old key they do not, and the error says what to do without revealing anything.
func TestIntegrationSecretsAcrossKeyRotation(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	old := postgres.NewIntegrationStore(db, sealer(t, testKey1))
	in := newIntegration(t, validUpdate())
	if _, err := old.CreateIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	rotated := postgres.NewIntegrationStore(db, sealer(t, testKey2+","+testKey1))
	got, err := rotated.Integration(ctx, in.ID)
	if err != nil || got.Chatra.SecretKey.Reveal() != chatraSecret || got.Planfix.Token.Reveal() != planfixToken {
		t.Fatalf("after key rotation: %v", err)
	}
	// Re-sealing (a PATCH with the secret) moves it to the new key.
	if _, err := rotated.UpdateIntegration(ctx, in.ID, chatrabridge.IntegrationUpdate{Chatra: &chatrabridge.ChatraUpdate{SecretKey: ptr(secrets.String(chatraSecret))}}); err != nil {
		t.Fatal(err)
	}
	newOnly := postgres.NewIntegrationStore(db, sealer(t, testKey2))
	_, err = newOnly.Integration(ctx, in.ID) // the Planfix token is still under the old key
	if chatrabridge.ErrorCode(err) != chatrabridge.EINTERNAL || !strings.Contains(err.Error(), "SECRETS_KEY") {
		t.Fatalf("opening with the old key gone: %v", err)
	}
	if strings.Contains(err.Error(), planfixToken) || strings.Contains(err.Error(), chatraSecret) {
		t.Fatal("the error reveals a secret")
	}
	if _, err := newOnly.IntegrationSettings(ctx, in.ID); err != nil {
		t.Fatalf("settings need no key: %v", err)
	}
}
