package remote_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/remote"
)

// Retry-After in seconds or as an HTTP date; nothing usable, a past date, or a value
// beyond MaxRetryAfter gives 0.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{" 5 ", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999", 0},
		{"604800", 7 * 24 * time.Hour},
		{"604801", 0},
		{now.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(45 * time.Second).Format(time.RFC850), 45 * time.Second},
	}
	for _, tt := range tests {
		if got := remote.RetryAfter(tt.in, now); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestExcerpt(t *testing.T) {
	got := remote.Excerpt("a\n\tb\x00c \xff"+strings.Repeat("я", 400), 300)
	if strings.ContainsAny(got, "\n\t\x00") || len(got) > 303 || !strings.HasPrefix(got, "a b c \uFFFDя") || !strings.HasSuffix(got, "…") {
		t.Errorf("Excerpt = %q", got)
	}
}

func TestScrub(t *testing.T) {
	if got := remote.Scrub("token abcd and abc", "abcd", "abc", ""); got != "token [REDACTED] and abc" {
		t.Errorf("Scrub = %q: a secret of 4 bytes or more is replaced, a shorter one is not", got)
	}
}

// An error reads "<op>: <message> (answer: <body>)", names its service by its kind, and
// unwraps to its cause.
func TestError(t *testing.T) {
	e := &remote.Error{Op: "chatra send message", Kind: "chatra.unavailable", Message: "chatra is unavailable (503); retry later", Body: "down"}
	if e.Error() != `chatra send message: chatra is unavailable (503); retry later (answer: "down")` || e.Service() != "chatra" {
		t.Errorf("Error() = %q, Service() = %q", e.Error(), e.Service())
	}
	if _, ok := remote.As(error(e)); !ok {
		t.Error("As does not find the error")
	}
}
