package workflows

import "go.temporal.io/sdk/workflow"

// # Versioning: how a change keeps running conversations replaying
//
// A conversation lives for days (idle timeout 24 h, late-reply window 72 h, a new
// episode whenever the customer comes back within it), so a worker of a new release
// takes up histories written by the release before. Temporal replays a history against
// the code to rebuild its state: the commands the code issues (activities with their
// type and order, timers, local activities, search-attribute upserts, continue-as-new)
// must match the recorded events one for one, or the workflow task fails with a
// non-determinism error.
//
// The policy is patching, with two guards:
//
//  1. Every change that alters the sequence of commands (an activity more, fewer, in
//     another order or of another type; a timer added or removed; an upsert moved) is
//     made behind a patch: a change ID declared below, and
//
//     if patched(ctx, patchX) { the new way } else { the old way }
//
//     at the point of change. A new run records a marker and takes the new way; a
//     history written before the change has no marker and replays the old way. The old
//     way stays as long as the replay corpus holds a history that needs it: in
//     practice, for good (the corpus is append-only).
//  2. What continue-as-new carries (Carried) changes only by adding fields; a field
//     that changes meaning is read from the old form too, and written in the old form
//     for as long as a worker of the previous release may read it (a rolling deploy):
//     see Carried.MarshalJSON.
//
// Changes that do not alter commands need no patch: activity options (timeouts,
// retries), summaries, texts, what an activity does inside, the state query's content.
//
// The guards: TestReplayRecordedHistories replays every history in testdata (recorded per
// release under testdata/<release>/, never re-recorded: TestHistoryManifest holds their
// hashes), and the upgrade test (package upgrade) runs conversations on the previous
// release's worker, then on this one side by side, then on this one alone.
//
// Why not worker deployment versioning (pinned conversations): a pinned conversation
// needs the old release's workers running until it ends, days after a deploy, and after
// every continue-as-new it would move on anyway; the compose file, a plain self-hosted
// cluster and the CLI's dev server would all need the deployment APIs switched on. With
// patching a rolling deploy needs nothing but the new binary. During one, a worker of
// the previous release may take a workflow task of a run the new release has patched:
// it fails that task (non-determinism), and the worker's panic policy (BlockWorkflow,
// worker.Options) has Temporal retry it until a new worker takes it: the conversation
// waits, it does not fail.

// Change IDs of the patches, oldest first. A patch ID is never reused or renamed.
const (
	// patchNoTaskSearchForNewContact: with "create a new task only if the contact has
	// no active task", a contact created in this setup is not searched for an active
	// task: it was created a moment ago and has none (one Planfix request saved).
	patchNoTaskSearchForNewContact = "no-task-search-for-new-contact"

	// patchPayloadBounds: no payload the workflow sends is over Temporal's limit. An
	// AddComments call carries at most maxBatchBytes of messages (the rest go in the
	// next call); an activity whose input is still over maxActivityPayloadBytes is not
	// started but fails for good (ErrPayloadTooLarge); continue-as-new waits while what
	// it would carry is over maxCarriedBytes. Taken only where a bound is crossed: a
	// history that never came near one replays unchanged.
	patchPayloadBounds = "payload-bounds"

	// patchClaimNote: an email the visitor typed is a claim, not a proof. A chat whose
	// contact was found only by such an email (EnsureContactResult.Claimed) leaves a
	// note in its task saying so; one that joins a contact's active task on it, and that
	// the store does not let receive the task's replies, leaves a note saying that
	// (joining mid-chat always left a note; its text now says so too); and what such a
	// chat's visitor tells is not written onto the claimed contact's card. Taken only
	// where an activity's result says so, which no history recorded before the change
	// does.
	patchClaimNote = "claim-note"
	// patchCustomerWaiting: the wait for an answer shows and acts (waiting.go): the
	// CustomerWaitingSince search attribute is set when a customer's message begins to
	// wait and unset when it is answered or the chat closes, and with a first-response
	// target a timer runs to each deadline and a reminder note goes into the task.
	patchCustomerWaiting = "customer-waiting"
	// patchEchoByContent: a reply the bridge sent is recognised when Chatra delivers it
	// back without the receivedFrom tag (Chatra may ignore the tag on a message sent by
	// agentId) and under an id SendReply did not return: by its content and agent
	// (SendReplyResult.EchoKeys), and, when its echo came in before SendReply returned,
	// by either, among the messages still waiting for the task. Taken only where such an
	// echo is found, which no history recorded before SendReply returned EchoKeys can
	// hold.
	patchEchoByContent = "echo-by-content"
)

// patched reports whether the run takes the change id: always in a new run, and in a
// replayed history only where the change was made when it was recorded.
func patched(ctx workflow.Context, id string) bool {
	return workflow.GetVersion(ctx, id, workflow.DefaultVersion, 1) == 1
}
