package api

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/chatrabridge/chatrabridge"
)

// tokenMemoryTTL is how long a token the store accepted is accepted again while the
// store cannot answer.
const tokenMemoryTTL = 15 * time.Minute

// rememberedTokens checks tokens with the store and remembers, for tokenMemoryTTL, the
// ones it accepted (their SHA-256, never the token). While the store cannot answer
// (EUNAVAILABLE, or any failure that is not an answer), a delivery with a remembered token is still taken: a chat's webhook
// needs only Temporal, which keeps what it is given, so a PostgreSQL restart does not
// turn Chatra's deliveries away. Whenever the store answers, its answer decides: a
// rotated or deleted token is refused at once.
type rememberedTokens struct {
	store WebhookTokens
	now   func() time.Time

	mu       sync.Mutex
	accepted map[tokenKey]time.Time // when the store last accepted it
}

type tokenKey struct {
	integrationID, kind string
	hash                [sha256.Size]byte
}

func rememberTokens(store WebhookTokens) *rememberedTokens {
	return &rememberedTokens{store: store, now: time.Now, accepted: map[tokenKey]time.Time{}}
}

func (r *rememberedTokens) CheckWebhookToken(ctx context.Context, integrationID, kind, token string) error {
	k := tokenKey{integrationID, kind, sha256.Sum256([]byte(token))}
	err := r.store.CheckWebhookToken(ctx, integrationID, kind, token)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	switch chatrabridge.ErrorCode(err) {
	case "":
		r.accepted[k] = now
		if len(r.accepted) > 1000 { // a bound on what stale entries may hold
			for key, at := range r.accepted {
				if now.Sub(at) > tokenMemoryTTL {
					delete(r.accepted, key)
				}
			}
		}
	case chatrabridge.EUNAUTHORIZED, chatrabridge.ENOTFOUND, chatrabridge.EINVALID:
		delete(r.accepted, k) // the store's answer: no
	default: // the store failed to answer
		if at, ok := r.accepted[k]; ok && now.Sub(at) <= tokenMemoryTTL {
			return nil
		}
	}
	return err
}
