package activities_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

const (
	integrationID = "shop"
	planfixToken  = "pf-token-0123456789"
	chatraPublic  = "pub-key"
	chatraSecret  = "secret-key-0123"
	clientID      = "V1"
	chatID        = "CHAT1"
)

// integrations is an IntegrationService over one integration value.
type integrations struct{ i *chatrabridge.Integration }

func (s integrations) Integration(_ context.Context, id string) (*chatrabridge.Integration, error) {
	if s.i == nil || id != s.i.ID {
		return nil, chatrabridge.Errorf(chatrabridge.ENOTFOUND, "integration %q not found", id)
	}
	c := *s.i
	return &c, nil
}

// env is the activities over a fresh PostgreSQL schema and the Chatra and Planfix
// sandboxes.
type env struct {
	acts    *activities.Activities
	db      *postgres.DB
	planfix *sandbox.Planfix
	chatra  *sandbox.Chatra
	integ   *chatrabridge.Integration
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO integrations (id, name, chatra_token_hash, planfix_token_hash) VALUES ($1, 'Shop', '\x00', '\x00')`, integrationID); err != nil {
		t.Fatalf("insert integration: %v", err)
	}
	pf := sandbox.NewPlanfix(planfixToken)
	pf.SetRateInterval(0)
	pfSrv := httptest.NewServer(pf)
	t.Cleanup(pfSrv.Close)
	ch := sandbox.NewChatra(chatraPublic, chatraSecret)
	chSrv := httptest.NewServer(ch)
	t.Cleanup(chSrv.Close)
	if err := ch.PutClient(chatra.ClientCard{ID: clientID, ChatID: chatID, Name: "Ivan", Notes: "VIP customer"}); err != nil {
		t.Fatal(err)
	}
	integ := &chatrabridge.Integration{
		ID: integrationID, Name: "Shop",
		Chatra: chatrabridge.ChatraSettings{APIURL: chSrv.URL, PublicKey: chatraPublic, SecretKey: secrets.String(chatraSecret),
			HasSecretKey: true, AgentID: "AGENT-BRIDGE", AgentName: "Shop"},
		Planfix: chatrabridge.PlanfixSettings{AccountURL: pfSrv.URL, Token: secrets.String(planfixToken), HasToken: true,
			TaskTemplateID: sandbox.PlanfixTaskTemplateID, ContactTemplateID: sandbox.PlanfixContactTemplateID,
			AssigneeUserIDs: []int64{5}},
		Options: chatrabridge.Options{LateReplyWindow: chatrabridge.Duration(48 * time.Hour)},
	}
	e := &env{db: db, planfix: pf, chatra: ch, integ: integ}
	e.acts = activities.New(db, integrations{integ}, nil, nil)
	return e
}

// requests lists the Planfix requests as "METHOD /path".
func (e *env) requests() []string {
	var out []string
	for _, r := range e.planfix.RequestLog() {
		out = append(out, r.Method+" "+strings.TrimPrefix(r.Path, "/rest"))
	}
	return out
}

func ivan() activities.Visitor {
	return activities.Visitor{Name: "Ivan <b>Petrov</b>", Email: "ivan@example.com", Phone: "+371 2000 0000",
		City: "Riga", Country: "Latvia", Pages: []string{"https://shop.example/cart?a=1&b=2"}, Source: "google",
		Device: "desktop", OS: "macOS", Browser: "Safari", IP: "203.0.113.5", Extra: map[string]string{"Plan": "gold"}}
}

// appError returns the *temporal.ApplicationError of err, failing the test without one.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v (%T) is not an application error", err, err)
	}
	return app
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func contains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s = %q, want it to contain %q", what, s, sub)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
