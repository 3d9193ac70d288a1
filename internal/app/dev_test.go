package app_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

func TestDevPreflightNamesTakenPortAndFix(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	cfg := config.Config{HTTPAddr: "127.0.0.1:0", DatabaseURL: secrets.String(postgrestest.URL())}

	err = app.DevPreflight(context.Background(), cfg, app.DevOptions{TemporalPort: taken, UIPort: 0})
	if err == nil {
		t.Fatal("preflight passed with the Temporal port taken")
	}
	msg := err.Error()
	if !strings.Contains(msg, strconv.Itoa(taken)) || !strings.Contains(msg, "--temporal-port") || strings.Contains(msg, "\n") {
		t.Fatalf("want one line naming port %d and --temporal-port, got %q", taken, msg)
	}
}

func TestDevPreflightNamesUnreachableDatabase(t *testing.T) {
	cfg := config.Config{HTTPAddr: "127.0.0.1:0", DatabaseURL: "postgres://postgres@127.0.0.1:1/chatrabridge?sslmode=disable&connect_timeout=2"}
	err := app.DevPreflight(context.Background(), cfg, app.DevOptions{})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("want an error naming the address and DATABASE_URL, got %v", err)
	}
}

func TestDevConfigKeepsGeneratedSecrets(t *testing.T) {
	dir := t.TempDir()
	a, err := app.DevConfig(config.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.AdminToken.Reveal()) < 20 || a.SecretsKey.Reveal() == "" {
		t.Fatalf("generated token %d chars, key %q", len(a.AdminToken.Reveal()), a.SecretsKey.Reveal())
	}
	b, err := app.DevConfig(config.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	a.HTTPAddr = app.DevHTTPAddr
	if a.CodecToken == "" || a.CodecToken == a.AdminToken || app.DevCodecEndpoint(a) != "http://127.0.0.1:8080/codec/k/"+a.CodecToken.Reveal() {
		t.Fatalf("the Web UI's codec token: %d chars, endpoint %q", len(a.CodecToken.Reveal()), app.DevCodecEndpoint(a))
	}
	if a.AdminToken != b.AdminToken || a.SecretsKey != b.SecretsKey || a.CodecToken != b.CodecToken {
		t.Fatal("a restart generated new secrets: sealed credentials would no longer open")
	}
	c, err := app.DevConfig(config.Config{AdminToken: "mine"}, dir)
	if err != nil || c.AdminToken.Reveal() != "mine" {
		t.Fatalf("an explicit ADMIN_TOKEN must win: %v %q", err, c.AdminToken.Reveal())
	}
}

// dev listens on the loopback interface unless HTTP_ADDR says otherwise, and lets its
// integrations call the sandbox on 127.0.0.1.
func TestDevConfigListensOnLoopback(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := app.DevConfig(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d.HTTPAddr != "127.0.0.1:8080" || !d.AllowPrivateURLs {
		t.Fatalf("dev: HTTP_ADDR %q, private URLs allowed %v", d.HTTPAddr, d.AllowPrivateURLs)
	}
	cfg, _ = config.Load(func(k string) string { return map[string]string{"HTTP_ADDR": "0.0.0.0:9000"}[k] })
	if d, _ = app.DevConfig(cfg, t.TempDir()); d.HTTPAddr != "0.0.0.0:9000" {
		t.Fatalf("an explicit HTTP_ADDR must win: %q", d.HTTPAddr)
	}
}
