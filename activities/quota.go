package activities

import (
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// When Planfix's daily quota of an account runs low, the optional calls (the action on
// the contact's profile, the contact card's updates) are the first to go: what is left
// is kept for the chats' tasks, messages and replies.

// DefaultOptionalReserve is the X-RateLimit-Remaining under which the optional calls are
// skipped (Activities.OptionalReserve 0).
const DefaultOptionalReserve = 200

// ErrQuotaLow is the error type of an optional call skipped because the account's daily
// quota runs low. Non-retryable: the workflow records it (the Web UI shows the reason in
// the activity's failure and the conversation's lastError) and goes on.
const ErrQuotaLow = "planfix.quota_low"

// quotaObserver keeps the latest X-RateLimit-Remaining of each account for
// skipOptional, and passes everything on to the metrics.
type quotaObserver struct {
	a    *Activities
	next planfix.Observer
}

func (o quotaObserver) ObserveRemaining(account string, remaining int) {
	o.a.remaining.Store(account, remaining)
	if o.next != nil {
		o.next.ObserveRemaining(account, remaining)
	}
}

func (o quotaObserver) ObserveRequest(account, outcome string) {
	if o.next != nil {
		o.next.ObserveRequest(account, outcome)
	}
}

// skipOptional returns the ErrQuotaLow failure when the latest answer this process had
// from pf's account left fewer requests than the reserve (OptionalReserve; negative:
// never skip), nil otherwise; what names the call skipped.
func (a *Activities) skipOptional(pf *planfix.Client, what string) error {
	reserve := a.OptionalReserve
	if reserve == 0 {
		reserve = DefaultOptionalReserve
	}
	v, ok := a.remaining.Load(pf.Account())
	if !ok || reserve < 0 || v.(int) >= reserve {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"skipped %s: Planfix's daily quota of %s has %d requests left (X-RateLimit-Remaining), under the %d kept for the chats' tasks, messages and replies",
		what, pf.Account(), v.(int), reserve), ErrQuotaLow, nil)
}
