package workflows

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// The tests of the wait for an answer. The workflow starts on Tuesday 2026-11-24 at
// 10:00 UTC (12:00 in Riga).

// target sets a first-response target of d, reminders every interval (0: one), at
// most max (0: the default).
func (f *fixture) target(d, interval time.Duration, max int, hours *chatrabridge.WorkingHours) {
	f.settings.FirstResponse = chatrabridge.FirstResponse{Target: chatrabridge.Duration(d),
		ReminderInterval: chatrabridge.Duration(interval), MaxReminders: max, WorkingHours: hours}
}

// reminders lists the reminder notes and when each was added.
func (f *fixture) reminders() ([]activities.AddNoteInput, []time.Time) {
	var notes []activities.AddNoteInput
	var at []time.Time
	for _, c := range f.callsOf("AddNote") {
		if n := c.In.(activities.AddNoteInput); strings.HasPrefix(n.Key, "reminder:") {
			notes, at = append(notes, n), append(at, c.At)
		}
	}
	return notes, at
}

// waitingUpserts records the values CustomerWaitingSince is upserted with: the time,
// or "unset". The test environment hands the mock no unset value, so an upsert that
// holds no value at all stands for the unset (the workflow unsets no other attribute).
func (f *fixture) waitingUpserts() *[]string {
	var out []string
	f.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		values := args.Get(0).(temporal.SearchAttributes).GetUntypedValues()
		if len(values) == 0 {
			out = append(out, "unset")
		}
		for k, v := range values {
			if t, ok := v.(time.Time); ok && k.GetName() == SAWaitingSince.GetName() {
				out = append(out, t.UTC().Format(time.RFC3339))
			}
		}
	}).Return(nil)
	return &out
}

func riga(from, to string) *chatrabridge.WorkingHours {
	return &chatrabridge.WorkingHours{TimeZone: "Europe/Riga", Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: from, To: to}
}

// The target passes in working hours: one reminder, addressed to the task's
// assignees, in the lowest request class, saying how long the customer has waited and
// quoting the message; the search attribute holds the wait's start until the chat
// closes. The reminder's own comment, come back from the Planfix scenario, is no reply.
func TestReminderWhenTargetPasses(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 0, 0, riga("09:00", "18:00"))
	upserts := f.waitingUpserts()
	f.started(time.Second, "start-1", ivan)
	f.message(2*time.Second, "frag-1", msg("M1", "Hi, where is my order?", start.Add(2*time.Second)))
	f.message(time.Minute, "frag-2", msg("M2", "Hello?", start.Add(time.Minute)))
	before := f.queryAt(2 * time.Minute)
	after := f.queryAt(10 * time.Minute)
	f.at(11*time.Minute, func() { // the Planfix scenario sends the reminder's comment (the last one added)
		f.mu.Lock()
		id := f.nextCommentID
		f.mu.Unlock()
		f.env.SignalWorkflow(SignalReply, ReplySignal{Key: "planfix-comment:own", CommentID: id, TaskID: 100})
	})
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	notes, at := f.reminders()
	if len(notes) != 1 {
		t.Fatalf("reminders = %+v, want 1", notes)
	}
	n := notes[0]
	equalTime(t, "reminded at", at[0], start.Add(5*time.Minute+2*time.Second))
	equal(t, "task", n.TaskID, 100)
	equal(t, "notifies the assignees", n.NotifyAssignees, true)
	equal(t, "class", n.Class, planfix.ClassLow)
	for _, want := range []string{"Reminder 1 of 1", "Ivan has been waiting for an answer for 5 min", "(5 min of it in working hours)",
		"the first-response target is 5 min", "\u201cHi, where is my order?\u201d, and 1 more since"} {
		contains(t, "reminder", n.Text, want)
	}
	equal(t, "replies sent (the reminder's comment is the bridge's own)", f.count("SendReply"), 0)

	equalTime(t, "state: waiting since", before.WaitingSince, start.Add(2*time.Second))
	equal(t, "state: unanswered", before.UnansweredMessages, 2)
	equalTime(t, "state: next reminder", before.NextReminderAt, start.Add(5*time.Minute+2*time.Second))
	equal(t, "state after: reminders", after.RemindersSent, 1)
	equal(t, "state after: no next reminder (one at most)", after.NextReminderAt.IsZero(), true)
	equalSlices(t, "CustomerWaitingSince upserts", *upserts, []string{"2026-11-24T10:00:02Z", "unset"})
}

