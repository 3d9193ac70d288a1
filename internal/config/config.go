// Package config reads the bridge's settings from environment variables. Every variable
// has a documented default (Vars), which `--help` and the README print.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// Config is the bridge's configuration. Temporal's connection settings (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*) are read separately by the SDK's
// envconfig (see internal/temporalclient) and are listed in Vars for documentation.
type Config struct {
	DatabaseURL secrets.String // may hold a password
	HTTPAddr    string
	PublicURL   string
	AdminToken  secrets.String
	SecretsKey  secrets.String
	TaskQueue   string
	LogLevel    slog.Level
	LogFormat   string

	// MetricsAddr, when set, serves /metrics on that address alone (not on HTTPAddr).
	MetricsAddr string
	// TrustedProxies are the proxies whose X-Forwarded-For names the client's address
	// in logs; without any, the address is the connection's.
	TrustedProxies []*net.IPNet
	// AllowPrivateURLs lets an integration's Chatra and Planfix URLs point at
	// loopback, link-local or private addresses (dev's sandbox, tests).
	AllowPrivateURLs bool
	// WebhookMaxInFlight bounds the requests to one webhook (Chatra's, Planfix's) of one
	// integration that one API process reads and handles at once.
	WebhookMaxInFlight int
	// PlanfixInterval is the least time between two Planfix requests of one account,
	// across every process (0: postgres.DefaultPlanfixInterval, for Planfix's one a
	// second). Shorter serves a Planfix stand-in with a faster limit (tests).
	PlanfixInterval time.Duration
	// PlanfixPriorities serves an account's waiting Planfix requests by class and chat
	// age (postgres.RateLimiter); false: first come, first served.
	PlanfixPriorities bool

	// PayloadKey are the keys of the payloads the bridge stores in Temporal (empty:
	// derived from SecretsKey); see internal/codec.
	PayloadKey secrets.String
	// PayloadEncryption: new payloads are encrypted; off, they are written in clear
	// while encrypted ones are still read (a rolling upgrade from a release that cannot
	// decode them).
	PayloadEncryption bool
	// CodecToken is the bearer token of the codec server (/codec/*); empty: the admin
	// token.
	CodecToken secrets.String
	// CodecCORSOrigins are the origins (a Web UI) whose browsers may call the codec
	// server.
	CodecCORSOrigins []string
	// CustomerSearch is what the CustomerEmail and CustomerName search attributes hold:
	// "clear", "hash" or "off".
	CustomerSearch string
}

// Var documents one environment variable.
type Var struct {
	Name, Default, Help string
}

