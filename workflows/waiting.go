package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// The wait for an answer (doc.go, "Waiting"): when a customer's message has waited for
// an employee's answer, the CustomerWaitingSince search attribute, the reminders of
// the integration's first-response target, and the metrics of first-response times.

// Waiting is the customer's wait for an answer. It begins at the first visitor message
// that no employee's answer follows, and ends at the answer (a reply sent to the chat,
// or an agent's message written in Chatra) or when the chat closes. It is carried
// across continue-as-new, so the clock goes on where it stood.
type Waiting struct {
	// Since is when the first unanswered message was written (its time in the chat,
	// never later than when it came), to the second; zero when nobody waits.
	Since time.Time `json:"since,omitzero"`
	// Message is the first unanswered message, shortened, for the reminders to quote.
	Message string `json:"message,omitempty"`
	// Messages counts the unanswered visitor messages.
	Messages int `json:"messages,omitempty"`
	// Reminders counts the reminders of this wait; RemindedAt is when the last went.
	Reminders  int       `json:"reminders,omitempty"`
	RemindedAt time.Time `json:"remindedAt,omitzero"`
	// AnsweredAt is the time of the latest answer: a visitor message written before it
	// and delivered after it does not begin a wait.
	AnsweredAt time.Time `json:"answeredAt,omitzero"`
}

// The metrics of the wait, recorded through the workflow's metrics handler (nothing is
// recorded while a history replays); internal/metrics keeps them as an exact histogram
// and a counter, labelled with the integration.
const (
	metricFirstResponse = "chatrabridge_first_response_seconds"
	metricReminders     = "chatrabridge_first_response_reminders_total"
)

// maxQuote bounds the quote of the unanswered message in a reminder.
const maxQuote = 300

// noteChatMessage takes a new chat message into the wait: a visitor's begins one (or
// joins the one in course), an agent's written in Chatra answers it. The messages of a
// transcript do neither: the chat is closing, which ends any wait.
func (c *conversation) noteChatMessage(ctx workflow.Context, m Message, fromTranscript bool) {
	if fromTranscript {
		return
	}
	at := m.Time
	if now := workflow.Now(ctx); at.IsZero() || at.After(now) {
		at = now // a clock ahead of the worker's does not shorten the wait
	}
	if m.Type != MessageTypeClient {
		c.answered(ctx, at)
		return
	}
	w := &c.st.Waiting
	switch {
	case !w.AnsweredAt.IsZero() && !at.After(w.AnsweredAt):
		// Written before the latest answer, delivered after it.
	case !w.Since.IsZero():
		w.Messages++
	default:
		*w = Waiting{Since: at.Truncate(time.Second), Message: oneLine(m.Text, maxQuote), Messages: 1, AnsweredAt: w.AnsweredAt}
		c.waitSeq++
	}
}

// answered ends the wait at an employee's answer written at at, and records the time
// it took.
func (c *conversation) answered(ctx workflow.Context, at time.Time) {
	w := &c.st.Waiting
	if at.After(w.AnsweredAt) {
		w.AnsweredAt = at
	}
	if w.Since.IsZero() {
		return
	}
	c.observeFirstResponse(ctx, max(at.Sub(w.Since), 0))
	c.stopWaiting()
}

// stopWaiting ends the wait without an answer (the chat closed) or after one.
func (c *conversation) stopWaiting() {
	if c.st.Waiting.Since.IsZero() {
		return
	}
	c.st.Waiting = Waiting{AnsweredAt: c.st.Waiting.AnsweredAt}
	c.waitSeq++
}

// observeFirstResponse records how long a customer waited for an answer
// (chatrabridge_first_response_seconds{integration}).
func (c *conversation) observeFirstResponse(ctx workflow.Context, d time.Duration) {
	c.metrics(ctx).Timer(metricFirstResponse).Record(d)
}

// metrics is the workflow's metrics handler (replay-safe) tagged with the integration.
func (c *conversation) metrics(ctx workflow.Context) client.MetricsHandler {
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"integration": c.in.IntegrationID})
}

// nextReminder is when the next reminder of the wait is due, and false when none is
// (nobody waits, no target, or the reminders are capped).
func (c *conversation) nextReminder() (time.Time, bool) {
	w := c.st.Waiting
	if w.Since.IsZero() {
		return time.Time{}, false
	}
	return c.settings.FirstResponse.ReminderAt(w.Since, w.RemindedAt, w.Reminders)
}

