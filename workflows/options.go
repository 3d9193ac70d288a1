package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity options. Every activity has an explicit StartToCloseTimeout and RetryPolicy;
// permanent failures come back from the activities as non-retryable application errors
// (see package activities), so the policies only need to say how to retry the rest.

// heartbeatTimeout is how long an activity may go without a heartbeat: when its worker
// dies (kill -9, a lost machine) the activity is retried on another worker this long
// after its last heartbeat. The activities heartbeat every third of it (package
// activities), so a live one never reaches it. Changing it changes no workflow command
// that replay checks (activity options are not compared), so running conversations take
// it up at their next activity.
const heartbeatTimeout = 10 * time.Second

// storeOptions: the store and the settings. A database outage is waited out.
func storeOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 30 * time.Second,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
}

// storeLocalOptions: a read of the store as a local activity (the settings).
func storeLocalOptions() workflow.LocalActivityOptions {
	o := storeOptions("")
	return workflow.LocalActivityOptions{StartToCloseTimeout: o.StartToCloseTimeout, RetryPolicy: o.RetryPolicy}
}

// planfixOptions: calls to Planfix. Each request waits its turn at the account's rate
// limit (one a second, shared by every worker), so a call may queue for minutes behind
// other conversations: the timeout allows for it and the activity heartbeats while it
// waits, so that a worker that died is noticed within heartbeatTimeout. A Planfix outage
// is waited out (nothing a customer wrote is dropped), retried at least every minute, so
// that a customer's message reaches the task within a minute of Planfix's return; the
// daily limit's retry delay comes from the activity's error.
func planfixOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
}

// replyOptions: an employee's reply into the chat (Planfix to read it, Chatra to send
// it). A customer may be waiting in the chat, so retries come at least every 30 s (the
// Planfix read still waits its turn at the account's rate limit). Retried for a day at
// most: then the task gets a note that it was not delivered, which an employee can act
// on, rather than the reply waiting silently.
func replyOptions(summary string) workflow.ActivityOptions {
	o := planfixOptions(summary)
	o.ScheduleToCloseTimeout = 24 * time.Hour
	o.RetryPolicy.MaximumInterval = 30 * time.Second
	return o
}

// reminderOptions: a reminder that the customer waits, in the lowest request class (it
// may wait its turn behind every other request of the account). One that cannot go out
// within an hour is given up (the conversation records the error, and the next
// reminder is due an interval later): by then it would say something no longer true.
func reminderOptions(summary string) workflow.ActivityOptions {
	o := planfixOptions(summary)
	o.ScheduleToCloseTimeout = time.Hour
	return o
}

// chatraOptions: the task link into the visitor's notes, a convenience: a few retries.
func chatraOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
			MaximumAttempts:    10,
		},
	}
}
