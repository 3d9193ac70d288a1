// Package activities holds every side effect of a conversation: Planfix calls, Chatra
// calls and store writes. Activities are methods on Activities, which holds the clients
// and the store; workflows name them through a typed nil (var a *Activities; a.X).
//
// Every activity takes one struct and returns one struct (or only an error), reads the
// integration's credentials itself by integration id (so no secret ever enters a workflow
// history, and a rotated token takes effect at the next call), and is safe to retry:
//
//   - creates that Planfix can find again (contacts, tasks, task comments) carry a
//     deterministic sourceObjectId derived from the Chatra ids; a retried attempt looks
//     for it before creating (the first attempt does not look: nothing can exist yet, and
//     each lookup costs a rate-limited Planfix request);
//   - effects the remote side cannot find again (a Chatra message, an action on a
//     contact) are recorded in the store right after they succeed and looked up before
//     acting. What remains is the window between the remote success and that record (a
//     crash exactly there repeats the effect once); it is documented on each activity;
//   - updates (contact card, task status, visitor notes, store rows) are idempotent.
//
// Planfix allows one request a second per account, so each activity spends its requests
// in a class (planfix.Class), with its chat's start (ChatStart), and the rate limiter
// serves the account's waiting requests by class, then oldest chat first: the setup of a
// chat up to its task, the task's first messages and the reading of an employee's reply
// (EnsureContact, FindActiveTask, CreateTask, AddComments of the first messages,
// SendReply), then the other messages (AddComments, AddNote), then
// completion (CompleteTask), last the optional calls (AddContactAction, UpdateContact,
// reminders), which are also skipped when the daily quota runs low (quota.go).
//
// Errors are Temporal application errors whose type is stable (the error kinds of the
// chatra and planfix packages, or the Err* constants here): a permanent failure (bad
// token, unknown template, unpaid account, a visitor Chatra does not know) is
// non-retryable, so it shows in the Web UI at once instead of being retried forever; a
// transient one is retried, after the delay the remote side asked for when it said.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/remote"
)

// Error types of the failures the activities report themselves (the others carry the
// Kind of a *chatra.Error or *planfix.Error, such as "planfix.unauthorized").
const (
	// ErrIntegrationNotFound: the integration was deleted. Non-retryable.
	ErrIntegrationNotFound = "integration.not_found"
	// ErrIntegrationSettings: a setting the activity needs is missing or unusable (no
	// Chatra agent to send as, no completed status in the task's process). Non-retryable.
	ErrIntegrationSettings = "integration.settings"
	// ErrInvalidInput: the activity was called with input it cannot act on (a bug or a
	// hand-made signal). Non-retryable.
	ErrInvalidInput = "activity.invalid_input"
	// ErrStore: the store refused the call for a reason retrying cannot fix.
	// Non-retryable; an unavailable store is retried.
	ErrStore = "store.error"
	// ErrChatraInput: the chatra package refused the input before sending it (a
	// *chatra.InputError). Non-retryable.
	ErrChatraInput = "chatra.invalid_input"
	// ErrContactGone: Planfix refused the contact a task was created for, and no longer
	// has it (deleted or merged by an employee, or a sandbox that forgot its state): the
	// store's mappings to it are forgotten, so that EnsureContact finds or creates the
	// visitor's contact again. Non-retryable: the caller sets the contact up again.
	ErrContactGone = "planfix.contact_gone"
)

// Store is what the activities need of the store (postgres.DB): contact mappings,
// conversations, what each integration's Planfix was found to do, recorded effects.
type Store interface {
	FindContactByClient(ctx context.Context, integrationID, clientID string) (*postgres.Contact, error)
	FindContactByEmail(ctx context.Context, integrationID, email string) (*postgres.Contact, error)
	SaveContact(ctx context.Context, c postgres.Contact) error
	// ForgetContact drops the mappings to a contact Planfix no longer has.
	ForgetContact(ctx context.Context, integrationID string, contactID int64) (int64, error)
	ContactTaskIDs(ctx context.Context, integrationID string, contactID int64, limit int) ([]int64, error)
	ContactRole(ctx context.Context, integrationID string) (string, error)
	SetContactRole(ctx context.Context, integrationID, role string) error
	// Capabilities returns what a deep verify found out of the integration's Planfix.
	Capabilities(ctx context.Context, integrationID string) (postgres.Capabilities, error)

	SaveConversation(ctx context.Context, c postgres.Conversation) (heldReplies []int64, err error)
	TouchConversation(ctx context.Context, integrationID, chatID string) error
	ReceivesReplies(ctx context.Context, integrationID, chatID string) (bool, error)

	// Effect returns the result recorded for the effect named key, ENOTFOUND when none was.
	Effect(ctx context.Context, integrationID, key string) (string, error)
	RecordEffect(ctx context.Context, integrationID, key, result string) error
}

