package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// TokenBytes is the entropy of a webhook token.
const TokenBytes = 32

// TokenHashSize is the size of a token's hash as stored.
const TokenHashSize = sha256.Size

var randRead = rand.Read

// NewToken returns a new random token (32 bytes from crypto/rand, base64url without
// padding, so it fits in a URL path segment as it is) and its hash, which is all that
// should be stored.
func NewToken() (String, []byte) {
	b := make([]byte, TokenBytes)
	_, _ = randRead(b) // crypto/rand.Read never fails; it crashes the program instead
	t := base64.RawURLEncoding.EncodeToString(b)
	return String(t), HashToken(t)
}

// HashToken returns the SHA-256 of token. Tokens are long and random, so a fast hash is
// enough: there is nothing to brute-force.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// CheckToken reports whether token hashes to hash. The comparison takes the same time
// whatever the inputs (the token is hashed first, so its length does not matter either).
func CheckToken(token string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashToken(token), hash) == 1
}

// Equal reports whether a and b are the same secret, in time independent of their
// contents and lengths. It is how a presented credential (the admin token) is checked.
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
