package planfix

import "context"

// Class is how much a request matters next to the account's other requests, for a
// Limiter that spends the account's budget (one request a second, a daily quota) by
// class. The context of a call carries it (WithClass), so that a Limiter reads it in
// Wait(ctx, account) without a change of its interface; postgres.RateLimiter does not
// read it yet and serves every class in turn.
type Class string

// The classes, from the most to the least urgent.
const (
	// ClassDefault is everything a conversation needs to go on: tasks, the customer's
	// messages, replies. A context without a class is of this class.
	ClassDefault Class = ""
	// ClassLow may wait behind every other class, and may be the first to be refused
	// when the daily quota runs short: reminders that a customer waits for an answer
	// (a reminder that comes late is still useful; a message that comes late is not).
	ClassLow Class = "low"
)

type classKey struct{}

// WithClass returns ctx carrying the request class c.
func WithClass(ctx context.Context, c Class) context.Context {
	return context.WithValue(ctx, classKey{}, c)
}

// ClassOf returns the request class ctx carries: ClassDefault when none.
func ClassOf(ctx context.Context) Class {
	c, _ := ctx.Value(classKey{}).(Class)
	return c
}
