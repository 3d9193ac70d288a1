package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a sealing key: AES-256.
const KeySize = 32

// sealVersion is the first byte of every sealed blob; a new format gets a new version.
const sealVersion = 1

// keyIDSize is how many bytes of the key's SHA-256 name it in a sealed blob.
const keyIDSize = 4

// headerSize is the version byte and the key id, which precede the nonce.
const headerSize = 1 + keyIDSize

// keyHelp is how to make a key, quoted by every key error.
const keyHelp = "SECRETS_KEY must be 32 bytes, base64: generate one with `openssl rand -base64 32`"

// Sealer seals secrets for storage with AES-256-GCM. It holds one or more keys: the first
// seals, every one of them opens, so a key can be rotated by putting the new key first
// and keeping the old one after it until everything sealed with it has been sealed again.
//
// A sealed blob is: version (1 byte), key id (the first 4 bytes of the key's SHA-256),
// nonce (12 random bytes), then the ciphertext and GCM tag. The version and key id are
// authenticated as additional data, so a blob cannot be re-labelled with another key id.
// A Sealer is safe for concurrent use.
type Sealer struct {
	keys []sealKey // keys[0] seals
}

type sealKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewSealer parses keys, a comma-separated list of base64 keys of 32 bytes each
// (SECRETS_KEY): the first seals, all open. Standard and URL-safe base64 are accepted,
// with or without padding; spaces around a key are ignored. The error names the
// offending key by position and says how to generate a good one; it never contains key
// material.
func NewSealer(keys string) (*Sealer, error) {
	var parts []string
	for p := range strings.SplitSeq(keys, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return nil, errors.New("SECRETS_KEY is not set: " + keyHelp)
	}
	s := &Sealer{}
	seen := map[[keyIDSize]byte]int{}
	for i, p := range parts {
		which := "SECRETS_KEY"
		if len(parts) > 1 {
			which = fmt.Sprintf("key %d of %d in SECRETS_KEY", i+1, len(parts))
		}
		raw, ok := decodeKey(p)
		if !ok {
			return nil, fmt.Errorf("%s is not valid base64: %s", which, keyHelp)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("%s is %d bytes long, not 32: %s", which, len(raw), keyHelp)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		k := sealKey{id: keyID(raw), aead: aead}
		if j, dup := seen[k.id]; dup {
			return nil, fmt.Errorf("%s repeats key %d: list each key once", which, j+1)
		}
		seen[k.id] = i
		s.keys = append(s.keys, k)
	}
	return s, nil
}

func decodeKey(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

func keyID(key []byte) [keyIDSize]byte {
	sum := sha256.Sum256(key)
	var id [keyIDSize]byte
	copy(id[:], sum[:keyIDSize])
	return id
}

// KeyID returns the id of the sealing key (the first one), in hex, for logs and the
// operator: it names the key without revealing it.
func (s *Sealer) KeyID() string { return hex.EncodeToString(s.keys[0].id[:]) }

// Seal encrypts plaintext under the first key. Sealing the same plaintext twice gives
// different blobs (the nonce is random). It fails only if the system's random source does,
// which crypto/rand does not report; the error is kept for other implementations.
func (s *Sealer) Seal(plaintext []byte) ([]byte, error) {
	k := s.keys[0]
	nonceSize := k.aead.NonceSize()
	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(plaintext)+k.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:headerSize], k.id[:])
	nonce := out[headerSize:]
	if _, err := randRead(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return k.aead.Seal(out, nonce, plaintext, out[:headerSize]), nil
}

// ErrOpen is the cause of every Open failure: the blob is not one a key of this Sealer
// sealed, or it was changed since.
var ErrOpen = errors.New("cannot open sealed secret")

// Open decrypts a blob made by Seal with any of the Sealer's keys. It fails (wrapping
// ErrOpen) when the blob is malformed, was sealed with a key that is not in the list (the
// message then names the key id, so the operator knows to add that key back), or was
// tampered with.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < headerSize || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: not a sealed secret of a known format", ErrOpen)
	}
	var id [keyIDSize]byte
	copy(id[:], sealed[1:headerSize])
	for _, k := range s.keys {
		if k.id != id {
			continue
		}
		nonceSize := k.aead.NonceSize()
		if len(sealed) < headerSize+nonceSize+k.aead.Overhead() {
			return nil, fmt.Errorf("%w: truncated", ErrOpen)
		}
		nonce := sealed[headerSize : headerSize+nonceSize]
		plain, err := k.aead.Open(nil, nonce, sealed[headerSize+nonceSize:], sealed[:headerSize])
		if err != nil {
			return nil, fmt.Errorf("%w: it was changed after sealing, or sealed by another key with the same id", ErrOpen)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w: it was sealed with key id %s, which is not in SECRETS_KEY; add that key (after the current one) to SECRETS_KEY",
		ErrOpen, hex.EncodeToString(id[:]))
}
