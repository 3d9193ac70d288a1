package planfix

import (
	"context"
	"time"
)

// Class is how much a request matters next to the account's other requests, for a
// Limiter that spends the account's budget (one request a second, a daily quota) by
// class. The context of a call carries it (WithClass, WithPriority), so that a Limiter
// reads it in Wait(ctx, account) without a change of its interface. postgres.RateLimiter
// serves an account's waiting requests by Rank, then by the age of their chat (ChatOf).
type Class string

// The classes, from the most to the least urgent: what stands between a customer and an
// employee first, what nobody waits for last.
const (
	// ClassSetup is the setup of a chat up to its task (the contact's search and
	// creation, the active-task search, the task) and the task's first messages (what
	// its employees need to answer), and the reading of an employee's reply on its way
	// to the customer.
	ClassSetup Class = "setup"
	// ClassDefault is everything else a conversation needs to go on: the customer's
	// later messages into the task, the bridge's notes. A context without a class is of this
	// class (so are the admin API's checks).
	ClassDefault Class = ""
	// ClassMessages is the customer's messages into the task: ClassDefault by its name.
	ClassMessages = ClassDefault
	// ClassCompletion is the completion of a task whose chat has ended.
	ClassCompletion Class = "completion"
	// ClassLow may wait behind every other class, and is the first to be skipped when
	// the daily quota runs short (Optional): the action on the contact's profile, the
	// contact card's updates, reminders that a customer waits for an answer (a reminder
	// that comes late is still useful; a message that comes late is not).
	ClassLow Class = "low"
)

// Rank orders the classes: 1 (ClassSetup) is served first, 4 (ClassLow) last. A class
// this package does not know ranks as ClassDefault.
func (c Class) Rank() int {
	switch c {
	case ClassSetup:
		return 1
	case ClassCompletion:
		return 3
	case ClassLow:
		return 4
	default:
		return 2
	}
}

type classKey struct{}

type chatKey struct{}

// WithClass returns ctx carrying the request class c.
func WithClass(ctx context.Context, c Class) context.Context {
	return context.WithValue(ctx, classKey{}, c)
}

// WithPriority returns ctx carrying the request class c and the start of the chat the
// requests serve (zero: not known, served after the chats whose start is known), by
// which a Limiter serves the older chat first within a class.
func WithPriority(ctx context.Context, c Class, chatStarted time.Time) context.Context {
	ctx = WithClass(ctx, c)
	if !chatStarted.IsZero() {
		ctx = context.WithValue(ctx, chatKey{}, chatStarted)
	}
	return ctx
}

// ClassOf returns the request class ctx carries: ClassDefault when none.
func ClassOf(ctx context.Context) Class {
	c, _ := ctx.Value(classKey{}).(Class)
	return c
}

// ChatOf returns the start of the chat ctx's requests serve (WithPriority); zero when
// not known.
func ChatOf(ctx context.Context) time.Time {
	t, _ := ctx.Value(chatKey{}).(time.Time)
	return t
}