// Outside working hours the clock stops: a message at 12:00 in Riga with working
// hours until 12:03 is reminded of the next working morning, at 09:02.
func TestReminderOutsideWorkingHours(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 0, 0, riga("09:00", "12:03"))
	f.message(time.Second, "frag-1", msg("M1", "Anyone?", start.Add(time.Second)))
	f.runDefault() // the chat goes idle and closes after a day, then ends
	f.requireEnded()

	notes, at := f.reminders()
	if len(notes) != 1 {
		t.Fatalf("reminders = %+v, want 1", notes)
	}
	equalTime(t, "reminded at", at[0], time.Date(2026, 11, 25, 7, 2, 1, 0, time.UTC)) // 09:02:01 in Riga
	contains(t, "reminder", notes[0].Text, "waiting for an answer for 21 h 2 min (5 min of it in working hours)")
}

// An answer before the target: no reminder, and the time it took is observed in the
// first-response histogram of the integration (the project's metrics registry, as
// /metrics serves it).
func TestReplyBeforeTargetNoReminder(t *testing.T) {
	reg := metrics.New(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = reg.Close() })
	f := newFixtureWithMetrics(t, reg.Temporal)
	f.target(5*time.Minute, time.Minute, 3, nil)
	upserts := f.waitingUpserts()
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.replyComment(3*time.Minute, 8001)
	st := f.queryAt(4 * time.Minute)
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	if notes, _ := f.reminders(); len(notes) != 0 {
		t.Errorf("reminders = %+v, want none", notes)
	}
	equal(t, "state: waiting", st.WaitingSince.IsZero(), true)
	equalSlices(t, "CustomerWaitingSince upserts", *upserts, []string{"2026-11-24T10:00:02Z", "unset"})

	h := histogram(t, reg, "chatrabridge_first_response_seconds", testIntegration)
	if h.GetSampleCount() != 1 || h.GetSampleSum() != (3*time.Minute-2*time.Second).Seconds() {
		t.Errorf("first-response histogram: %d sample(s), sum %v; want one of 178 s", h.GetSampleCount(), h.GetSampleSum())
	}
}

// histogram returns the histogram name of the integration in the registry.
func histogram(t *testing.T, reg *metrics.Registry, name, integration string) *dto.Histogram {
	t.Helper()
	return metric(t, reg, name, integration).GetHistogram()
}

// metric returns the metric name of the integration in the registry.
func metric(t *testing.T, reg *metrics.Registry, name, integration string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "integration" && l.GetValue() == integration {
					return m
				}
			}
		}
	}
	t.Fatalf("no %s{integration=%q} in the registry", name, integration)
	return nil
}

// An answer between reminders: the first went, no more after the answer.
func TestReplyBetweenRemindersStopsThem(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 10*time.Minute, 3, nil)
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.replyComment(12*time.Minute, 8001)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	notes, at := f.reminders()
	if len(notes) != 1 {
		t.Fatalf("reminders = %+v, want 1 (the answer came before the second)", notes)
	}
	equalTime(t, "reminded at", at[0], start.Add(5*time.Minute+2*time.Second))
	contains(t, "reminder", notes[0].Text, "Reminder 1 of 3")
}

// A reply Planfix does not send (an employee not allowed on the channel) answers
// nobody: the reminder still goes.
func TestRefusedReplyDoesNotAnswer(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 0, 0, nil)
	f.reply = func(activities.SendReplyInput) (activities.SendReplyResult, error) {
		return activities.SendReplyResult{Outcome: activities.ReplyRefused, Reason: "Boris is not allowed on this channel"}, nil
	}
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.replyComment(time.Minute, 8001)
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()
	if notes, _ := f.reminders(); len(notes) != 1 {
		t.Errorf("reminders = %+v, want 1", notes)
	}
}

