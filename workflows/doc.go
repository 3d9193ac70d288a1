// Package workflows holds ConversationWorkflow and its contract: the task queue default,
// the signal and query names, the input and payload types, the workflow-ID function and
// the search attributes. The API, the worker, tests and admins (through the temporal CLI)
// need nothing else to start, signal or query a conversation.
//
// # The conversation
//
// One workflow per Chatra chat, ID chatra/<integrationId>/<chatId>, type
// ConversationWorkflow, task queue "chatrabridge" (TASK_QUEUE). The API starts it with
// SignalWithStart on each Chatra webhook and signals it on each Planfix reply.
//
//   - First event (whichever signal comes first; a fragment before its chatStarted is
//     normal): load the integration's settings; find the customer's contact (by email,
//     else the contact this Chatra visitor was mapped to, else a new one from the contact
//     template); with "create a new task only if the contact has no active task" reuse
//     the contact's active task, else create one from the task template (the customer as
//     assigner, the extra employees as assignees, the visitor details in the
//     description); save the conversation in the store (how a Planfix reply finds its
//     chat: at once; a reply the webhook held because it came before is sent then); add the
//     "reached out through chat" action (OS, browser, IP) to the contact; write the task
//     link into the Chatra visitor's notes; save the conversation again only if what the
//     store keeps (name, email) changed meanwhile.
//   - Messages: each new visitor message becomes a task comment authored by the contact;
//     an agent's message written in the Chatra app a comment marked "Agent Julia in
//     Chatra: ..."; the bridge's own messages (ReceivedFromTag, or the id of a message it
//     sent) are skipped. Exactly once (by message id), in order (by the chat's time,
//     within a reorder window: a message is written once no new one has come for 2s, or
//     once the oldest waiting has waited 10s; at once when the chat closes). One
//     AddComments call is in flight at a time; what arrives meanwhile (Planfix allows one
//     request a second per account) is combined into the next call (at most 100
//     messages and 256 KiB), one comment per run of messages, each line with its time.
//   - Visitor info: a new name, email or phone is written onto the contact card before
//     the next message. A new email that belongs to another contact moves the chat to
//     that contact and, when it has an active task, into that task (one contact, one
//     active task: a customer on a phone and a computer keeps one thread); the task the
//     chat leaves gets a note and is completed. An email typed into a chat is a claim,
//     not a proof: such a chat receives the joined task's replies only when the store
//     knows its Chatra visitor to be the customer's ("Claims" below).
//   - Replies: the employee's comment is read, checked (allowed employee, not hidden, not
//     the bridge's own) and sent to the chat as the employee or as the integration's
//     Chatra user; a reply that cannot be sent leaves a note in the task saying why.
//     Replies are sent after the chat closed too (Chatra emails the customer).
//   - Chat closed: transcript messages never received are added, the task is completed,
//     the conversation stays closed for the late-reply window (default 72h), then ends.
//     A new chat start (visitor-info with started, or a new visitor message) in the
//     window begins a new episode: a new task, or the active one per the option. No
//     chat-closed within the idle timeout (default 24h) of the last activity closes the
//     conversation as if it had come.
//   - Cancel (temporal workflow cancel): a note in the task that the sync stopped and the
//     conversation marked cancelled in the store, on a disconnected context; the task is
//     left as it is.
//   - Waiting for an answer: a customer waits from the first visitor message that no
//     employee's answer follows (a reply sent to the chat, or an agent's message written
//     in Chatra) until the answer, or until the chat closes. The CustomerWaitingSince
//     search attribute holds when the wait began (unset while nobody waits), and the
//     state query and the current details show it. With the integration's
//     first-response target, a reminder note addressed to the task's assignees goes
//     into the task once the target has passed (in working time), then at each reminder
//     interval, up to the maximum; nothing once the customer is answered.
//   - Long life: continue-as-new when Temporal suggests it (or after
//     ConversationInput.ContinueAsNewAfterEvents events), at a moment no activity is in
//     flight, after taking in every signal already delivered, carrying the
//     de-duplication keys (bounded: MaxSeenKeys), the queued work and the lifecycle.
//
// # Where it lives
//
// Each behaviour above is one file away:
//
//   - state.go: the conversation's whole durable state (Carried, what continue-as-new
//     passes) and the episode's phases: waiting, setting-up, open, closing, closed,
//     ended, cancelled;
//   - conversation.go: the workflow function, the root coroutine, continue-as-new and
//     cancel;
//   - signals.go: signals in, de-duplication by key, the visitor's card merged;
//   - episode.go: the episode lifecycle: first event, contact and task, the store row,
//     close, late replies, end;
//   - comments.go: the comment lane: messages into the task in the chat's order, the
//     contact card updated, two devices joined into one thread;
//   - replies.go: the reply lane: employees' replies into the chat;
//   - waiting.go: the wait for an answer: its clock, the reminder lane, the
//     CustomerWaitingSince search attribute, the first-response metrics;
//   - publish.go: search attributes, current details and summaries for the Web UI;
//   - texts.go: the notes employees read in the task;
//   - calls.go: running activities, recording failures; options.go: their timeouts and
//     retries;
//   - versions.go: how a change of the workflow keeps running conversations replaying.
//
// # Payloads
//
// Every payload is a plain JSON object; the field names are the JSON keys of the types
// in contract.go. Times are RFC 3339. An admin can start or signal a conversation by
// hand:
//
//	temporal workflow start --task-queue chatrabridge --type ConversationWorkflow \
//	  --workflow-id chatra/shop/CHAT1 \
//	  --input '{"integrationId":"shop","chatId":"CHAT1","clientId":"V1"}'
//
//	temporal workflow signal --workflow-id chatra/shop/CHAT1 --name visitor-info \
//	  --input '{"key":"manual-start-1","clientId":"V1","started":true,"visitor":{"name":"Ivan","email":"ivan@example.com","city":"Riga","os":"macOS","browser":"Safari","ip":"203.0.113.5"}}'
//
//	temporal workflow signal --workflow-id chatra/shop/CHAT1 --name message \
//	  --input '{"key":"manual-msg-1","clientId":"V1","messages":[{"id":"M1","type":"client","text":"Hi, where is my order?","time":"2026-11-24T10:00:00Z"}]}'
//
//	temporal workflow signal --workflow-id chatra/shop/CHAT1 --name reply \
//	  --input '{"key":"planfix-comment:5012","commentId":5012,"taskId":100}'
//
//	temporal workflow signal --workflow-id chatra/shop/CHAT1 --name reply \
//	  --input '{"key":"manual-1","text":"We shipped it today.","authorName":"Anna","authorEmail":"anna@example.com"}'
//
//	temporal workflow signal --workflow-id chatra/shop/CHAT1 --name chat-closed \
//	  --input '{"key":"manual-close-1","clientId":"V1","transcript":[{"id":"M1","type":"client","text":"Hi, where is my order?","time":"2026-11-24T10:00:00Z"}]}'
//
//	temporal workflow query --workflow-id chatra/shop/CHAT1 --type state
//	temporal workflow cancel --workflow-id chatra/shop/CHAT1
//	temporal workflow list --query 'ChatraIntegration="shop" AND ConversationStatus="open"'
//
// Keys: a delivery's Key (the API uses the Chatra webhook's event key plus the signal
// name) makes a repeated delivery a no-op; message ids de-duplicate messages across
// deliveries and transcripts; a reply is de-duplicated by its Planfix comment id (the key
// "planfix-comment:<id>"), a hand-made one by its Key. An empty key is never a repeat.
//
// # Design notes
//
// Shape. The workflow is an unexported struct (conversation) whose state five coroutines
// share: receive (signals in; it only records), lifecycle (episodes: set up, close, late
// replies, end), the comment lane and the reply lane (the side effects of messages and
// replies), and the reminder lane (the first-response target). The root waits until the conversation finishes, is cancelled, or should
// continue as new. Signal handlers never block, so the "state" query and signals are
// answered while activities run; the lanes make ordering and coalescing simple (one
// AddComments in flight, the queue taken whole when it returns).
//
// Signals. The receive coroutine waits until a signal channel holds a value and then
// takes everything buffered, rather than blocking in a Selector: a blocked Selector takes
// a value sent to its channel into its own pending branch, where the root's drain before
// continue-as-new cannot see it; that signal would then be handled after the root had
// decided, by a coroutine whose work is not carried, and be lost to the next run (the
// end-to-end test caught it). Once the root decides to end or continue as new it sets
// stopping: no coroutine starts an activity or receives a signal any more (coroutines
// still run to the end of that workflow task), so nothing is scheduled that the next run
// would not know about. TestContinueAsNewCarriesSignalsAtTheSwitch keeps it so.
//
// Order. Chatra's webhook deliveries may repeat and arrive out of order, and a comment
// cannot be moved once it is in the task; sorting each AddComments batch alone left a
// fragment that came after a later message was written out of place (the chaos test
// with shuffled deliveries saw 22 of 200). So the comment lane holds what is queued for
// a reorder window and then writes it sorted by the chat's own time (createdAt): it
// writes once no new message has come for reorderQuiet (2s), or once the oldest queued
// message has waited reorderMaxWait (10s), whichever comes first. The quiet period
// follows the deliveries rather than a fixed delay per message: a lone message waits
// 2s, a burst is written as one batch once it ends, and a chat that never goes quiet is
// still written every 10s. The window is measured in workflow time from each message's
// arrival, not from its createdAt: Chatra's clock and the worker's need not agree, and
// an arrival time cannot be skewed. It is one timer at a time, not one per message:
// when it fires the deadline is computed again from the last message (so at most
// reorderMaxWait/reorderQuiet + 1 timers a batch, whatever the message rate). There is
// no window when the chat is closing (the transcript is the whole chat: nothing is left
// to reorder, and the task is completed without waiting) or when a new chat waits for
// the old task to have its last messages. While the lane waits it is not at work, so
// replies go meanwhile; continue-as-new does not wait for the window either (no
// activity is in flight): the messages are carried, and the next run starts their
// window again (at most one more window's delay, in a rare event, rather than carrying
// timestamps in the contract). A fragment later than the window still lands, out of
// place: the window bounds the delay, it cannot wait forever.
//
// Store. The conversation row (task -> chat, for the Planfix reply webhook) is saved as
// soon as the task is known, before the optional steps (the action on the contact, the
// task link in the visitor's notes, a few rate-limited calls). The setup saves again at
// its end only when the row would differ (a name or email that came meanwhile, or a
// first save that failed); joining another contact's task does the same.
//
// Held replies. Saving early narrows, but cannot close, the window between Planfix
// creating the task and the row existing: milliseconds normally, minutes while the
// worker or Temporal is down or restarting. A reply written then used to be answered
// 200 "ignored" and was lost, since Planfix never sends a request answered 200 again
// (the chaos test that restarts Temporal lost all three). So the webhook keeps such a
// reply in the store (held_replies) and answers 200 "held"; the save that first gives
// a conversation the task takes the task's held replies in its transaction and returns
// their comment ids (SaveConversationResult), and the workflow queues each as if its
// reply signal had come then (onReply: de-duplicated by comment id, the bridge's own
// comments skipped). A lock on the task serialises the webhook's check-and-hold with
// the save's save-and-take, so a reply is either held before the take or finds the
// row. The take marks the rows with the activity (run id and activity id) rather than
// deleting them: an attempt whose save committed but whose result was lost (a worker
// that died, Temporal down when it answered: the very outage that opens the window) is
// retried, and the retry gets the same replies; a later save gets none. Only saves of
// an open or closed conversation take: an ended or cancelled one would not send them.
// The store's janitor deletes held rows a week after they came, taken or not (untaken,
// they were comments in tasks that are not a chat's). Not covered: a held reply taken
// by a run that is then reset to before its first save (the new run's save gets none).
// Histories recorded before SaveConversation had a result replay unchanged: their nil
// result decodes into the zero SaveConversationResult.
//
// Latency. The path from a chatStarted webhook to the task is kept short: the settings
// are read by a local activity (no round trip through the task queue; its result is a
// marker in the history), and the search attributes the API sets at the start
// (integration, chat, client, status, and the customer's name and email when the webhook
// has them) are read back at the start of each run and not upserted again, so that no
// visibility write precedes EnsureContact and CreateTask. docs/BENCHMARKS.md, "task",
// has the measurements. Planfix's one request a second is the other half of it: every
// Planfix activity carries its chat's start (activities.ChatStart: when the current
// episode began, or the run started), and each activity its request class, so that on a
// busy account the rate limiter sets the oldest chat up first and serves messages,
// completion and the optional calls after (docs/BENCHMARKS.md, "priorities"). The chat's
// start is an input field, not a command: recorded histories replay unchanged.
//
// Episodes and queues. A visitor message that arrives after the chat closed (or while it
// is closing) belongs to the next chat: it waits in nextPending until the new episode's
// task exists, while the closing episode's own messages still go into the old task
// before it is completed. Transcript messages belong to the chat they close.
//
// Failures. Transient errors are retried by the activities' retry policies (Planfix and
// store outages indefinitely: nothing is dropped; a reply for a day, then the task gets
// a note). Permanent errors come back non-retryable with a stable type; the workflow
// records them (State.LastError, the current details), leaves a note in the task where
// an employee must act (a reply not sent), and goes on: one bad message does not stop
// the conversation. A setup that fails for good (a wrong template id) is retried with
// backoff or at the next chat event, so fixing the integration heals open chats; if the
// chat goes idle meanwhile, the workflow fails visibly, its history keeping every
// message, to be reset once the integration is fixed. One permanent failure heals at
// once: a task refused because Planfix no longer has the contact the store mapped the
// visitor to (activities.ErrContactGone; EnsureContact trusts the store without asking
// Planfix, to save a request; CreateTask then forgets the store's mappings to it) makes
// the setup set the contact up again and create the task at once, once per setup attempt.
//
// Idempotency. Planfix creates carry deterministic sourceObjectIds (chat + episode for a
// task, chat + first message id for a comment, the note's key for a note) and a retried
// activity attempt looks before it creates; effects Chatra or Planfix cannot find again
// (a Chatra message, an action on a contact) are recorded in the store right after they
// succeed. The remaining window is a crash between the remote success and that record:
// the effect then happens twice (a repeated chat message rather than a lost one).
//
// Two devices. A customer's email that turns out to belong to an existing contact
// during a chat joins that contact's active task. At the first event, an email that is
// already known joins the contact but only the "create a new task only if the contact
// has no active task" option joins its task: without it every new chat is a new task, as
// the option's name says.
//
// Claims. Anyone can type another customer's email, and replies used to go to the chat
// that wrote last: an impostor who typed a customer's email got the employee's next
// reply. So a conversation tells the store when its task is one it joined (TaskJoined,
// SaveConversationInput.JoinedTask, unless the integration trusts email claims), and the
// store lets such a chat receive the task's replies only when its Chatra client id is
// known to be the customer's (another chat of that client id in the task receives them,
// or the client id is mapped to the task's contact; EnsureContact never maps a visitor
// to a contact found by a claimed email). Otherwise (RepliesElsewhere) the task gets a
// note that the claim is not verified and replies stay with the chat that created it;
// and a contact found only by a claimed email (EnsureContactResult.Claimed) gets no
// card updates from that visitor, its task a note. The notes are new commands: behind
// patchClaimNote.
//
// Payloads. Temporal refuses a payload over 2 MiB by failing the workflow task, again at
// every attempt: the conversation would stop. The API bounds what comes in (texts cut at
// 5,000 characters, every field bounded, a signal over the limit refused); the workflow
// bounds what it sends: AddComments batches by bytes, an activity whose input is still
// too large is not started but fails for good (ErrPayloadTooLarge), and continue-as-new
// waits while what it would carry is over maxCarriedBytes (behind patchPayloadBounds).
// Waiting. The clock of a wait starts at the first unanswered message's time in the
// chat (Chatra's createdAt, but never later than when the message came: a clock ahead of
// the worker's must not shorten it), to the second: a customer writing while the bridge
// was down has waited from then. A visitor message written before the latest answer and
// delivered after it begins no wait; an answer ends the wait as a whole (a later
// message delivered before the answer is answered with it). Only what reached the
// customer answers: a reply that was sent (not a disallowed employee's, not one Chatra
// refused), an agent's message in Chatra (not the bridge's own, recognised as in Echo
// below); transcript messages do neither (the chat is closing, which ends the wait).
// The deadlines are computed in the workflow from the carried wait and the settings
// (chatrabridge.WorkingHours: pure, with the time zone database embedded in every
// binary), one timer at a time, computed again when it fires; continue-as-new carries
// the wait (Carried.Waiting), so the clock goes on across runs. A reminder waits for the
// messages queued for the task (it quotes one), is cancelled if the answer comes while
// it waits its turn at Planfix, and is sent in the lowest request class
// (planfix.ClassLow, carried to the rate limiter in the activity's context). The search
// attribute follows the wait from the moment the chat's task is known (nothing is
// written to visibility ahead of the task, see Latency); conversations recorded before
// the wait existed replay without its upserts, timers and reminders (patchCustomerWaiting).
// The first-response time (the wait, ended by an answer) and the reminders are counted
// by integration through the workflow's metrics handler (internal/metrics).
//
// Echo. The bridge's replies come back from Chatra in webhooks. They are recognised by
// their receivedFrom tag (the API drops them from fragments; transcripts keep them and
// the workflow skips them) and, since Chatra may ignore the tag on a message sent by
// agentId, by the message ids SendReply returns and by their content and agent
// (SendReplyResult.EchoKeys: an agent's message with the same text, as the same agent
// when known, is the bridge's). An echo that comes in before SendReply returns waits for
// the task like any message, and is dropped when the result names it (patchEchoByContent);
// only an echo written before that (SendReply returning later than the reorder window
// after Chatra took the message) would still reach the task. Likewise the comments the bridge writes in Planfix would trigger the Planfix
// scenario: their ids are kept, and a reply signal for one of them is ignored (the reply
// lane waits for a comment call in flight to return before it judges a reply).
package workflows