// Vars lists every variable the bridge reads, in the order the README shows them.
var Vars = []Var{
	{"DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatrabridge?sslmode=disable", "PostgreSQL connection URL"},
	{"TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port (Temporal Cloud: <ns>.<acct>.tmprl.cloud:7233)"},
	{"TEMPORAL_NAMESPACE", "default", "Temporal namespace"},
	{"TEMPORAL_API_KEY", "", "Temporal Cloud API key (turns TLS on)"},
	{"TEMPORAL_TLS, TEMPORAL_TLS_*", "off", "TLS to Temporal: TEMPORAL_TLS_CLIENT_CERT_PATH, _CLIENT_KEY_PATH, _SERVER_CA_CERT_PATH, _SERVER_NAME (as the temporal CLI reads them)"},
	{"HTTP_ADDR", ":8080", "address the HTTP API listens on"},
	{"PUBLIC_URL", "http://localhost:8080", "public base URL of the API, used to print webhook URLs"},
	{"ADMIN_TOKEN, ADMIN_TOKEN_FILE", "(none: the admin API refuses to start)", "bearer token of the admin API, or a file holding it"},
	{"SECRETS_KEY, SECRETS_KEY_FILE", "(none: required by api and worker)", "32-byte base64 key that seals stored credentials; comma-separated to rotate (first seals, all open)"},
	{"PAYLOAD_KEY, PAYLOAD_KEY_FILE", "(derived from SECRETS_KEY)", "keys that encrypt what the bridge stores in Temporal: comma-separated id:base64 (32 bytes each), the first encrypts, all decrypt; unset, derived from each SECRETS_KEY key with HKDF-SHA256"},
	{"PAYLOAD_ENCRYPTION", "on", "on: encrypt workflow payloads and failure messages; off: write them in clear but still read encrypted ones (a rolling upgrade from v0.1.0)"},
	{"CODEC_TOKEN, CODEC_TOKEN_FILE", "(the admin token)", "bearer token of the codec server (/codec/encode, /codec/decode) the Web UI and the temporal CLI decode with"},
	{"CODEC_CORS_ORIGINS", "", "comma-separated origins (such as https://temporal-ui.example.com) whose browsers may call the codec server"},
	{"CUSTOMER_SEARCH", "clear", "what the CustomerEmail and CustomerName search attributes hold: clear, hash (keyed HMAC; `chatrabridge search-key` computes it) or off"},
	{"TASK_QUEUE", "chatrabridge", "Temporal task queue of the conversation workflows"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"LOG_FORMAT", "text", "text or json"},
	{"METRICS_ADDR", "", "serve /metrics on this address alone (such as 127.0.0.1:9090) instead of on HTTP_ADDR"},
	{"TRUSTED_PROXIES", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For gives the client's address in logs"},
	{"ALLOW_PRIVATE_URLS", "false", "let integrations' Chatra and Planfix URLs point at loopback, link-local or private addresses (dev sets true for its sandbox)"},
	{"PLANFIX_INTERVAL", "1.2s", "least time between two Planfix requests of one account, across all workers (Planfix allows one a second; shorter only for a stand-in such as `chatrabridge sandbox`)"},
	{"WEBHOOK_MAX_IN_FLIGHT", "16", "requests to one webhook of one integration one API process handles at once (beyond: Chatra 429, Planfix 200 refused)"},
	{"PLANFIX_PRIORITIES", "true", "serve an account's waiting Planfix requests by what a person waits for, oldest chat first; false: first come, first served"},
}

// Default returns the value a variable takes when it is unset.
func Default(name string) string {
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// Load reads the configuration from the environment through getenv (os.Getenv in
// production). A bad value gives an error naming the variable and what it accepts.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return Default(name)
	}
	c := Config{
		DatabaseURL: secrets.String(get("DATABASE_URL")),
		HTTPAddr:    get("HTTP_ADDR"),
		PublicURL:   strings.TrimRight(get("PUBLIC_URL"), "/"),
		TaskQueue:   get("TASK_QUEUE"),
		LogFormat:   get("LOG_FORMAT"),
	}
	var err error
	if c.AdminToken, err = fromFileOrEnv(getenv, "ADMIN_TOKEN"); err != nil {
		return c, err
	}
	if c.SecretsKey, err = fromFileOrEnv(getenv, "SECRETS_KEY"); err != nil {
		return c, err
	}
	if c.PayloadKey, err = fromFileOrEnv(getenv, "PAYLOAD_KEY"); err != nil {
		return c, err
	}
	if c.CodecToken, err = fromFileOrEnv(getenv, "CODEC_TOKEN"); err != nil {
		return c, err
	}
	switch v := strings.ToLower(get("PAYLOAD_ENCRYPTION")); v {
	case "on", "true", "1":
		c.PayloadEncryption = true
	case "off", "false", "0":
	default:
		return c, fmt.Errorf("PAYLOAD_ENCRYPTION=%q: want on or off", getenv("PAYLOAD_ENCRYPTION"))
	}
	for o := range strings.SplitSeq(get("CODEC_CORS_ORIGINS"), ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				return c, fmt.Errorf("CODEC_CORS_ORIGINS: %q is not an origin such as https://temporal-ui.example.com", o)
			}
			c.CodecCORSOrigins = append(c.CodecCORSOrigins, o)
		}
	}
	switch c.CustomerSearch = strings.ToLower(get("CUSTOMER_SEARCH")); c.CustomerSearch {
	case "clear", "hash", "off":
	default:
		return c, fmt.Errorf("CUSTOMER_SEARCH=%q: want clear, hash or off", getenv("CUSTOMER_SEARCH"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", getenv("LOG_LEVEL"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("LOG_FORMAT=%q: want text or json", c.LogFormat)
	}
	if !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return c, fmt.Errorf("PUBLIC_URL=%q: want an http:// or https:// URL", c.PublicURL)
	}
	c.MetricsAddr = get("METRICS_ADDR")
	if c.TrustedProxies, err = parseNets(get("TRUSTED_PROXIES")); err != nil {
		return c, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	if c.AllowPrivateURLs, err = strconv.ParseBool(get("ALLOW_PRIVATE_URLS")); err != nil {
		return c, fmt.Errorf("ALLOW_PRIVATE_URLS=%q: want true or false", getenv("ALLOW_PRIVATE_URLS"))
	}
	if c.PlanfixInterval, err = time.ParseDuration(get("PLANFIX_INTERVAL")); err != nil || c.PlanfixInterval <= 0 {
		return c, fmt.Errorf("PLANFIX_INTERVAL=%q: want a duration such as 1.2s", getenv("PLANFIX_INTERVAL"))
	}
	if c.WebhookMaxInFlight, err = strconv.Atoi(get("WEBHOOK_MAX_IN_FLIGHT")); err != nil || c.WebhookMaxInFlight < 1 {
		return c, fmt.Errorf("WEBHOOK_MAX_IN_FLIGHT=%q: want a whole number of at least 1", getenv("WEBHOOK_MAX_IN_FLIGHT"))
	}
	if c.PlanfixPriorities, err = strconv.ParseBool(get("PLANFIX_PRIORITIES")); err != nil {
		return c, fmt.Errorf("PLANFIX_PRIORITIES=%q: want true or false", getenv("PLANFIX_PRIORITIES"))
	}
	return c, nil
}

// parseNets reads a comma-separated list of IP addresses and CIDRs.
func parseNets(s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			ip := net.ParseIP(part)
			if ip == nil {
				return nil, fmt.Errorf("%q is neither an IP address nor a CIDR such as 10.0.0.0/8", part)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR such as 10.0.0.0/8", part)
		}
		out = append(out, n)
	}
	return out, nil
}

// fromFileOrEnv reads NAME, or the file named by NAME_FILE (trailing whitespace trimmed).
// Setting both is an error, since one would silently win.
func fromFileOrEnv(getenv func(string) string, name string) (secrets.String, error) {
	v, file := strings.TrimSpace(getenv(name)), strings.TrimSpace(getenv(name+"_FILE"))
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("both %s and %s_FILE are set: set one", name, name)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return secrets.String(strings.TrimSpace(string(b))), nil
	}
	return secrets.String(v), nil
}

// Logger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