// reminderLane reminds the task's assignees that the customer waits, once the
// first-response target has passed and again at each reminder interval, in working
// time. One timer per deadline: it is cut short when the wait ends or begins anew, and
// the deadline is computed again when it fires (the settings may have changed).
// Reminders go only while the chat is open (its task is known, the chat not closing),
// after the chat messages queued for the task.
func (c *conversation) reminderLane(ctx workflow.Context) {
	for {
		var due time.Time
		if err := c.await(ctx, func() bool {
			var ok bool
			due, ok = c.nextReminder()
			// The messages waiting for the task go first: the reminder quotes one.
			return ok && c.st.Phase == PhaseOpen && len(c.st.Pending) == 0 && !c.commenting
		}); err != nil {
			return
		}
		if !patched(ctx, patchCustomerWaiting) {
			return // recorded before reminders existed: this run sends none
		}
		if wait := due.Sub(workflow.Now(ctx)); wait > 0 {
			seq := c.waitSeq
			if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      wait,
				TimerOptions: workflow.TimerOptions{Summary: "first-response target: remind the task's assignees if the customer still waits"},
			}, func() bool { return c.waitSeq != seq || c.st.Phase != PhaseOpen }); err != nil {
				return
			}
			continue
		}
		c.remind(ctx)
	}
}

// remind adds the reminder note, addressed to the task's assignees, in the lowest
// request class. An answer while it waits for its turn at Planfix's rate limit cancels
// it. A reminder that fails for good is counted all the same (the next one is due an
// interval later), so that a refusal does not repeat at once.
func (c *conversation) remind(ctx workflow.Context) {
	w, fr := c.st.Waiting, c.settings.FirstResponse
	now := workflow.Now(ctx)
	n, of := w.Reminders+1, fr.Reminders()
	waited := now.Sub(w.Since)
	text := reminderNote(c.customer(), waited, fr.WorkingHours.Between(w.Since, now), fr.WorkingHours != nil,
		time.Duration(fr.Target), w.Message, w.Messages-1, n, of)
	key := fmt.Sprintf("reminder:%s:%s:%d:%d", c.in.ChatID, c.episodeKey(ctx), w.Since.Unix(), n)

	seq, done := c.waitSeq, false
	actx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	workflow.Go(ctx, func(g workflow.Context) {
		if workflow.Await(g, func() bool { return done || c.waitSeq != seq }) == nil && !done {
			cancel() // answered meanwhile: the reminder is no longer true
		}
	})
	var r activities.AddNoteResult
	err := c.call(actx, reminderOptions(fmt.Sprintf("reminder %d of %d: the customer has waited %s for an answer", n, of, humanDuration(waited))),
		a.AddNote, activities.AddNoteInput{ChatStart: c.chatStart(ctx), IntegrationID: c.in.IntegrationID, TaskID: c.st.State.TaskID, Key: key, Text: text,
			NotifyAssignees: true, Class: planfix.ClassLow}, &r)
	done = true
	switch {
	case err == nil:
		c.markOwnComment(r.CommentID) // the Planfix scenario may send it back as a reply
		if c.waitSeq != seq {
			return // answered meanwhile: the wait it counted for is over
		}
		c.metrics(ctx).Counter(metricReminders).Inc(1)
	case ctx.Err() != nil || c.stopping || c.waitSeq != seq:
		return // cancelled, continuing as new (the next run reminds), or answered meanwhile
	default:
		c.recordError(ctx, "remind the task's assignees that the customer waits", err)
	}
	c.st.Waiting.Reminders = n
	c.st.Waiting.RemindedAt = workflow.Now(ctx)
	c.publish(ctx)
}

// publishWaiting returns the upsert of CustomerWaitingSince the wait calls for, if any:
// the time the customer began to wait, unset when nobody does (also once the
// conversation is cancelled). While a chat waits for its task (a first chat set up, a
// new chat begun after the last one closed) it is left as it is, so that nothing is
// written to visibility ahead of the task (doc.go, "Latency").
func (c *conversation) publishWaiting(ctx workflow.Context) []temporal.SearchAttributeUpdate {
	if c.st.Phase == PhaseWaiting || c.st.Phase == PhaseSettingUp || c.st.NextChat.Begun {
		return nil
	}
	p, want := &c.published, c.st.Waiting.Since
	if want.Equal(p.waiting) || !patched(ctx, patchCustomerWaiting) {
		return nil
	}
	p.waiting = want
	if want.IsZero() {
		return []temporal.SearchAttributeUpdate{SAWaitingSince.ValueUnset()}
	}
	return []temporal.SearchAttributeUpdate{SAWaitingSince.ValueSet(want)}
}

// waitingDetails is the wait as the current details show it.
func (c *conversation) waitingDetails() string {
	w := c.st.Waiting
	if w.Since.IsZero() {
		return ""
	}
	s := fmt.Sprintf("Customer waiting for an answer since %s UTC (%d message(s))", w.Since.UTC().Format("2006-01-02 15:04:05"), w.Messages)
	if w.Reminders > 0 {
		s += fmt.Sprintf("; %d reminder(s) sent", w.Reminders)
	}
	if at, ok := c.nextReminder(); ok {
		s += "; next reminder at " + at.UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	return s
}

// humanDuration writes d as people read it: "45 s", "12 min", "3 h 5 min".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%d min", d/time.Minute)
	case d%time.Hour < time.Minute:
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return fmt.Sprintf("%d h %d min", d/time.Hour, d%time.Hour/time.Minute)
}