// An agent who answers in the Chatra app answers the customer; the bridge's own
// message come back from Chatra does not.
func TestAgentAnswerInChatra(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 0, 0, nil)
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	own := agentMsg("OWN1", "Shop", "an earlier reply", start.Add(30*time.Second))
	own.ReceivedFrom = ReceivedFromTag
	f.message(30*time.Second, "frag-own", own)
	mid := f.queryAt(45 * time.Second)
	f.message(time.Minute, "frag-2", agentMsg("A1", "Julia", "Hello! Let me check.", start.Add(time.Minute)))
	// A visitor message written before the agent's answer, delivered after it: answered.
	f.message(2*time.Minute, "frag-3", msg("M2", "it's order 1042", start.Add(50*time.Second)))
	end := f.queryAt(3 * time.Minute)
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	if notes, _ := f.reminders(); len(notes) != 0 {
		t.Errorf("reminders = %+v, want none", notes)
	}
	equalTime(t, "waiting after the bridge's own message", mid.WaitingSince, start.Add(2*time.Second))
	equal(t, "waiting after the agent's answer", end.WaitingSince.IsZero(), true)
}

// The chat closing while the customer waits ends the wait: no reminder, the search
// attribute unset; a visitor message found only in the transcript begins none.
func TestChatClosingWhileWaiting(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 0, 0, nil)
	upserts := f.waitingUpserts()
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.closed(time.Minute, "close-1", msg("M1", "hi", start.Add(2*time.Second)), msg("M2", "bye", start.Add(50*time.Second)))
	st := f.queryAt(2 * time.Minute)
	f.runDefault()
	f.requireEnded()

	if notes, _ := f.reminders(); len(notes) != 0 {
		t.Errorf("reminders = %+v, want none", notes)
	}
	equal(t, "waiting after the close", st.WaitingSince.IsZero(), true)
	equal(t, "transcript message added", st.TranscriptAdded, 1)
	equalSlices(t, "CustomerWaitingSince upserts", *upserts, []string{"2026-11-24T10:00:02Z", "unset"})
}

// Reminders are capped: two at most, an interval apart, none after; the reminders'
// counter of the integration says 2.
func TestRemindersCapped(t *testing.T) {
	reg := metrics.New(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = reg.Close() })
	f := newFixtureWithMetrics(t, reg.Temporal)
	f.target(5*time.Minute, 10*time.Minute, 2, nil)
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	notes, at := f.reminders()
	if len(notes) != 2 {
		t.Fatalf("reminders = %+v, want 2", notes)
	}
	equalTime(t, "first", at[0], start.Add(5*time.Minute+2*time.Second))
	equalTime(t, "second", at[1], start.Add(15*time.Minute+2*time.Second))
	contains(t, "first", notes[0].Text, "Reminder 1 of 2")
	contains(t, "second", notes[1].Text, "Reminder 2 of 2: visitor V1 has been waiting for an answer for 15 min;")
	if notes[0].Key == notes[1].Key {
		t.Errorf("two reminders share the key %q", notes[0].Key)
	}
	if got := metric(t, reg, "chatrabridge_first_response_reminders_total", testIntegration).GetCounter().GetValue(); got != 2 {
		t.Errorf("reminders counter = %v, want 2", got)
	}
}

