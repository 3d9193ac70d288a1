package workflows

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chatrabridge/chatrabridge/activities"
)

// What hostile input must not do to a conversation: stall it, hijack its replies, or
// make it send Temporal a payload it refuses.

// A burst of long messages is written in calls of at most maxBatchBytes each (a call
// never carries what Temporal would refuse), every message once, in the chat's order.
func TestCommentBatchesBoundedByBytes(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("<", 5000) // JSON escapes each '<' as \u003c: 30 kB a message
	var msgs []Message
	for i := range 40 {
		msgs = append(msgs, msg(fmt.Sprintf("L%02d", i), long, start.Add(time.Duration(i)*time.Millisecond)))
	}
	f.message(time.Second, "burst-1", msgs[:20]...)
	f.message(time.Second, "burst-2", msgs[20:]...)
	f.message(time.Minute, "after", msg("A1", "still here?", start.Add(time.Minute)))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	calls := f.callsOf("AddComments")
	if len(calls) < 3 {
		t.Fatalf("AddComments calls = %d, want the burst split by size", len(calls))
	}
	var ids []string
	for _, c := range calls {
		in := c.In.(activities.AddCommentsInput)
		b, err := json.Marshal(in.Messages)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxBatchBytes+len(in.Messages) {
			t.Errorf("an AddComments call carries %d bytes of messages, over %d", len(b), maxBatchBytes)
		}
		for _, m := range in.Messages {
			ids = append(ids, m.ID)
		}
	}
	want := []string{}
	for _, m := range msgs {
		want = append(want, m.ID)
	}
	equalSlices(t, "messages written", ids, append(want, "A1"))
}

// An activity whose input is over what Temporal takes is not started: the failure is
// for good, recorded where operators see it, and the conversation goes on.
func TestOversizedInputFailsForGoodAndTheConversationGoesOn(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hello", start))
	// A hand-made signal (the API cuts texts long before this).
	f.message(time.Minute, "huge", msg("HUGE", strings.Repeat("x", 3<<20), start.Add(time.Minute)))
	f.message(2*time.Minute, "frag-3", msg("M3", "are you there?", start.Add(2*time.Minute)))
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:hello"}, {"M3:are you there?"}})
	equal(t, "messages failed", st.MessagesFailed, 1)
	contains(t, "last error", st.LastError, "bytes, over")
	equal(t, "tasks completed", f.count("CompleteTask"), 1)
}

// A visitor types the email of another customer, who has an active task: the chat
// joins that task, but the store does not let it receive the task's replies (another
// Chatra visitor), so the task gets a note saying so, and what the visitor tells about
// themselves afterwards is not written onto that customer's card.
func TestEmailClaimJoinsWithoutTakingReplies(t *testing.T) {
	f := newFixture(t)
	f.contact = func(in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		if in.ContactID == 0 {
			return activities.EnsureContactResult{ContactID: 7, How: activities.ContactCreated}, nil
		}
		if in.Visitor.Email == "victim@example.com" {
			return activities.EnsureContactResult{ContactID: 42, How: activities.ContactByEmail, Switched: true, Claimed: true}, nil
		}
		return activities.EnsureContactResult{ContactID: in.ContactID, How: activities.ContactKept}, nil
	}
	f.activeTask = func(in activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
		return activities.FindActiveTaskResult{TaskID: 555, Found: in.ContactID == 42}, nil
	}
	f.elsewhere = func(in activities.SaveConversationInput) bool { return in.JoinedTask }
	f.started(time.Second, "start-1", VisitorInfo{Name: "Visitor 1"})
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.signal(time.Minute, SignalVisitorInfo, VisitorInfoSignal{Key: "info-2", ClientID: testClient, Visitor: VisitorInfo{Name: "Victim", Email: "victim@example.com"}})
	f.message(2*time.Minute, "frag-2", msg("M2", "send me my order details", start.Add(2*time.Minute)))
	// Then a new name and phone: not the claimed customer's card to change.
	f.signal(3*time.Minute, SignalMessage, MessageSignal{Key: "frag-3", ClientID: testClient,
		Visitor: &VisitorInfo{Name: "Mallory", Email: "victim@example.com", Phone: "+1 555 0199"}, Messages: []Message{msg("M3", "and my address", start.Add(3*time.Minute))}})
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equal(t, "task", st.TaskID, 555)
	var joined []activities.SaveConversationInput
	for _, s := range f.saved() {
		if s.TaskID == 555 {
			joined = append(joined, s)
		}
	}
	if len(joined) == 0 || !joined[0].JoinedTask {
		t.Fatalf("saves of the joined task = %+v, want JoinedTask", joined)
	}
	notes := f.notes()
	if len(notes) != 2 || notes[1].TaskID != 555 {
		t.Fatalf("notes = %+v, want one on the old task and one on the joined one", notes)
	}
	contains(t, "note on the joined task", notes[1].Text, "is not a proof")
	contains(t, "note on the joined task", notes[1].Text, "victim@example.com")
	equal(t, "UpdateContact calls", f.count("UpdateContact"), 0)
	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi"}, {"M2:send me my order details"}, {"M3:and my address"}})
}

