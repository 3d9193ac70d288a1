package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
)

// Running activities from the coroutines: counted while in flight (the root continues as
// new only when none is), refused once the root is stopping, failures recorded where
// operators see them.

// errStopping is what call returns instead of starting an activity once the root has
// decided to end or continue as new.
var errStopping = temporal.NewCanceledError("the conversation is continuing as new")

// call runs an activity and waits for its result, counting it as in flight.
func (c *conversation) call(ctx workflow.Context, o workflow.ActivityOptions, fn, in, out any) error {
	if c.stopping {
		return errStopping
	}
	if n := payloadSize(in); n > maxActivityPayloadBytes && patched(ctx, patchPayloadBounds) {
		// Temporal would refuse the command, and fail this workflow task and every
		// later one: the conversation would stop. Refused here instead, for good.
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the activity's input is %d bytes, over the %d a workflow may send", n, maxActivityPayloadBytes),
			ErrPayloadTooLarge, nil)
	}
	c.busy++
	defer func() { c.busy-- }()
	o.Summary = CutSummary(EscapeMarkdown(oneLine(o.Summary, 100)))
	f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), fn, in)
	if out == nil {
		return f.Get(ctx, nil)
	}
	return f.Get(ctx, out)
}

// maxActivityPayloadBytes bounds the encoded input of an activity, below Temporal's
// limit on a payload (2 MiB by default) with room for the command around it.
const maxActivityPayloadBytes = 2<<20 - 64<<10

// ErrPayloadTooLarge is the error type of an activity the workflow did not start
// because its input was over maxActivityPayloadBytes. Non-retryable.
const ErrPayloadTooLarge = "workflow.payload_too_large"

// payloadSize is the size of v as Temporal carries it (JSON), 0 if it cannot be encoded
// (the SDK then reports that itself).
func payloadSize(v any) int {
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		return 0
	}
	return len(p.GetData())
}

// callLocal runs a local activity, by its registered name (a.M is a method value on a
// nil receiver, which a local activity would call), and waits for its result.
func (c *conversation) callLocal(ctx workflow.Context, o workflow.LocalActivityOptions, name string, in, out any) error {
	if c.stopping {
		return errStopping
	}
	c.busy++
	defer func() { c.busy-- }()
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, o), name, in).Get(ctx, out)
}

// await waits for cond; it fails only when the workflow is cancelled (also when cond
// already holds, so that a loop around it ends).
func (c *conversation) await(ctx workflow.Context, cond func() bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return !c.stopping && cond() })
}

// addNote writes a note of the bridge's into a task (de-duplicated by key) and remembers
// its comment as the bridge's own.
func (c *conversation) addNote(ctx workflow.Context, task int64, key, text string) {
	var r activities.AddNoteResult
	if err := c.call(ctx, planfixOptions("note: "+text), a.AddNote, activities.AddNoteInput{ChatStart: c.chatStart(ctx),
		IntegrationID: c.in.IntegrationID, TaskID: task, Key: key, Text: text,
	}, &r); err != nil {
		c.recordError(ctx, fmt.Sprintf("add a note to task #%d", task), err)
		return
	}
	c.markOwnComment(r.CommentID)
}

// recordError keeps the latest failure in the state (the query and the current details
// show it) and logs it; the conversation goes on.
func (c *conversation) recordError(ctx workflow.Context, what string, err error) {
	c.st.State.LastError = what + ": " + errorText(err)
	workflow.GetLogger(ctx).Warn("conversation: "+what, "error", err)
	c.publish(ctx)
}

// errorText is the cause of an activity failure as a person should read it.
func errorText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "it kept failing until its time ran out (" + timeout.TimeoutType().String() + ")"
	}
	return err.Error()
}