// An answer while the reminder waits for its turn at Planfix cancels it: it is not
// counted, and nothing follows.
func TestAnswerCancelsAReminderInFlight(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 10*time.Minute, 3, nil)
	f.noteDelay = time.Minute
	var cancelled []string
	f.env.SetOnActivityCanceledListener(func(info *activity.Info) { cancelled = append(cancelled, info.ActivityType.Name) })
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.replyComment(5*time.Minute+30*time.Second, 8001)
	st := f.queryAt(10 * time.Minute)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equalSlices(t, "activities cancelled", cancelled, []string{"AddNote"})
	equal(t, "reminders counted", st.RemindersSent, 0)
	equal(t, "waiting", st.WaitingSince.IsZero(), true)
	equal(t, "last error", st.LastError, "")
	if notes, _ := f.reminders(); len(notes) > 1 {
		t.Errorf("reminders = %+v, want at most the one cancelled", notes)
	}
}

// Continue-as-new while the customer waits carries the wait: the next run reminds at
// the deadline the first run would have.
func TestContinueAsNewWhileWaiting(t *testing.T) {
	f := newFixture(t)
	f.target(5*time.Minute, 0, 0, nil)
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.at(time.Minute, func() { f.env.SetContinueAsNewSuggested(true) })
	f.runDefault()

	var can *workflow.ContinueAsNewError
	if err := f.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	var next ConversationInput
	if err := decodeContinueAsNewInput(can, &next); err != nil {
		t.Fatal(err)
	}
	w := next.Carried.Waiting
	equalTime(t, "carried: waiting since", w.Since, start.Add(2*time.Second))
	equal(t, "carried: message", w.Message, "hi")
	if notes, _ := f.reminders(); len(notes) != 0 {
		t.Fatalf("the first run reminded: %+v", notes)
	}

	g := newFixture(t)
	g.target(5*time.Minute, 0, 0, nil)
	g.env.SetStartTime(start.Add(time.Minute))
	g.closed(time.Hour, "close-1")
	g.run(next)
	g.requireEnded()
	notes, at := g.reminders()
	if len(notes) != 1 {
		t.Fatalf("reminders of the next run = %+v, want 1", notes)
	}
	equalTime(t, "reminded at", at[0], start.Add(5*time.Minute+2*time.Second))
	equal(t, "same key as the first run's would be", strings.HasPrefix(notes[0].Key, "reminder:"+testChat+":"), true)
}

// Without a target the wait is still known (state, search attribute), and nobody is
// reminded.
func TestNoTargetNoReminder(t *testing.T) {
	f := newFixture(t)
	upserts := f.waitingUpserts()
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()
	if notes, _ := f.reminders(); len(notes) != 0 {
		t.Errorf("reminders = %+v", notes)
	}
	equalTime(t, "waiting since", st.WaitingSince, start.Add(2*time.Second))
	equal(t, "next reminder", st.NextReminderAt.IsZero(), true)
	equalSlices(t, "CustomerWaitingSince upserts", *upserts, []string{"2026-11-24T10:00:02Z", "unset"})
}

func TestReminderNoteAndDetails(t *testing.T) {
	text := reminderNote("Ivan", 75*time.Minute, 0, false, 5*time.Minute, "where is it?", 0, 2, 3)
	equal(t, "note", text, "Reminder 2 of 3: Ivan has been waiting for an answer for 1 h 15 min; the first-response target is 5 min. The message: \u201cwhere is it?\u201d.")
	for d, want := range map[time.Duration]string{45 * time.Second: "45 s", 12 * time.Minute: "12 min", 3 * time.Hour: "3 h", 26*time.Hour + 5*time.Minute: "26 h 5 min"} {
		equal(t, "humanDuration", humanDuration(d), want)
	}
	c := &conversation{st: Carried{State: State{Status: StatusOpen}, Waiting: Waiting{Since: start, Messages: 2, Reminders: 1, RemindedAt: start.Add(5 * time.Minute)}}}
	c.settings.FirstResponse = chatrabridge.FirstResponse{Target: chatrabridge.Duration(5 * time.Minute), ReminderInterval: chatrabridge.Duration(10 * time.Minute)}
	contains(t, "details", c.details(), "Customer waiting for an answer since 2026-11-24 10:00:00 UTC (2 message(s)); 1 reminder(s) sent; next reminder at 2026-11-24 10:15:00 UTC")
}
