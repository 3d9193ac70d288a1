package secrets_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func mustSealer(t *testing.T, keys string) *secrets.Sealer {
	t.Helper()
	s, err := secrets.NewSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := mustSealer(t, newKey(t))
	for _, plain := range [][]byte{nil, []byte("x"), []byte("chatra-secret-key-0123456789"), bytes.Repeat([]byte("ä"), 5000)} {
		sealed, err := s.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) >= 8 && bytes.Contains(sealed, plain) {
			t.Fatalf("sealed blob contains the plaintext")
		}
		got, err := s.Open(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
	}
	a, _ := s.Seal([]byte("same"))
	b, _ := s.Seal([]byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one plaintext are equal: the nonce is not random")
	}
}

// The first key seals, every key opens: a blob sealed before a rotation still opens, and
// one sealed after it opens only with the new key present.
func TestSealKeyRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	before := mustSealer(t, oldKey)
	oldBlob, _ := before.Seal([]byte("sealed with the old key"))

	rotated := mustSealer(t, " "+newKey+" , "+oldKey+" ")
	if got, err := rotated.Open(oldBlob); err != nil || string(got) != "sealed with the old key" {
		t.Fatalf("rotated.Open(old blob) = %q, %v", got, err)
	}
	newBlob, _ := rotated.Seal([]byte("sealed with the new key"))
	if rotated.KeyID() == before.KeyID() {
		t.Fatal("the sealing key id did not change with the first key")
	}
	if got, err := mustSealer(t, newKey).Open(newBlob); err != nil || string(got) != "sealed with the new key" {
		t.Fatalf("new key alone cannot open what the rotated sealer sealed: %q, %v", got, err)
	}
	_, err := before.Open(newBlob)
	if !errors.Is(err, secrets.ErrOpen) || !strings.Contains(err.Error(), rotated.KeyID()) {
		t.Fatalf("old sealer opening a new blob: %v; want ErrOpen naming key id %s", err, rotated.KeyID())
	}
}

func TestOpenRejectsTamperingAndGarbage(t *testing.T) {
	s := mustSealer(t, newKey(t))
	blob, _ := s.Seal([]byte("secret"))
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x01
		if _, err := s.Open(bad); !errors.Is(err, secrets.ErrOpen) {
			t.Fatalf("flipping byte %d: Open err = %v, want ErrOpen", i, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {1}, {2, 0, 0, 0, 0}, blob[:10], blob[:len(blob)-1], append(bytes.Clone(blob), 0)} {
		if _, err := s.Open(bad); !errors.Is(err, secrets.ErrOpen) {
			t.Fatalf("Open(%x) err = %v, want ErrOpen", bad, err)
		}
	}
}

func TestNewSealerErrors(t *testing.T) {
	k := newKey(t)
	short := base64.StdEncoding.EncodeToString([]byte("too short"))
	cases := []struct {
		keys, want string
	}{
		{"", "SECRETS_KEY is not set"},
		{" , ", "SECRETS_KEY is not set"},
		{"not base64 !!", "SECRETS_KEY is not valid base64"},
		{short, "SECRETS_KEY is 9 bytes long, not 32"},
		{k + "," + short, "key 2 of 2 in SECRETS_KEY is 9 bytes long"},
		{k + "," + k, "key 2 of 2 in SECRETS_KEY repeats key 1"},
	}
	for _, c := range cases {
		_, err := secrets.NewSealer(c.keys)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewSealer(%q) = %v, want %q", c.keys, err, c.want)
			continue
		}
		if c.want != "SECRETS_KEY is not set" && !strings.Contains(err.Error(), "openssl rand -base64 32") && !strings.Contains(err.Error(), "repeats") {
			t.Errorf("NewSealer(%q) = %v: does not say how to generate a key", c.keys, err)
		}
		if strings.Contains(err.Error(), k) || (c.keys != "" && strings.Contains(err.Error(), short)) {
			t.Errorf("NewSealer error reveals key material: %v", err)
		}
	}
	// URL-safe and unpadded forms of a 32-byte key are accepted.
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if _, err := secrets.NewSealer(enc.EncodeToString(raw)); err != nil {
			t.Errorf("NewSealer(%v form) = %v", enc, err)
		}
	}
}

func TestTokens(t *testing.T) {
	tok, hash := secrets.NewToken()
	if len(tok.Reveal()) != 43 || strings.ContainsAny(tok.Reveal(), "+/=") {
		t.Fatalf("token %d chars, want 43 base64url chars", len(tok.Reveal()))
	}
	if len(hash) != secrets.TokenHashSize || bytes.Contains(hash, []byte(tok.Reveal())) {
		t.Fatalf("hash is %d bytes", len(hash))
	}
	if !secrets.CheckToken(tok.Reveal(), hash) {
		t.Fatal("CheckToken(token, its hash) = false")
	}
	other, otherHash := secrets.NewToken()
	if other == tok || bytes.Equal(hash, otherHash) {
		t.Fatal("two tokens are equal")
	}
	for _, bad := range []string{"", other.Reveal(), tok.Reveal()[:42], tok.Reveal() + "x"} {
		if secrets.CheckToken(bad, hash) {
			t.Fatalf("CheckToken(%q) = true", bad)
		}
	}
	if secrets.CheckToken(tok.Reveal(), nil) {
		t.Fatal("CheckToken against a nil hash = true")
	}
	if !secrets.Equal("abc", "abc") || secrets.Equal("abc", "abd") || secrets.Equal("", "x") || secrets.Equal("abc", "abcd") {
		t.Fatal("Equal is wrong")
	}
}
