package postgres_test

import (
	"context"
	"testing"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// A deep verify's findings: unknown at first, then recorded with the verify's time; an
// unknown finding keeps what was known; nothing else is accepted.
func TestCapabilities(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	if c, err := db.Capabilities(ctx, "shop"); err != nil || c != (postgres.Capabilities{}) {
		t.Fatalf("capabilities before any finding = %+v, %v; want all unknown", c, err)
	}
	if err := db.RecordDeepVerify(ctx, "shop", postgres.Capabilities{ContactRole: postgres.ContactRoleCounterparty, SourceIDs: postgres.SourceIDsNotReturned}); err != nil {
		t.Fatal(err)
	}
	c, err := db.Capabilities(ctx, "shop")
	if err != nil || c.ContactRole != postgres.ContactRoleCounterparty || c.SourceIDs != postgres.SourceIDsNotReturned || c.DeepVerifiedAt == nil {
		t.Fatalf("capabilities = %+v, %v", c, err)
	}
	if r, err := db.ContactRole(ctx, "shop"); err != nil || r != postgres.ContactRoleCounterparty {
		t.Fatalf("the contact role the workflow reads = %q, %v", r, err)
	}
	if err := db.RecordDeepVerify(ctx, "shop", postgres.Capabilities{SourceIDs: postgres.SourceIDsReturned}); err != nil {
		t.Fatal(err)
	}
	if c, err := db.Capabilities(ctx, "shop"); err != nil || c.ContactRole != postgres.ContactRoleCounterparty || c.SourceIDs != postgres.SourceIDsReturned {
		t.Fatalf("after a partial finding = %+v, %v; want the role kept", c, err)
	}
	if err := db.RecordDeepVerify(ctx, "shop", postgres.Capabilities{SourceIDs: "sometimes"}); err == nil {
		t.Error("an unknown finding was accepted")
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE integrations SET planfix_source_ids = 'maybe'`); err == nil {
		t.Error("the column accepted an unknown value")
	}
	if _, err := db.Capabilities(ctx, "gone"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Errorf("capabilities of an unknown integration: %v, want ENOTFOUND", err)
	}
	if err := db.RecordDeepVerify(ctx, "gone", postgres.Capabilities{}); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Errorf("recording for an unknown integration: %v, want ENOTFOUND", err)
	}
}