// Activities holds what the activities need. It is safe for concurrent use.
type Activities struct {
	// DB is the store.
	DB Store
	// Integrations reads an integration's settings with its credentials opened.
	Integrations chatrabridge.IntegrationService
	// Limiter spaces Planfix requests per account across every worker process
	// (postgres.RateLimiter). Nil means no limiting: tests only.
	Limiter planfix.Limiter
	// HTTP sends the requests to Chatra and Planfix; nil means http.DefaultClient.
	HTTP *http.Client
	// PlanfixObserver, when not nil, is told about every Planfix request (metrics).
	PlanfixObserver planfix.Observer
	// Logger receives what the activities log besides Temporal's own activity logger.
	Logger *slog.Logger
	// CustomerSearch is CUSTOMER_SEARCH, passed to the workflows in Settings; "" is
	// "clear".
	CustomerSearch string
	// OptionalReserve is the X-RateLimit-Remaining under which the optional Planfix
	// calls are skipped (quota.go): 0 means DefaultOptionalReserve, negative never.
	OptionalReserve int

	remaining sync.Map // account -> the latest X-RateLimit-Remaining (int)
}

// New returns the activities over the store, the integrations and the shared Planfix
// rate limiter. Each request to Chatra or Planfix is bounded by its client's timeout.
func New(db Store, integrations chatrabridge.IntegrationService, limiter planfix.Limiter, logger *slog.Logger) *Activities {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Activities{DB: db, Integrations: integrations, Limiter: limiter, Logger: logger}
}

// integration reads the integration with its credentials, mapping a missing one to a
// non-retryable error.
func (a *Activities) integration(ctx context.Context, id string) (*chatrabridge.Integration, error) {
	if id == "" {
		return nil, invalidInput("the integration id is empty")
	}
	i, err := a.Integrations.Integration(ctx, id)
	if err != nil {
		return nil, fail(fmt.Errorf("read integration %s: %w", id, err))
	}
	return i, nil
}

func (a *Activities) planfix(i *chatrabridge.Integration) *planfix.Client {
	return planfix.NewClient(planfix.Config{BaseURL: i.Planfix.RESTURL(), Token: i.Planfix.Token, Observer: quotaObserver{a, a.PlanfixObserver}},
		a.HTTP, a.Limiter)
}

func (a *Activities) chatra(i *chatrabridge.Integration) *chatra.Client {
	return chatra.NewClient(chatra.Config{APIURL: i.Chatra.APIURL, PublicKey: i.Chatra.PublicKey, SecretKey: i.Chatra.SecretKey.Reveal()}, a.HTTP)
}

// fail turns an error into what Temporal should see: a non-retryable application error
// for a permanent failure, one with the remote side's retry delay when it gave one, and
// a retryable application error typed by its kind otherwise. It returns nil for nil.
func fail(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err // already decided
	}
	if re, ok := remote.As(err); ok { // Chatra's or Planfix's
		if re.Kind == chatra.KindCanceled {
			return err // the activity itself was cancelled or timed out
		}
		return remoteError(err, re.Kind, re.Retryable, re.RetryAfter)
	}
	var ie *chatra.InputError
	if errors.As(err, &ie) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrChatraInput, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	switch chatrabridge.ErrorCode(err) {
	case chatrabridge.ENOTFOUND:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrIntegrationNotFound, err)
	case chatrabridge.EINVALID, chatrabridge.ECONFLICT:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrStore, err)
	}
	// EUNAVAILABLE, EINTERNAL (a driver error we do not know) and anything else: retry.
	return err
}

func remoteError(err error, kind string, retryable bool, retryAfter time.Duration) error {
	if !retryable {
		return temporal.NewNonRetryableApplicationError(err.Error(), kind, err)
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), kind, temporal.ApplicationErrorOptions{
		Cause: err, NextRetryDelay: retryAfter, // 0: the retry policy's backoff
	})
}

func invalidInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrInvalidInput, nil)
}

func settingsError(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrIntegrationSettings, nil)
}

// retried reports whether an earlier attempt of this activity may already have acted:
// true on attempts after the first, and when ctx is not an activity's (a direct call,
// whose history is unknown), so that a create then looks before it acts.
func retried(ctx context.Context) bool {
	return !activity.IsActivity(ctx) || activity.GetInfo(ctx).Attempt > 1
}

// heartbeat records heartbeats every third of the activity's heartbeat timeout until the
// returned stop is called, so that an activity waiting its turn at the Planfix rate
// limiter stays alive while a worker that died is noticed within the timeout. It does
// nothing outside an activity or without a heartbeat timeout.
func heartbeat(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	every := activity.GetInfo(ctx).HeartbeatTimeout / 3
	if every <= 0 {
		return func() {}
	}
	every = max(every, time.Second)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