// With trustEmailClaims the claim is taken as proof, as before: the store is told the
// chat created nothing it joined (so it receives the task's replies).
func TestTrustedEmailClaim(t *testing.T) {
	f := newFixture(t)
	f.settings.TrustEmailClaims = true
	f.contact = func(in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		if in.ContactID == 0 {
			return activities.EnsureContactResult{ContactID: 7, How: activities.ContactCreated}, nil
		}
		return activities.EnsureContactResult{ContactID: 42, How: activities.ContactByEmail, Switched: true}, nil
	}
	f.activeTask = func(in activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
		return activities.FindActiveTaskResult{TaskID: 555, Found: true}, nil
	}
	f.elsewhere = func(in activities.SaveConversationInput) bool { return in.JoinedTask }
	f.started(time.Second, "start-1", VisitorInfo{Name: "Visitor 1"})
	f.signal(time.Minute, SignalVisitorInfo, VisitorInfoSignal{Key: "info-2", ClientID: testClient, Visitor: VisitorInfo{Name: "Ivan", Email: "ivan@example.com"}})
	f.message(2*time.Minute, "frag-2", msg("M2", "it's Ivan", start.Add(2*time.Minute)))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()
	for _, s := range f.saved() {
		if s.JoinedTask {
			t.Fatalf("a save says JoinedTask although the integration trusts email claims: %+v", s)
		}
	}
	notes := f.notes()
	if len(notes) != 2 || strings.Contains(notes[1].Text, "not a proof") {
		t.Fatalf("notes = %+v, want the plain joined note", notes)
	}
}

// With "new task only if no active task", a first chat whose email names a contact
// with an active task joins it; unverified, the task gets a note that this chat does
// not receive its replies.
func TestFirstEventClaimLeavesANote(t *testing.T) {
	f := newFixture(t)
	f.settings.NewTaskOnlyIfNoActiveTask = true
	f.contact = func(in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		return activities.EnsureContactResult{ContactID: 42, How: activities.ContactByEmail, Claimed: true}, nil
	}
	f.activeTask = func(in activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
		return activities.FindActiveTaskResult{TaskID: 555, Found: true}, nil
	}
	f.elsewhere = func(in activities.SaveConversationInput) bool { return in.JoinedTask }
	f.started(time.Second, "start-1", VisitorInfo{Name: "Mallory", Email: "victim@example.com"})
	f.message(2*time.Second, "frag-1", msg("M1", "my order?", start.Add(2*time.Second)))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equal(t, "CreateTask calls", f.count("CreateTask"), 0)
	if s := f.saved(); len(s) == 0 || !s[0].JoinedTask || s[0].TaskID != 555 {
		t.Fatalf("first save = %+v, want task 555 joined", s)
	}
	notes := f.notes()
	if len(notes) != 1 || notes[0].TaskID != 555 {
		t.Fatalf("notes = %+v, want one on task 555", notes)
	}
	contains(t, "note", notes[0].Text, "is not a proof")
	if i, j := f.index("AddNote", 0), f.index("AddContactAction", 0); i < 0 || j < 0 || i > j {
		t.Errorf("the note comes at %d, the action at %d: want the note right after the save (%q)", i, j, f.names())
	}
}

