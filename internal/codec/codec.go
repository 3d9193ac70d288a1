// Package codec encrypts what the bridge stores in Temporal: every payload (workflow and
// activity inputs and results, signals, queries, memos) and, through FailureConverter,
// failure messages. Temporal's histories, its database, its backups and its Web UI then
// hold ciphertext; the Web UI and the temporal CLI read them in clear through the codec
// server (Handler) on the bridge's API.
//
// An encrypted payload is the original payload, serialised, sealed with AES-256-GCM
// under a key with an id: its metadata says `encoding: binary/encrypted` and
// `encryption-key-id: <id>`; its data is the 12-byte nonce then the ciphertext and tag,
// the key id being authenticated with it. Decode passes payloads without that encoding
// through unchanged, so histories written in clear keep replaying and running.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	MetadataEncoding  = converter.MetadataEncoding // "encoding"
	EncodingEncrypted = "binary/encrypted"
	MetadataKeyID     = "encryption-key-id"
)

// KeySize is the size of a payload key: AES-256.
const KeySize = 32

const nonceSize = 12

// keyHelp is how to make a key, quoted by every key error.
const keyHelp = "PAYLOAD_KEY is a comma-separated list of id:key, each key 32 bytes in base64 (generate one with `openssl rand -base64 32`)"

type key struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// Keys are the payload keys: the first encrypts, all decrypt.
type Keys struct {
	keys []key
}

// ParseKeys reads PAYLOAD_KEY: a comma-separated list of `id:base64key` (a key alone,
// without an id, takes as id the first 8 hex digits of its SHA-256). When payloadKey is
// empty the keys are derived from secretsKey (SECRETS_KEY, itself a comma-separated
// list) with HKDF-SHA256, one for each of its keys, in its order, with the id
// `s-<first 8 hex digits of the SHA-256 of the derived key>`: rotating SECRETS_KEY
// (new key first, old one kept) rotates the payload key the same way. Errors name a key
// by its position or id, never its material.
func ParseKeys(payloadKey, secretsKey string) (*Keys, error) {
	ks := &Keys{}
	if strings.TrimSpace(payloadKey) == "" {
		for i, p := range split(secretsKey) {
			raw, ok := decodeBase64(p)
			if !ok || len(raw) != KeySize {
				return nil, fmt.Errorf("key %d of SECRETS_KEY is not 32 bytes of base64, so no payload key can be derived from it (or set PAYLOAD_KEY)", i+1)
			}
			d, err := hkdf.Key(sha256.New, raw, nil, "chatrabridge payload key v1", KeySize)
			if err != nil {
				return nil, err
			}
			if err := ks.add("s-"+fingerprint(d), d); err != nil {
				return nil, err
			}
		}
		if len(ks.keys) == 0 {
			return nil, errors.New("neither PAYLOAD_KEY nor SECRETS_KEY is set: " + keyHelp)
		}
		return ks, nil
	}
	parts := split(payloadKey)
	for i, p := range parts {
		which := fmt.Sprintf("key %d of PAYLOAD_KEY", i+1)
		id, b64, hasID := strings.Cut(p, ":")
		if !hasID {
			b64, id = p, ""
		}
		id = strings.TrimSpace(id)
		raw, ok := decodeBase64(strings.TrimSpace(b64))
		if !ok {
			return nil, fmt.Errorf("%s is not valid base64: %s", which, keyHelp)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("%s is %d bytes long, not 32: %s", which, len(raw), keyHelp)
		}
		if hasID && !validID(id) {
			return nil, fmt.Errorf("%s has the id %q: an id is 1 to 64 letters, digits, '-', '_' or '.'", which, id)
		}
		if id == "" {
			id = fingerprint(raw)
		}
		if err := ks.add(id, raw); err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
	}
	return ks, nil
}

