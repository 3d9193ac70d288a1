package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

const (
	codecTestToken = "codec-token-for-tests"
	codecUIOrigin  = "http://ui.example.test:8233"
)

func newCodecServer(t *testing.T, cfg config.Config) (string, *codec.Codec) {
	t.Helper()
	keys, err := codec.ParseKeys("k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), "")
	if err != nil {
		t.Fatal(err)
	}
	cd := codec.New(keys, true)
	logger := slog.New(slog.DiscardHandler)
	reg := metrics.New(logger)
	t.Cleanup(func() { _ = reg.Close() })
	cfg.PublicURL = "http://localhost:8080"
	s := api.New(api.Params{Metrics: reg, Logger: logger, Config: cfg, Codec: cd})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL, cd
}

func codecCall(t *testing.T, method, url, body string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestCodecServerEncodesAndDecodes(t *testing.T) {
	url, _ := newCodecServer(t, config.Config{AdminToken: "admin", CodecToken: codecTestToken, CodecCORSOrigins: []string{codecUIOrigin}})
	p, _ := converter.GetDefaultDataConverter().ToPayload("the customer's phone +7 900 123-45-67")
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	auth := map[string]string{"Authorization": "Bearer " + codecTestToken}

	status, _, enc := codecCall(t, "POST", url+"/codec/encode", string(body), auth)
	if status != 200 || bytes.Contains(enc, []byte("900")) {
		t.Fatalf("encode: %d %s", status, enc)
	}
	if !strings.Contains(string(enc), base64.StdEncoding.EncodeToString([]byte("binary/encrypted"))) {
		t.Fatalf("encode answered %s", enc)
	}
	// From the UI's origin, with the token in the path (a UI without single sign-on).
	status, h, dec := codecCall(t, "POST", url+"/codec/k/"+codecTestToken+"/decode", string(enc), map[string]string{"Origin": codecUIOrigin})
	if status != 200 || h.Get("Access-Control-Allow-Origin") != codecUIOrigin || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("decode: %d %v %s", status, h, dec)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(dec, &out); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(out.Payloads[0], &s); err != nil || !strings.Contains(s, "900") {
		t.Fatalf("decoded %q %v", s, err)
	}
	// A clear payload decodes to itself.
	status, _, same := codecCall(t, "POST", url+"/codec/decode", string(body), auth)
	var clear commonpb.Payloads
	if status != 200 || protojson.Unmarshal(same, &clear) != nil || !proto.Equal(clear.Payloads[0], p) {
		t.Fatalf("clear decode: %d %s", status, same)
	}
}

func TestCodecServerRefuses(t *testing.T) {
	url, _ := newCodecServer(t, config.Config{AdminToken: "admin-token", CodecToken: codecTestToken, CodecCORSOrigins: []string{codecUIOrigin}})
	body := `{"payloads":[]}`
	for _, c := range []struct {
		name, path string
		header     map[string]string
		status     int
	}{
		{"no token", "/codec/decode", nil, 401},
		{"wrong token", "/codec/decode", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"the admin token when a codec token is set", "/codec/decode", map[string]string{"Authorization": "Bearer admin-token"}, 401},
		{"wrong token in the path", "/codec/k/nope/decode", nil, 401},
		{"another origin", "/codec/decode", map[string]string{"Authorization": "Bearer " + codecTestToken, "Origin": "https://evil.example"}, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, h, b := codecCall(t, "POST", url+c.path, body, c.header)
			var e api.ErrorBody
			if status != c.status || json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
				t.Fatalf("got %d %s, want %d with a JSON error", status, b, c.status)
			}
			if h.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("CORS allowed: %v", h)
			}
		})
	}
	// Preflight: the UI's origin gets the headers it needs, another gets none.
	status, h, _ := codecCall(t, "OPTIONS", url+"/codec/decode", "", map[string]string{"Origin": codecUIOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
	if status != 204 || h.Get("Access-Control-Allow-Origin") != codecUIOrigin || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", status, h)
	}
	status, h, _ = codecCall(t, "OPTIONS", url+"/codec/decode", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	if status != 403 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", status, h)
	}
}

func TestCodecServerAdminTokenFallback(t *testing.T) {
	url, _ := newCodecServer(t, config.Config{AdminToken: secrets.String("admin-token")})
	status, _, b := codecCall(t, "POST", url+"/codec/decode", `{"payloads":[]}`, map[string]string{"Authorization": "Bearer admin-token"})
	if status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	// Never the admin token in a URL (logged by proxies, kept in the UI's settings).
	if status, _, b := codecCall(t, "POST", url+"/codec/k/admin-token/decode", `{"payloads":[]}`, nil); status != 401 {
		t.Fatalf("the admin token in the path: %d %s, want 401", status, b)
	}
	// An encrypted payload under a key this server lacks: a clear error naming the id.
	bad := `{"payloads":[{"metadata":{"encoding":"` + base64.StdEncoding.EncodeToString([]byte("binary/encrypted")) + `","encryption-key-id":"` + base64.StdEncoding.EncodeToString([]byte("gone")) + `"},"data":"AAAA"}]}`
	status, _, b = codecCall(t, "POST", url+"/codec/decode", bad, map[string]string{"Authorization": "Bearer admin-token"})
	if status != 400 || !strings.Contains(string(b), `\"gone\"`) {
		t.Fatalf("%d %s", status, b)
	}
}