// A first chat whose email names an existing contact gets a task of its own for that
// contact (without "new task only if no active task"); the email is not verified, so
// the task says so, and the visitor's later name and phone do not rewrite the card.
func TestClaimedContactNotedInItsOwnTask(t *testing.T) {
	f := newFixture(t)
	f.contact = func(in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		return activities.EnsureContactResult{ContactID: 42, How: activities.ContactByEmail, Claimed: true}, nil
	}
	f.started(time.Second, "start-1", VisitorInfo{Name: "Mallory", Email: "victim@example.com"})
	f.message(2*time.Second, "frag-1", msg("M1", "my order?", start.Add(2*time.Second)))
	f.signal(time.Minute, SignalMessage, MessageSignal{Key: "frag-2", ClientID: testClient,
		Visitor: &VisitorInfo{Name: "Someone Else", Phone: "+1 555 0199"}, Messages: []Message{msg("M2", "hello?", start.Add(time.Minute))}})
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equal(t, "CreateTask calls", f.count("CreateTask"), 1)
	notes := f.notes()
	if len(notes) != 1 || notes[0].TaskID != 100 {
		t.Fatalf("notes = %+v, want one on the chat's task", notes)
	}
	contains(t, "note", notes[0].Text, "victim@example.com")
	contains(t, "note", notes[0].Text, "not a proof")
	equal(t, "UpdateContact calls", f.count("UpdateContact"), 0)
	equalBatches(t, f.commentBatches(), [][]string{{"M1:my order?"}, {"M2:hello?"}})
}

// A name that is Markdown shows as typed in the Web UI: no link, no image, no heading.
func TestDetailsEscapeMarkdown(t *testing.T) {
	c := &conversation{st: Carried{State: State{Status: StatusOpen, CustomerName: "# [Pay here](https://evil.example) ![x](y) *bold*",
		CustomerEmail: "a_b@example.com", LastError: "comment: <script>"}}}
	d := c.details()
	for _, bad := range []string{"[Pay here](", "![x](", "\n\n# ", "*bold*", "<script>", "a_b"} {
		if strings.Contains(d, bad) {
			t.Errorf("details %q contain markup %q", d, bad)
		}
	}
	contains(t, "details", d, `\[Pay here\](https://evil.example)`)
	contains(t, "details", d, `a\_b@example.com`)
	equal(t, "escape of a plain name", EscapeMarkdown("Ivan Petrov (VIP)"), "Ivan Petrov (VIP)")
}

// Summaries stay within Temporal's 200 bytes once escaped, whole characters, no escape
// cut from what it escapes.
func TestCutSummary(t *testing.T) {
	for _, in := range []string{strings.Repeat("я", 150), strings.Repeat("<", 150), strings.Repeat("😀", 100), "short"} {
		out := CutSummary(EscapeMarkdown(oneLine(in, 100)))
		if len(out) > MaxSummaryBytes || !utf8.ValidString(out) {
			t.Errorf("%.20q... gives %d bytes, valid UTF-8 %v", in, len(out), utf8.ValidString(out))
		}
		if trimmed := strings.TrimSuffix(out, "…"); (len(trimmed)-len(strings.TrimRight(trimmed, `\`)))%2 == 1 {
			t.Errorf("%.20q... ends in a lone backslash: %q", in, out)
		}
	}
	equal(t, "a short summary", CutSummary("short"), "short")
}
