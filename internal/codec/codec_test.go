package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

func b64(fill byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, KeySize))
}

func mustKeys(t *testing.T, payloadKey, secretsKey string) *Keys {
	t.Helper()
	k, err := ParseKeys(payloadKey, secretsKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripHidesTheText(t *testing.T) {
	c := New(mustKeys(t, "k1:"+b64(1), ""), true)
	dc := DataConverter(c)
	p, err := dc.ToPayload(map[string]string{"text": "my phone is +7 900 123-45-67", "email": "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[MetadataEncoding]) != EncodingEncrypted || string(p.Metadata[MetadataKeyID]) != "k1" {
		t.Fatalf("metadata %v", p.Metadata)
	}
	if bytes.Contains(p.Data, []byte("900")) || bytes.Contains(p.Data, []byte("ann@")) {
		t.Fatal("the ciphertext holds the text")
	}
	var got map[string]string
	if err := dc.FromPayload(p, &got); err != nil {
		t.Fatal(err)
	}
	if got["email"] != "ann@example.com" {
		t.Fatalf("decoded %v", got)
	}
}

func TestClearPayloadsPassThrough(t *testing.T) {
	c := New(mustKeys(t, "k1:"+b64(1), ""), true)
	clear, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	out, err := c.Decode([]*commonpb.Payload{clear})
	if err != nil || out[0] != clear {
		t.Fatalf("clear payload changed: %v %v", out, err)
	}
}

func TestOffOnlyDecodes(t *testing.T) {
	keys := mustKeys(t, "k1:"+b64(1), "")
	on, off := New(keys, true), New(keys, false)
	p, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	written, _ := off.Encode([]*commonpb.Payload{p})
	if written[0] != p {
		t.Fatal("encryption off still encrypts")
	}
	enc, _ := on.Encode([]*commonpb.Payload{p})
	dec, err := off.Decode(enc)
	if err != nil || string(dec[0].Data) != `"hello"` {
		t.Fatalf("encryption off does not read an encrypted payload: %v %v", dec, err)
	}
}

func TestRotation(t *testing.T) {
	old := New(mustKeys(t, "old:"+b64(1), ""), true)
	rotated := New(mustKeys(t, "new:"+b64(2)+", old:"+b64(1), ""), true)
	p, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	underOld, _ := old.Encode([]*commonpb.Payload{p})
	dec, err := rotated.Decode(underOld)
	if err != nil || string(dec[0].Data) != `"hello"` {
		t.Fatalf("the old key id does not decode after a rotation: %v", err)
	}
	underNew, _ := rotated.Encode([]*commonpb.Payload{p})
	if id := string(underNew[0].Metadata[MetadataKeyID]); id != "new" {
		t.Fatalf("new payloads under %q, want the first key", id)
	}
}

func TestUnknownKeyID(t *testing.T) {
	a := New(mustKeys(t, "a:"+b64(1), ""), true)
	b := New(mustKeys(t, "b:"+b64(2), ""), true)
	p, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	enc, _ := a.Encode([]*commonpb.Payload{p})
	_, err := b.Decode(enc)
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || uk.ID != "a" || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), "PAYLOAD_KEY") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), b64(1)) || strings.Contains(err.Error(), b64(2)) {
		t.Fatal("the error holds key material")
	}
	// The same id with another key: damaged, not decoded into garbage.
	other := New(mustKeys(t, "a:"+b64(3), ""), true)
	if _, err := other.Decode(enc); err == nil {
		t.Fatal("decoded under another key")
	}
}

