// Package postgrestest gives each test its own, freshly migrated PostgreSQL schema in the
// test database, dropped when the test ends. Tests that need PostgreSQL fail (they do not
// skip) when it is unreachable: CI must provide it.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// DefaultURL is the test database used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/chatrabridge_test?sslmode=disable"

// URL returns TEST_DATABASE_URL or DefaultURL.
func URL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// New returns a store on a new schema of the test database, migrated, and the URL that
// reaches the same schema (for code that opens its own pool). The schema is dropped at
// the end of the test.
func New(t testing.TB) (*postgres.DB, string) {
	t.Helper()
	ctx := context.Background()
	base := URL()
	if err := postgres.EnsureDatabase(ctx, base); err != nil {
		t.Fatalf("test database: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])

	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})

	url := base + withParam(base, "search_path="+schema)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("open test schema: %v", err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate test schema: %v", err)
	}
	return db, url
}

func withParam(url, kv string) string {
	if strings.Contains(url, "?") {
		return "&" + kv
	}
	return "?" + kv
}
