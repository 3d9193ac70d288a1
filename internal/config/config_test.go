package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.TaskQueue != "chatrabridge" || c.LogLevel != slog.LevelInfo || c.PublicURL != "http://localhost:8080" {
		t.Fatalf("defaults = %+v", c)
	}
	if !strings.Contains(c.DatabaseURL.Reveal(), "/chatrabridge") {
		t.Fatalf("database default = %q", c.DatabaseURL.Reveal())
	}
	if !c.PayloadEncryption || c.CustomerSearch != "clear" || c.PayloadKey != "" || c.CodecToken != "" || c.CodecCORSOrigins != nil {
		t.Fatalf("encryption defaults = %+v", c)
	}
}

func TestEncryptionSettings(t *testing.T) {
	c, err := Load(env(map[string]string{"PAYLOAD_ENCRYPTION": "off", "CUSTOMER_SEARCH": "Hash",
		"CODEC_CORS_ORIGINS": "https://ui.example.com/, http://127.0.0.1:8233", "CODEC_TOKEN": "t"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PayloadEncryption || c.CustomerSearch != "hash" || c.CodecToken.Reveal() != "t" ||
		strings.Join(c.CodecCORSOrigins, " ") != "https://ui.example.com http://127.0.0.1:8233" {
		t.Fatalf("%+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{"LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "PUBLIC_URL": "example.com",
		"TRUSTED_PROXIES": "10.0.0.0/8,proxy.local", "ALLOW_PRIVATE_URLS": "sometimes", "WEBHOOK_MAX_IN_FLIGHT": "0",
		"PAYLOAD_ENCRYPTION": "maybe", "CUSTOMER_SEARCH": "plain", "CODEC_CORS_ORIGINS": "ui.example.com"} {
		_, err := Load(env(map[string]string{name: val}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v should name the variable", name, val, err)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ADMIN_TOKEN_FILE": f}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken.Reveal() != "s3cret-token" {
		t.Fatalf("token = %q", c.AdminToken.Reveal())
	}
	if s := fmt.Sprintf("%v %+v %#v", c.AdminToken, c, c); strings.Contains(s, "s3cret") {
		t.Fatalf("secret printed: %s", s)
	}
	if _, err := Load(env(map[string]string{"ADMIN_TOKEN_FILE": f, "ADMIN_TOKEN": "x"})); err == nil {
		t.Fatal("both ADMIN_TOKEN and ADMIN_TOKEN_FILE accepted")
	}
	if _, err := Load(env(map[string]string{"SECRETS_KEY_FILE": f + ".missing"})); err == nil || !strings.Contains(err.Error(), "SECRETS_KEY_FILE") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestEveryVarHasHelp(t *testing.T) {
	for _, v := range Vars {
		if v.Name == "" || v.Help == "" {
			t.Errorf("undocumented variable %+v", v)
		}
	}
}

// The settings of the HTTP edge: no trusted proxy, private URLs refused and 16 webhooks
// at once by default; proxies as addresses or CIDRs.
func TestEdgeSettings(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 0 || c.AllowPrivateURLs || c.WebhookMaxInFlight != 16 || c.MetricsAddr != "" {
		t.Fatalf("defaults = %+v", c)
	}
	c, err = Load(env(map[string]string{"TRUSTED_PROXIES": " 10.1.2.3, 192.168.0.0/16,::1", "ALLOW_PRIVATE_URLS": "true",
		"WEBHOOK_MAX_IN_FLIGHT": "4", "METRICS_ADDR": "127.0.0.1:9090"}))
	if err != nil {
		t.Fatal(err)
	}
	var nets []string
	for _, n := range c.TrustedProxies {
		nets = append(nets, n.String())
	}
	if strings.Join(nets, " ") != "10.1.2.3/32 192.168.0.0/16 ::1/128" || !c.AllowPrivateURLs || c.WebhookMaxInFlight != 4 || c.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("config = %+v (proxies %v)", c, nets)
	}
}