func TestParseKeys(t *testing.T) {
	// Derived from SECRETS_KEY: stable, one per secrets key, in its order.
	d1 := mustKeys(t, "", b64(7)+","+b64(8))
	d2 := mustKeys(t, "", b64(7))
	if ids := d1.IDs(); len(ids) != 2 || ids[0] != d2.IDs()[0] || !strings.HasPrefix(ids[0], "s-") {
		t.Fatalf("derived ids %v and %v", d1.IDs(), d2.IDs())
	}
	if ids := mustKeys(t, b64(1), "").IDs(); len(ids[0]) != 8 {
		t.Fatalf("a key without an id: %v", ids)
	}
	for _, bad := range []string{"k:notbase64!", "k:" + base64.StdEncoding.EncodeToString([]byte("short")), "a:" + b64(1) + ",a:" + b64(2), "bad id:" + b64(1)} {
		_, err := ParseKeys(bad, "")
		if err == nil {
			t.Errorf("%q: no error", bad)
		} else if strings.Contains(err.Error(), b64(1)) {
			t.Errorf("%q: the error holds the key", bad)
		}
	}
	if _, err := ParseKeys("", ""); err == nil {
		t.Error("no keys at all: no error")
	}
}

func TestSearchHash(t *testing.T) {
	k := mustKeys(t, "k:"+b64(1), "").SearchKey()
	if SearchHash(k, " Ann@Example.com ") != SearchHash(k, "ann@example.com") {
		t.Fatal("the hash depends on case or spaces")
	}
	if SearchHash(k, "ann@example.com") == SearchHash(mustKeys(t, "k:"+b64(2), "").SearchKey(), "ann@example.com") {
		t.Fatal("the hash does not depend on the key")
	}
	if SearchHash(k, "  ") != "" {
		t.Fatal("empty value hashed")
	}
}

// A failure written by an encrypting worker (its message in an encrypted payload) reads
// back through a decode-only client, which writes its own failures in clear.
func TestFailuresThroughApply(t *testing.T) {
	keys := mustKeys(t, "k1:"+b64(1), "")
	var on, off client.Options
	Apply(&on, New(keys, true))
	Apply(&off, New(keys, false))
	f := on.FailureConverter.ErrorToFailure(temporal.NewApplicationError("the customer ann@example.com is unknown", "NotFound", "detail +7 900"))
	if strings.Contains(f.String(), "ann@example.com") || strings.Contains(f.String(), "900") {
		t.Fatalf("the failure holds the text in clear: %v", f)
	}
	err := off.FailureConverter.FailureToError(f)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !strings.Contains(app.Error(), "ann@example.com") || app.Type() != "NotFound" {
		t.Fatalf("read back %v", err)
	}
	var detail string
	if err := app.Details(&detail); err != nil || detail != "detail +7 900" {
		t.Fatalf("detail %q %v", detail, err)
	}
	if g := off.FailureConverter.ErrorToFailure(errors.New("in clear")); g.GetMessage() != "in clear" {
		t.Fatalf("a decode-only client's failure: %v", g)
	}
}

// The cost per payload of a conversation's typical size (a message signal, ~1 KiB) and a
// large one (a transcript, ~64 KiB): go test -bench . ./internal/codec
// BenchmarkCodec measures encrypting and decrypting a payload of 1 KiB (a message signal)
// and 64 KiB (a long transcript), against a baseline in the same run: the default data
// converter serialising a value of that size to a payload (json-*) and back, which every
// payload costs with encryption on or off.
func BenchmarkCodec(b *testing.B) {
	c := New(mustKeysB(b), true)
	dc := converter.GetDefaultDataConverter()
	for _, size := range []int{1 << 10, 64 << 10} {
		value := strings.Repeat("a", size)
		b.Run(fmt.Sprintf("json-to-%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				_, _ = dc.ToPayload(value)
			}
		})
		jp, _ := dc.ToPayload(value)
		b.Run(fmt.Sprintf("json-from-%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			var v string
			for b.Loop() {
				_ = dc.FromPayload(jp, &v)
			}
		})
		p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: bytes.Repeat([]byte("a"), size)}
		enc, _ := c.Encode([]*commonpb.Payload{p})
		b.Run(fmt.Sprintf("encode-%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				_, _ = c.Encode([]*commonpb.Payload{p})
			}
		})
		b.Run(fmt.Sprintf("decode-%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				_, _ = c.Decode(enc)
			}
		})
	}
}

func mustKeysB(b *testing.B) *Keys {
	k, err := ParseKeys("k1:"+b64(1), "")
	if err != nil {
		b.Fatal(err)
	}
	return k
}