func (ks *Keys) add(id string, raw []byte) error {
	for _, k := range ks.keys {
		if k.id == id {
			return fmt.Errorf("the key id %q is listed twice: give each key its own id", id)
		}
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	ks.keys = append(ks.keys, key{id: id, raw: raw, aead: aead})
	return nil
}

// IDs are the keys' ids, the encrypting one first.
func (ks *Keys) IDs() []string {
	var ids []string
	for _, k := range ks.keys {
		ids = append(ids, k.id)
	}
	return ids
}

// SearchKey is the key of the customer search hashes (CUSTOMER_SEARCH=hash), derived
// from the encrypting key.
func (ks *Keys) SearchKey() []byte {
	d, _ := hkdf.Key(sha256.New, ks.keys[0].raw, nil, "chatrabridge customer search v1", KeySize)
	return d
}

// SearchHash is the value a customer's email or name is searched by when
// CUSTOMER_SEARCH=hash: the hex HMAC-SHA256, under the search key, of the value
// trimmed and lowercased. Empty stays empty.
func SearchHash(searchKey []byte, value string) string {
	v := strings.ToLower(strings.TrimSpace(value))
	if v == "" {
		return ""
	}
	m := hmac.New(sha256.New, searchKey)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func split(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

func fingerprint(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:4])
}

// Codec is the converter.PayloadCodec. With encryption off it only decodes: encrypted
// payloads are read, new ones are written in clear (a rolling upgrade from a release
// that cannot decode). Safe for concurrent use.
type Codec struct {
	keys    *Keys
	encrypt bool
}

// New returns the codec over keys; encrypt false makes it decode-only.
func New(keys *Keys, encrypt bool) *Codec {
	return &Codec{keys: keys, encrypt: encrypt}
}

// SearchKey is the key of the customer search hashes (Keys.SearchKey).
func (c *Codec) SearchKey() []byte { return c.keys.SearchKey() }

// Encrypts says whether Encode encrypts.
func (c *Codec) Encrypts() bool { return c.encrypt }

// Encode encrypts each payload under the first key (unless encryption is off, or the
// payload is already encrypted).
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if !c.encrypt {
		return payloads, nil
	}
	k := c.keys.keys[0]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if encrypted(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		data := make([]byte, nonceSize, nonceSize+len(plain)+k.aead.Overhead())
		if _, err := rand.Read(data); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		data = k.aead.Seal(data, data[:nonceSize], plain, []byte(k.id))
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(k.id)},
			Data:     data,
		}
	}
	return out, nil
}

// Decode decrypts the encrypted payloads and passes the others through.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !encrypted(p) {
			out[i] = p
			continue
		}
		d, err := c.decrypt(p)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// UnknownKeyError is the error of decoding a payload encrypted under a key id that is not
// among the configured keys.
type UnknownKeyError struct {
	ID    string
	Known []string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("payload encrypted under the key id %q, which is not among the payload keys (%s): add that key to PAYLOAD_KEY (after the first)",
		e.ID, strings.Join(e.Known, ", "))
}

func (c *Codec) decrypt(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	i := slices.IndexFunc(c.keys.keys, func(k key) bool { return k.id == id })
	if i < 0 {
		return nil, &UnknownKeyError{ID: id, Known: c.keys.IDs()}
	}
	k := c.keys.keys[i]
	data := p.GetData()
	if len(data) < nonceSize+k.aead.Overhead() {
		return nil, fmt.Errorf("encrypted payload under the key id %q is too short (%d bytes): damaged", id, len(data))
	}
	plain, err := k.aead.Open(nil, data[:nonceSize], data[nonceSize:], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("encrypted payload under the key id %q does not open: damaged, or another key with that id", id)
	}
	var out commonpb.Payload
	if err := proto.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("encrypted payload under the key id %q: %w", id, err)
	}
	return &out, nil
}

func encrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[MetadataEncoding]) == EncodingEncrypted
}

// DataConverter is the SDK's default data converter with c over it.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// Apply makes the client (and the workers built on it) encode and decode through c: its
// data converter, and a failure converter over it, which reads failures' details and
// encoded messages through the codec (the SDK's default one would not) and, when c
// encrypts, moves failure messages into an encrypted payload too.
func Apply(o *client.Options, c *Codec) {
	o.DataConverter = DataConverter(c)
	o.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          o.DataConverter,
		EncodeCommonAttributes: c.Encrypts(),
	})
}

// FailureConverter moves failures' messages and stack traces into an encoded payload,
// so that they are encrypted by dc's codec too.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}
