package chatra

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitText(t *testing.T) {
	if got := SplitText(""); got != nil {
		t.Errorf("SplitText(\"\") = %q", got)
	}
	if got := SplitText("  \n "); got != nil {
		t.Errorf("SplitText(blank) = %q", got)
	}
	if got := SplitText("short"); len(got) != 1 || got[0] != "short" {
		t.Errorf("SplitText(short) = %q", got)
	}
	exact := strings.Repeat("a", MaxMessageLength)
	if got := SplitText(exact); len(got) != 1 {
		t.Errorf("a text of exactly the limit was split in %d", len(got))
	}

	para := strings.Repeat("word ", 700) // 3500 units
	tests := []struct {
		name  string
		text  string
		check func(t *testing.T, pieces []string)
	}{
		{"no separators", strings.Repeat("x", 12001), func(t *testing.T, p []string) {
			if len(p) != 3 || len(p[0]) != MaxMessageLength || len(p[2]) != 2001 {
				t.Errorf("pieces of %d, %d, ...", len(p[0]), len(p[1]))
			}
		}},
		{"cut after a blank line", para + "\n\n" + para, func(t *testing.T, p []string) {
			if len(p) != 2 || p[0] != para+"\n\n" {
				t.Errorf("first piece ends %q", tail(p[0]))
			}
		}},
		{"cut after a line break", para + "\n" + para, func(t *testing.T, p []string) {
			if len(p) != 2 || !strings.HasSuffix(p[0], "\n") {
				t.Errorf("first piece ends %q", tail(p[0]))
			}
		}},
		{"cut after a space", strings.Repeat("word ", 1500), func(t *testing.T, p []string) {
			if !strings.HasSuffix(p[0], " ") || textLength(p[0]) != MaxMessageLength {
				t.Errorf("first piece ends %q, %d units", tail(p[0]), textLength(p[0]))
			}
		}},
		{"an early separator is not worth a short piece", "a b" + strings.Repeat("x", 9000), func(t *testing.T, p []string) {
			if textLength(p[0]) != MaxMessageLength {
				t.Errorf("first piece is %d units", textLength(p[0]))
			}
		}},
		{"surrogate pairs are never cut", "a" + strings.Repeat("😀", 4000), func(t *testing.T, p []string) {
			if textLength(p[0]) != MaxMessageLength-1 {
				t.Errorf("first piece is %d units, want %d", textLength(p[0]), MaxMessageLength-1)
			}
		}},
		{"invalid UTF-8 survives", strings.Repeat("\xff", 6000), nil},
		{"cyrillic", strings.Repeat("я", 10001), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pieces := SplitText(tt.text)
			if strings.Join(pieces, "") != tt.text {
				t.Fatalf("joined pieces differ from the text")
			}
			for i, p := range pieces {
				if n := textLength(p); n < 1 || n > MaxMessageLength {
					t.Errorf("piece %d has %d units", i, n)
				}
				if utf8.ValidString(tt.text) && !utf8.ValidString(p) {
					t.Errorf("piece %d cuts a character", i)
				}
				if (SendMessageInput{ClientID: "c", Text: p, AgentID: "a"}).Validate() != nil {
					t.Errorf("piece %d does not pass SendMessageInput.Validate", i)
				}
			}
			if tt.check != nil {
				tt.check(t, pieces)
			}
		})
	}
}

func tail(s string) string {
	if len(s) > 12 {
		return s[len(s)-12:]
	}
	return s
}

func TestTextLength(t *testing.T) {
	for s, want := range map[string]int{"": 0, "abc": 3, "я": 1, "😀": 2, "👋🏽": 4, "\xff": 1} {
		if got := textLength(s); got != want {
			t.Errorf("textLength(%q) = %d, want %d", s, got, want)
		}
	}
}
