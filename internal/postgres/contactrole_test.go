package postgres_test

import (
	"context"
	"testing"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// The contact's role on an integration's tasks: unknown at first, then what was found,
// the latest finding winning; nothing else is accepted.
func TestContactRole(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	if r, err := db.ContactRole(ctx, "shop"); err != nil || r != "" {
		t.Fatalf("role before any finding = %q, %v; want unknown", r, err)
	}
	for _, want := range []string{postgres.ContactRoleCounterparty, postgres.ContactRoleAssigner} {
		if err := db.SetContactRole(ctx, "shop", want); err != nil {
			t.Fatal(err)
		}
		if r, err := db.ContactRole(ctx, "shop"); err != nil || r != want {
			t.Fatalf("role = %q, %v; want %q", r, err, want)
		}
	}
	if err := db.SetContactRole(ctx, "shop", "participant"); err == nil {
		t.Error("an unknown role was accepted")
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE integrations SET contact_role = 'owner'`); err == nil {
		t.Error("the column accepted an unknown role")
	}
	if _, err := db.ContactRole(ctx, "gone"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Errorf("role of an unknown integration: %v, want ENOTFOUND", err)
	}
}
