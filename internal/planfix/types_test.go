package planfix

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestTextToHTML(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"plain":                            "plain",
		"<script>alert('x')</script> & \"": "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;",
		"one\ntwo\r\nthree\rfour":          "one<br>two<br>three<br>four",
		"<br>":                             "&lt;br&gt;",
		"trailing\n":                       "trailing<br>",
	} {
		if got := TextToHTML(in); got != want {
			t.Errorf("TextToHTML(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSourceObjectID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a := SourceObjectID("integration-1", "chat", "abc")
	if !uuid.MatchString(a) {
		t.Fatalf("SourceObjectID = %q, not a version 5 UUID", a)
	}
	if b := SourceObjectID("integration-1", "chat", "abc"); b != a {
		t.Errorf("not deterministic: %q then %q", a, b)
	}
	seen := map[string]bool{a: true}
	for _, parts := range [][]string{{"integration-1", "chat", "abd"}, {"integration-2", "chat", "abc"}, {"integration-1chat", "abc"},
		{"ab", "c"}, {"a", "bc"}, {}, {""}, {"", ""}} {
		id := SourceObjectID(parts...)
		if seen[id] {
			t.Errorf("SourceObjectID(%q) = %q collides", parts, id)
		}
		seen[id] = true
	}
}

func TestPersonID(t *testing.T) {
	if UserID(5) != "user:5" || ContactID(12) != "contact:12" {
		t.Fatalf("UserID/ContactID = %q, %q", UserID(5), ContactID(12))
	}
	for _, tc := range []struct {
		p       PersonID
		user    int64
		contact int64
	}{
		{"user:5", 5, 0}, {"USER:7", 7, 0}, {"contact:12", 0, 12}, {"group:3", 0, 0}, {"user:", 0, 0},
		{"user:-1", 0, 0}, {"5", 0, 0}, {"", 0, 0}, {"contact:1:2", 0, 0}, {"user:99999999999999999999", 0, 0},
	} {
		u, uok := tc.p.User()
		c, cok := tc.p.Contact()
		if u != tc.user || uok != (tc.user != 0) || c != tc.contact || cok != (tc.contact != 0) {
			t.Errorf("%q: User() = %d, %v; Contact() = %d, %v", tc.p, u, uok, c, cok)
		}
	}
	var v struct{ A, B, C PersonID }
	if err := json.Unmarshal([]byte(`{"A":"user:1","B":42,"C":null}`), &v); err != nil || v.A != "user:1" || v.B != "42" || v.C != "" {
		t.Errorf("unmarshal = %+v, %v", v, err)
	}
	if err := json.Unmarshal([]byte(`{"A":{"x":1}}`), &v); err == nil {
		t.Error("an object as person id was accepted")
	}
}

func TestTimePointParse(t *testing.T) {
	want := time.Date(2022, 6, 1, 12, 25, 0, 0, time.UTC)
	for _, tp := range []TimePoint{
		{DateTime: "2022-06-01T12:25Z"},
		{DateTime: "2022-06-01T12:25:00Z"},
		{Date: "01-06-2022", Time: "12:25"},
	} {
		got, ok := tp.Parse()
		if !ok || !got.Equal(want) {
			t.Errorf("%+v.Parse() = %v, %v; want %v", tp, got, ok, want)
		}
	}
	if got, ok := (TimePoint{Date: "01-06-2022"}).Parse(); !ok || !got.Equal(want.Truncate(24*time.Hour)) {
		t.Errorf("date only = %v, %v", got, ok)
	}
	for _, tp := range []TimePoint{{}, {DateTime: "yesterday"}, {Date: "2022-06-01"}} {
		if _, ok := tp.Parse(); ok {
			t.Errorf("%+v.Parse() succeeded", tp)
		}
	}
}

func TestFlexInt(t *testing.T) {
	for in, want := range map[string]int64{`1`: 1, `1.0`: 1, `"17"`: 17, `" 3 "`: 3, `null`: 0} {
		var f flexInt
		if err := json.Unmarshal([]byte(in), &f); err != nil || int64(f) != want {
			t.Errorf("%s: %d, %v; want %d", in, f, err, want)
		}
	}
	for _, in := range []string{`1.5`, `"x"`, `true`, `{}`, `[]`, `1e400`} {
		var f flexInt
		if err := json.Unmarshal([]byte(in), &f); err == nil {
			t.Errorf("%s: accepted as %d", in, f)
		}
	}
}

func TestFailureList(t *testing.T) {
	for in, want := range map[string]int{
		`{"failures":{"field":"status","error":"Field change failed"}}`:      1,
		`{"failures":[{"field":"a","error":"x"},{"field":"b","error":"y"}]}`: 2,
		`{"failures":[]}`:   0,
		`{"failures":{}}`:   0,
		`{"failures":null}`: 0,
		`{}`:                0,
	} {
		var out updated
		if err := json.Unmarshal([]byte(in), &out); err != nil || len(out.Failures) != want {
			t.Errorf("%s: %+v, %v; want %d failures", in, out.Failures, err, want)
		}
	}
	var out updated
	if err := json.Unmarshal([]byte(`{"failures":"status"}`), &out); err == nil {
		t.Error("a string as failures was accepted")
	}
}

func TestParamName(t *testing.T) {
	for text, want := range map[string]string{
		"Missing parameter name":                      "name",
		"Wrong value of parameter: template":          "template",
		"Parameter 'pageSize' is wrong":               "pageSize",
		`field "assignees" is invalid`:                "assignees",
		"Status not find by id 2":                     "status",
		"Template not found by id 4":                  "template",
		"Rest API error":                              "",
		"":                                            "",
		"Something went wrong with the owner id user": "owner",
	} {
		if got := paramName(text); got != want {
			t.Errorf("paramName(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestRetryAfterTime(t *testing.T) {
	now := time.Date(2024, 1, 2, 10, 30, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"0":                             0,
		"-5":                            0,
		"soon":                          0,
		"Tue, 02 Jan 2024 11:00:00 GMT": 30 * time.Minute,
		"Tue, 02 Jan 2024 10:00:00 GMT": 0,
		"99999999999":                   0,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		got := retryAfterTime(h, now)
		if (want == 0 && !got.IsZero()) || (want != 0 && got.Sub(now) != want) {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("я", 400)
	got := excerpt("a\n\tb\x00c " + long)
	if strings.ContainsAny(got, "\n\t\x00") || len(got) > 310 || !strings.HasPrefix(got, "a b c я") || !strings.HasSuffix(got, "…") {
		t.Errorf("excerpt = %q", got)
	}
	if !strings.Contains(got, "я") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("excerpt cut a rune: %q", got)
	}
}

// FuzzNewError feeds arbitrary answers to the classifier: it must not panic, must always
// give a kind and a message, and must never echo the token.
func FuzzNewError(f *testing.F) {
	for _, s := range []string{`{"result":"fail","code":1,"error":"x"}`, `{"CODE":"22"}`, `{"code":1e99}`, `[]`, `null`, `<html>`,
		`{"code":41,"error":"parameter SECRET-TOKEN"}`, `{"error":{"nested":true}}`, "\xff\xfe"} {
		f.Add(s, 400)
		f.Add(s, 500)
	}
	scrub := func(s string) string { return strings.ReplaceAll(s, "SECRET-TOKEN", "[redacted]") }
	f.Fuzz(func(t *testing.T, body string, status int) {
		e := newError(errorInfo{op: "op", status: status, body: []byte(body), header: http.Header{"Retry-After": {body}}, now: time.Now(), scrub: scrub})
		if e.Kind == "" || e.Message == "" {
			t.Fatalf("no kind or message for %q/%d: %+v", body, status, e)
		}
		if strings.Contains(e.Error(), "SECRET-TOKEN") || strings.Contains(e.Param, "SECRET-TOKEN") {
			t.Fatalf("token in %q", e.Error())
		}
		if e.Kind == KindDailyLimit && (e.RetryAfter <= 0 || !e.Retryable) {
			t.Fatalf("daily limit without a wait: %+v", e)
		}
	})
}
