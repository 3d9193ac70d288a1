package devserver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// scratchDatabase returns the URL of a database, on the tests' PostgreSQL server, that
// does not exist yet; it and its visibility database are dropped when the test ends.
func scratchDatabase(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(postgrestest.URL())
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "devserver_test_" + hex.EncodeToString(b[:])
	admin := *u
	admin.Path = "/postgres"
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin.String())
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		for _, db := range []string{name, name + "_visibility"} {
			if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
				t.Errorf("drop %s: %v", db, err)
			}
		}
	})
	u.Path = "/" + name
	return u.String()
}

func splitPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
