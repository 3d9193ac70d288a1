package workflows

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

var ivan = VisitorInfo{Name: "Ivan", Email: "ivan@example.com", City: "Riga", Country: "Latvia",
	Pages: []string{"https://shop.example/cart"}, Source: "google", Device: "desktop", OS: "macOS", Browser: "Safari", IP: "203.0.113.5"}

// The first event finds or creates the contact, creates the task, saves the conversation
// (a reply in the task finds it from then on), adds the action to the contact and writes
// the task link into the visitor's notes; then the message becomes a comment, the close
// completes the task, and after the late-reply window the conversation ends.
func TestFirstEventCreatesContactTaskActionAndNotes(t *testing.T) {
	f := newFixture(t)
	f.started(time.Second, "start-1", ivan)
	f.message(2*time.Second, "frag-1", msg("M1", "Hi, where is my order?", start.Add(2*time.Second)))
	mid := f.queryAt(time.Minute)
	f.closed(time.Hour, "close-1", msg("M1", "Hi, where is my order?", start.Add(2*time.Second)))
	f.runDefault()
	f.requireEnded()

	equalSlices(t, "calls", f.names(), []string{
		"EnsureContact", "CreateTask", "SaveConversation", "AddContactAction", "WriteVisitorNotes",
		"AddComments", "CompleteTask", "SaveConversation", "SaveConversation",
	})
	ec := f.callsOf("EnsureContact")[0].In.(activities.EnsureContactInput)
	equal(t, "EnsureContact.ClientID", ec.ClientID, testClient)
	equal(t, "EnsureContact.Visitor.Email", ec.Visitor.Email, "ivan@example.com")
	equal(t, "EnsureContact.ContactID", ec.ContactID, 0)
	ct := f.callsOf("CreateTask")[0].In.(activities.CreateTaskInput)
	equal(t, "CreateTask.Episode", ct.Episode, 1)
	equal(t, "CreateTask.ContactID", ct.ContactID, 7)
	equal(t, "CreateTask.Visitor.City", ct.Visitor.City, "Riga")
	equal(t, "CreateTask.Visitor.Browser", ct.Visitor.Browser, "Safari")
	act := f.callsOf("AddContactAction")[0].In.(activities.AddContactActionInput)
	equal(t, "AddContactAction.IP", act.Visitor.IP, "203.0.113.5")
	equal(t, "AddContactAction.TaskID", act.TaskID, 100)
	notes := f.callsOf("WriteVisitorNotes")[0].In.(activities.WriteVisitorNotesInput)
	equal(t, "WriteVisitorNotes.TaskURL", notes.TaskURL, testAccount+"/task/100")
	equal(t, "WriteVisitorNotes.ClientID", notes.ClientID, testClient)
	saved := f.saved()
	equal(t, "saved[0]", saved[0], activities.SaveConversationInput{IntegrationID: testIntegration, ChatID: testChat,
		WorkflowID: saved[0].WorkflowID, ClientID: testClient, TaskID: 100, ContactID: 7, CustomerName: "Ivan",
		CustomerEmail: "ivan@example.com", Status: StatusOpen})
	equal(t, "saved[1].Status", saved[1].Status, StatusClosed)
	equal(t, "saved[2].Status", saved[2].Status, StatusEnded)
	equalBatches(t, f.commentBatches(), [][]string{{"M1:Hi, where is my order?"}})
	cm := f.callsOf("AddComments")[0].In.(activities.AddCommentsInput)
	equal(t, "AddComments.TaskID", cm.TaskID, 100)
	equal(t, "AddComments.ContactID", cm.ContactID, 7)
	equal(t, "CompleteTask.TaskID", f.callsOf("CompleteTask")[0].In.(activities.CompleteTaskInput).TaskID, 100)

	equal(t, "state at 1m: status", mid.Status, StatusOpen)
	equal(t, "state at 1m: task", mid.TaskID, 100)
	equal(t, "state at 1m: task URL", mid.TaskURL, testAccount+"/task/100")
	equal(t, "state at 1m: contact", mid.ContactID, 7)
	equal(t, "state at 1m: messages added", mid.MessagesAdded, 1)
	equal(t, "state at 1m: customer", mid.CustomerEmail, "ivan@example.com")
	// The transcript repeated M1: nothing added twice.
	equal(t, "AddComments calls", f.count("AddComments"), 1)
	// It ended after the late-reply window.
	end := f.saved()[2]
	_ = end
	if last := f.callsOf("SaveConversation")[2].At; last.Before(start.Add(time.Hour + 72*time.Hour)) {
		t.Errorf("ended at %v, before the late-reply window closed", last)
	}
}

// A repeated delivery (same key), the same message in another delivery, and messages
// that arrive out of order all land once, in time order.
func TestDuplicateAndOutOfOrderSignals(t *testing.T) {
	f := newFixture(t)
	f.commentDelay = func(n int) time.Duration {
		if n == 0 {
			return 10 * time.Second // the next messages queue meanwhile
		}
		return 0
	}
	t0 := start.Add(time.Second)
	f.message(time.Second, "frag-1", msg("M1", "one", t0))
	f.message(2*time.Second, "frag-1", msg("M1", "one", t0))                              // repeated delivery
	f.message(3500*time.Millisecond, "frag-3", msg("M3", "three", t0.Add(3*time.Second))) // arrives before M2, after M1 is written
	f.message(4*time.Second, "frag-2", msg("M2", "two", t0.Add(2*time.Second)))           // out of order
	f.message(5*time.Second, "frag-2b", msg("M2", "two again?", t0.Add(2*time.Second)))   // same id, other delivery
	f.closed(time.Minute, "close-1")
	f.closed(2*time.Minute, "close-1") // repeated
	st := f.queryAt(time.Hour)
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:one"}, {"M2:two", "M3:three"}})
	equal(t, "CompleteTask calls", f.count("CompleteTask"), 1)
	equal(t, "CreateTask calls", f.count("CreateTask"), 1)
	equal(t, "messages received", st.MessagesReceived, 3)
	equal(t, "messages added", st.MessagesAdded, 3)
}

// A fragment that arrives before its chatStarted starts the conversation; the start that
// follows only adds the visitor details (no second contact, task or episode).
func TestFragmentBeforeStart(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hello?", start.Add(time.Second)))
	f.started(2*time.Second, "start-1", ivan)
	f.message(time.Minute, "frag-2", msg("M2", "anyone?", start.Add(time.Minute)))
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	// The second lookup is for the email the start brought (it may name another contact).
	ecs := f.callsOf("EnsureContact")
	if len(ecs) != 2 || ecs[1].In.(activities.EnsureContactInput).ContactID != 7 {
		t.Fatalf("EnsureContact calls = %+v, want the first one and a lookup by the new email", ecs)
	}
	equal(t, "CreateTask calls", f.count("CreateTask"), 1)
	equal(t, "episode", st.Episode, 1)
	equal(t, "status at 1h", st.Status, StatusOpen)
	equalBatches(t, f.commentBatches(), [][]string{{"M1:hello?"}, {"M2:anyone?"}})
	// The visitor introduced themselves after the contact existed: the card is updated
	// before the next message's comment.
	ups := f.callsOf("UpdateContact")
	if len(ups) != 1 {
		t.Fatalf("UpdateContact calls = %d, want 1", len(ups))
	}
	equal(t, "UpdateContact", ups[0].In.(activities.UpdateContactInput), activities.UpdateContactInput{
		IntegrationID: testIntegration, ContactID: 7, Name: "Ivan", Email: "ivan@example.com",
		ChatStart: activities.ChatStart{ChatStartedAt: start.Add(time.Second)}}) // the chat's first event
}

// The visitor introduces themselves: the contact card is updated before the comment of
// their next message.
func TestIntroductionUpdatesContactWithNextMessage(t *testing.T) {
	f := newFixture(t)
	f.started(time.Second, "start-1", VisitorInfo{Name: "Visitor 4521", OS: "Windows"})
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start.Add(2*time.Second)))
	f.signal(time.Minute, SignalMessage, MessageSignal{Key: "frag-2", ClientID: testClient,
		Visitor:  &VisitorInfo{Name: "Olga Petrova", Email: "olga@example.com", Phone: "+371 2000 0000"},
		Messages: []Message{msg("M2", "I'm Olga", start.Add(time.Minute))}})
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	i := f.index("UpdateContact", 0)
	j := f.index("AddComments", 1)
	if i < 0 || j < 0 || i > j {
		t.Fatalf("UpdateContact at %d, second AddComments at %d: want the update first (calls %q)", i, j, f.names())
	}
	equal(t, "UpdateContact", f.callsOf("UpdateContact")[0].In.(activities.UpdateContactInput), activities.UpdateContactInput{
		IntegrationID: testIntegration, ContactID: 7, Name: "Olga Petrova", Email: "olga@example.com", Phone: "+371 2000 0000",
		ChatStart: activities.ChatStart{ChatStartedAt: start.Add(time.Second)}})
	// The email was new: the contact was looked up by it first (and stayed the same).
	ecs := f.callsOf("EnsureContact")
	equal(t, "EnsureContact calls", len(ecs), 2)
	equal(t, "second EnsureContact.ContactID", ecs[1].In.(activities.EnsureContactInput).ContactID, 7)
}

// A customer on a second device: the chat starts anonymous (its own contact and task),
// then the visitor gives an email that belongs to an existing contact with an active
// task. The chat joins that contact and task: the old task gets a note and is completed,
// the joined one a note, the next messages go there, and the store points there.
func TestTwoDevicesJoinOneThread(t *testing.T) {
	f := newFixture(t)
	f.contact = func(in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		if in.ContactID == 0 {
			return activities.EnsureContactResult{ContactID: 7, How: activities.ContactCreated}, nil
		}
		if in.Visitor.Email == "ivan@example.com" {
			return activities.EnsureContactResult{ContactID: 42, How: activities.ContactByEmail, Switched: true}, nil
		}
		return activities.EnsureContactResult{ContactID: in.ContactID, How: activities.ContactKept}, nil
	}
	f.activeTask = func(in activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
		if in.ContactID == 42 && in.ExcludeTaskID == 100 {
			return activities.FindActiveTaskResult{TaskID: 555, Found: true}, nil
		}
		return activities.FindActiveTaskResult{}, nil
	}
	f.started(time.Second, "start-1", VisitorInfo{Name: "Visitor 1", OS: "iOS"})
	f.message(2*time.Second, "frag-1", msg("M1", "hi from my phone", start.Add(2*time.Second)))
	f.signal(time.Minute, SignalVisitorInfo, VisitorInfoSignal{Key: "info-2", ClientID: testClient, Visitor: VisitorInfo{Name: "Ivan", Email: "ivan@example.com"}})
	f.message(2*time.Minute, "frag-2", msg("M2", "it's Ivan", start.Add(2*time.Minute)))
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equal(t, "contact", st.ContactID, 42)
	equal(t, "task", st.TaskID, 555)
	equal(t, "task URL", st.TaskURL, testAccount+"/task/555")
	batches := f.callsOf("AddComments")
	if len(batches) != 2 {
		t.Fatalf("AddComments calls = %d, want 2", len(batches))
	}
	second := batches[1].In.(activities.AddCommentsInput)
	equal(t, "second comment's task", second.TaskID, 555)
	equal(t, "second comment's contact", second.ContactID, 42)
	notes := f.notes()
	if len(notes) != 2 {
		t.Fatalf("notes = %+v, want one on the old task and one on the joined one", notes)
	}
	equal(t, "note 1 task", notes[0].TaskID, 100)
	contains(t, "note 1", notes[0].Text, "task #555")
	equal(t, "note 2 task", notes[1].TaskID, 555)
	contains(t, "note 2", notes[1].Text, "task #100")
	completed := f.callsOf("CompleteTask")
	equal(t, "first completed task", completed[0].In.(activities.CompleteTaskInput).TaskID, 100)
	equal(t, "completed at close", completed[1].In.(activities.CompleteTaskInput).TaskID, 555)
	equal(t, "UpdateContact calls (the existing contact's card is left)", f.count("UpdateContact"), 0)
	found := false
	for _, s := range f.saved() {
		found = found || (s.TaskID == 555 && s.ContactID == 42 && s.Status == StatusOpen)
	}
	if !found {
		t.Errorf("the store was never told task 555 / contact 42: %+v", f.saved())
	}
}

// "Create a new task only if the contact has no active task": on, an active task is
// reused; on with none, one is created; on with a contact created in this setup, one is
// created without looking (it cannot have one); off, one is always created without
// looking.
func TestActiveTaskOption(t *testing.T) {
	knownContact := func(in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		return activities.EnsureContactResult{ContactID: 7, How: activities.ContactByEmail}, nil
	}
	t.Run("on, the contact has an active task", func(t *testing.T) {
		f := newFixture(t)
		f.settings.NewTaskOnlyIfNoActiveTask = true
		f.contact = knownContact
		f.activeTask = func(in activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
			equal(t, "FindActiveTask.ContactID", in.ContactID, 7)
			return activities.FindActiveTaskResult{TaskID: 77, Found: true}, nil
		}
		f.message(time.Second, "frag-1", msg("M1", "hi", start))
		f.closed(time.Hour, "close-1")
		f.runDefault()
		f.requireEnded()
		equal(t, "CreateTask calls", f.count("CreateTask"), 0)
		equal(t, "comment's task", f.callsOf("AddComments")[0].In.(activities.AddCommentsInput).TaskID, 77)
		equal(t, "completed task", f.callsOf("CompleteTask")[0].In.(activities.CompleteTaskInput).TaskID, 77)
	})
	t.Run("on, no active task", func(t *testing.T) {
		f := newFixture(t)
		f.settings.NewTaskOnlyIfNoActiveTask = true
		f.contact = knownContact
		f.message(time.Second, "frag-1", msg("M1", "hi", start))
		f.closed(time.Hour, "close-1")
		f.runDefault()
		f.requireEnded()
		equal(t, "FindActiveTask calls", f.count("FindActiveTask"), 1)
		equal(t, "CreateTask calls", f.count("CreateTask"), 1)
		equal(t, "comment's task", f.callsOf("AddComments")[0].In.(activities.AddCommentsInput).TaskID, 100)
	})
	t.Run("on, a contact created in this setup", func(t *testing.T) {
		f := newFixture(t) // its EnsureContact creates contact 7
		f.settings.NewTaskOnlyIfNoActiveTask = true
		f.activeTask = func(activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
			return activities.FindActiveTaskResult{TaskID: 77, Found: true}, nil
		}
		f.message(time.Second, "frag-1", msg("M1", "hi", start))
		f.closed(time.Hour, "close-1")
		f.runDefault()
		f.requireEnded()
		equal(t, "FindActiveTask calls", f.count("FindActiveTask"), 0)
		equal(t, "CreateTask calls", f.count("CreateTask"), 1)
		equal(t, "comment's task", f.callsOf("AddComments")[0].In.(activities.AddCommentsInput).TaskID, 100)
	})
	t.Run("off", func(t *testing.T) {
		f := newFixture(t)
		f.activeTask = func(activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
			return activities.FindActiveTaskResult{TaskID: 77, Found: true}, nil
		}
		f.message(time.Second, "frag-1", msg("M1", "hi", start))
		f.closed(time.Hour, "close-1")
		f.runDefault()
		f.requireEnded()
		equal(t, "FindActiveTask calls", f.count("FindActiveTask"), 0)
		equal(t, "CreateTask calls", f.count("CreateTask"), 1)
		equal(t, "comment's task", f.callsOf("AddComments")[0].In.(activities.AddCommentsInput).TaskID, 100)
	})
}

// An employee's comment goes to the chat (key, task and the bridge's receivedFrom tag);
// the message id Chatra gave it is then not taken for a new message when it comes back.
func TestReplySentAndItsEchoSkipped(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.replyComment(time.Minute, 8001)
	f.replyComment(2*time.Minute, 8001) // the scenario retried
	// The reply coming back from Chatra, without its tag.
	f.message(3*time.Minute, "frag-echo", Message{ID: "SENT-planfix-comment:8001", Type: MessageTypeAgent, Text: "We shipped it", AgentName: "Anna"})
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	sends := f.callsOf("SendReply")
	if len(sends) != 1 {
		t.Fatalf("SendReply calls = %d, want 1", len(sends))
	}
	in := sends[0].In.(activities.SendReplyInput)
	equal(t, "SendReply", in, activities.SendReplyInput{IntegrationID: testIntegration, ChatID: testChat, ClientID: testClient,
		TaskID: 100, Key: "planfix-comment:8001", CommentID: 8001, ReceivedFrom: ReceivedFromTag,
		ChatStart: activities.ChatStart{ChatStartedAt: start.Add(time.Second)}})
	equal(t, "replies sent", st.RepliesSent, 1)
	equal(t, "AddComments calls", f.count("AddComments"), 1)
	equal(t, "notes", len(f.notes()), 0)
}

// Chatra may drop or replace the receivedFrom tag of a message sent by agentId, and
// deliver it back under another id than its answer gave: the reply is then recognised by its content and
// agent (SendReplyResult.EchoKeys), in a fragment and in the transcript, and never
// becomes a task comment. Another agent who writes the same text is not the bridge.
func TestReplyEchoWithoutTagSkipped(t *testing.T) {
	f := newFixture(t)
	f.reply = func(in activities.SendReplyInput) (activities.SendReplyResult, error) {
		return activities.SendReplyResult{Outcome: activities.ReplySent, SentAs: "integration", MessageIDs: []string{"SENT-" + in.Key},
			EchoKeys: activities.EchoKeysOf("AGENT-BRIDGE", "We shipped it.\nTracking: 123")}, nil
	}
	// Its receivedFrom is not the bridge's tag (Chatra's own value, say).
	echo := Message{ID: "CHATRA-OWN-1", Type: MessageTypeAgent, AgentID: "AGENT-BRIDGE", AgentName: "Shop", Text: "We shipped it. Tracking: 123", Time: start.Add(time.Minute), ReceivedFrom: "api"}
	other := Message{ID: "J1", Type: MessageTypeAgent, AgentID: "AGENT-JULIA", AgentName: "Julia", Text: "We shipped it.\nTracking: 123", Time: start.Add(2 * time.Minute)}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.replyComment(time.Minute, 8001)
	f.message(3*time.Minute, "frag-echo", echo)
	f.message(4*time.Minute, "frag-julia", other)
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1", msg("M1", "hi", start), Message{ID: "CHATRA-OWN-1b", Type: MessageTypeAgent, Text: echo.Text, Time: echo.Time}, other)
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi"}, {"J1:" + other.Text}})
	equal(t, "skipped", st.MessagesSkipped, 1)
}

// An echo that comes in while SendReply is still at work (Chatra's webhook before its
// answer) waits for the task like any message; once the reply's result names it, it is
// dropped before it is written.
func TestReplyEchoBeforeTheResultSkipped(t *testing.T) {
	f := newFixture(t)
	f.replyDelay = time.Second // the echoes come meanwhile, within the reorder window
	f.reply = func(in activities.SendReplyInput) (activities.SendReplyResult, error) {
		return activities.SendReplyResult{Outcome: activities.ReplySent, SentAs: "integration", MessageIDs: []string{"CHATRA-OWN-1"},
			EchoKeys: activities.EchoKeysOf("AGENT-BRIDGE", "On its way")}, nil
	}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.replyComment(time.Minute, 8001)
	f.message(time.Minute+300*time.Millisecond, "frag-echo", Message{ID: "CHATRA-OWN-1", Type: MessageTypeAgent, AgentID: "AGENT-BRIDGE", Text: "On its way", Time: start.Add(time.Minute)})
	f.message(time.Minute+600*time.Millisecond, "frag-echo2", Message{ID: "CHATRA-OWN-X", Type: MessageTypeAgent, Text: "On  its way", Time: start.Add(time.Minute)})
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi"}})
	equal(t, "replies sent", st.RepliesSent, 1)
	equal(t, "skipped", st.MessagesSkipped, 2)
}

// A comment from an employee who is not allowed on the channel is not sent; the task
// gets a note saying why.
func TestDisallowedEmployeeGetsNote(t *testing.T) {
	f := newFixture(t)
	f.reply = func(in activities.SendReplyInput) (activities.SendReplyResult, error) {
		return activities.SendReplyResult{Outcome: activities.ReplyRefused, Author: "Boris Ivanov",
			Reason: `Boris Ivanov is not among the employees allowed to answer in this chat (the employees of integration "Shop")`}, nil
	}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.replyComment(time.Minute, 8002)
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	notes := f.notes()
	if len(notes) != 1 {
		t.Fatalf("notes = %+v, want 1", notes)
	}
	equal(t, "note task", notes[0].TaskID, 100)
	contains(t, "note", notes[0].Text, "Comment 8002: This reply was not sent to the chat: Boris Ivanov is not among the employees allowed")
	equal(t, "replies failed", st.RepliesFailed, 1)
	equal(t, "replies sent", st.RepliesSent, 0)
	contains(t, "last error", st.LastError, "not among the employees allowed")
}

// A reply Chatra refuses for good (no paid plan) leaves a note with the reason; the
// conversation goes on.
func TestPermanentReplyFailureLeavesNote(t *testing.T) {
	f := newFixture(t)
	f.reply = func(activities.SendReplyInput) (activities.SendReplyResult, error) {
		return activities.SendReplyResult{}, permanent("chatra.payment_required", "chatra send message: the Chatra account has no paid plan")
	}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.replyComment(time.Minute, 8003)
	f.message(2*time.Minute, "frag-2", msg("M2", "still there?", start.Add(2*time.Minute)))
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	notes := f.notes()
	if len(notes) != 1 {
		t.Fatalf("notes = %+v, want 1", notes)
	}
	contains(t, "note", notes[0].Text, "no paid plan")
	equal(t, "replies failed", st.RepliesFailed, 1)
	equal(t, "messages added", st.MessagesAdded, 2)
}

// A hand-made reply (text and author) goes the same way, de-duplicated by its key.
func TestManualReply(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	manual := ReplySignal{Key: "manual-1", Text: "We shipped it today.", AuthorName: "Anna", AuthorEmail: "anna@example.com"}
	f.signal(time.Minute, SignalReply, manual)
	f.signal(2*time.Minute, SignalReply, manual)
	f.signal(3*time.Minute, SignalReply, ReplySignal{Key: "manual-2"}) // neither comment nor text: ignored
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	sends := f.callsOf("SendReply")
	if len(sends) != 1 {
		t.Fatalf("SendReply calls = %d, want 1", len(sends))
	}
	in := sends[0].In.(activities.SendReplyInput)
	equal(t, "key", in.Key, "reply:manual-1")
	equal(t, "text", in.Text, "We shipped it today.")
	equal(t, "author", in.AuthorName, "Anna")
	equal(t, "author email", in.AuthorEmail, "anna@example.com")
	contains(t, "last error", st.LastError, "neither commentId nor text")
}

// A reply after the chat closed is still sent (Chatra emails the customer).
func TestReplyAfterClose(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.closed(time.Minute, "close-1")
	closed := f.queryAt(time.Hour)
	f.replyComment(5*time.Hour, 8004)
	after := f.queryAt(6 * time.Hour)
	f.runDefault()
	f.requireEnded()

	equal(t, "status before the reply", closed.Status, StatusClosed)
	equal(t, "SendReply calls", f.count("SendReply"), 1)
	equal(t, "status after the reply", after.Status, StatusClosed)
	equal(t, "replies sent", after.RepliesSent, 1)
	if i, j := f.index("CompleteTask", 0), f.index("SendReply", 0); i > j {
		t.Errorf("the reply went out before the close (%q)", f.names())
	}
}

// The transcript adds the messages whose fragments never came (in order, before the task
// is completed), and skips those the bridge sent itself.
func TestTranscriptReconciliation(t *testing.T) {
	f := newFixture(t)
	t0 := start.Add(time.Second)
	f.message(time.Second, "frag-1", msg("M1", "one", t0))
	f.closed(time.Hour, "close-1",
		msg("M1", "one", t0),
		msg("M2", "two (lost fragment)", t0.Add(time.Minute)),
		Message{ID: "M3", Type: MessageTypeAgent, Text: "our reply", Time: t0.Add(2 * time.Minute), ReceivedFrom: ReceivedFromTag, AgentName: "Anna"},
		agentMsg("M4", "Julia", "answered in the Chatra app", t0.Add(3*time.Minute)),
	)
	st := f.queryAt(2 * time.Hour)
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:one"}, {"M2:two (lost fragment)", "M4:answered in the Chatra app"}})
	if i, j := f.index("AddComments", 1), f.index("CompleteTask", 0); i > j {
		t.Errorf("the task was completed before the transcript's messages were added (%q)", f.names())
	}
	equal(t, "transcript added", st.TranscriptAdded, 2)
	equal(t, "own messages skipped", st.MessagesSkipped, 1)
	equal(t, "close reason", st.CloseReason, CloseReasonChatClosed)
}

// No chat-closed within the idle timeout of the last activity: the conversation closes as
// if it had come.
func TestIdleCloses(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.message(3*time.Hour, "frag-2", msg("M2", "hello?", start.Add(3*time.Hour)))
	st := f.queryAt(3*time.Hour + 24*time.Hour + time.Minute)
	f.runDefault()
	f.requireEnded()

	completes := f.callsOf("CompleteTask")
	if len(completes) != 1 {
		t.Fatalf("CompleteTask calls = %d, want 1", len(completes))
	}
	if at := completes[0].At; at.Before(start.Add(3*time.Hour+24*time.Hour)) || at.After(start.Add(3*time.Hour+24*time.Hour+time.Minute)) {
		t.Errorf("completed at %v, want 24h after the last message (%v)", at, start.Add(3*time.Hour))
	}
	equal(t, "status", st.Status, StatusClosed)
	equal(t, "close reason", st.CloseReason, CloseReasonIdle)
}

// After the close the conversation stays for the late-reply window, then ends.
func TestLateReplyWindowThenEnd(t *testing.T) {
	f := newFixture(t)
	f.settings.LateReplyWindow = 48 * time.Hour
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.closed(time.Hour, "close-1")
	before := f.queryAt(time.Hour + 47*time.Hour)
	f.runDefault()
	f.requireEnded()

	equal(t, "status 47h after the close", before.Status, StatusClosed)
	saved := f.saved()
	last := saved[len(saved)-1]
	equal(t, "last saved status", last.Status, StatusEnded)
	endedAt := f.callsOf("SaveConversation")[len(saved)-1].At
	if endedAt.Before(start.Add(49 * time.Hour)) {
		t.Errorf("ended at %v, before the 48h window closed", endedAt)
	}
}

// A new chat start in the late-reply window begins a new episode: a new task (the
// contact is kept), its own action on the contact, its messages in the new task.
func TestNewEpisodeInWindow(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.closed(time.Hour, "close-1")
	f.started(10*time.Hour, "start-2", VisitorInfo{Name: "Ivan", OS: "Android"})
	f.message(10*time.Hour+time.Second, "frag-5", msg("M5", "me again", start.Add(10*time.Hour)))
	st := f.queryAt(11 * time.Hour)
	f.closed(12*time.Hour, "close-2", msg("M5", "me again", start.Add(10*time.Hour)))
	f.runDefault()
	f.requireEnded()

	equal(t, "EnsureContact calls", f.count("EnsureContact"), 1)
	tasks := f.callsOf("CreateTask")
	if len(tasks) != 2 {
		t.Fatalf("CreateTask calls = %d, want 2", len(tasks))
	}
	equal(t, "second task's episode", tasks[1].In.(activities.CreateTaskInput).Episode, 2)
	// Episodes are named by the workflow's first run too: a later run of the same chat
	// (after it ended) counts from 1 again, and must not meet these names.
	k1, k2 := tasks[0].In.(activities.CreateTaskInput).EpisodeKey, tasks[1].In.(activities.CreateTaskInput).EpisodeKey
	if !strings.HasSuffix(k1, "/1") || !strings.HasSuffix(k2, "/2") || len(k1) < 3 || k1[:len(k1)-2] != k2[:len(k2)-2] {
		t.Errorf("episode keys %q, %q: want <first run id>/1 and /2", k1, k2)
	}
	actions := f.callsOf("AddContactAction")
	equal(t, "actions on the contact", len(actions), 2)
	equal(t, "second action's OS", actions[1].In.(activities.AddContactActionInput).Visitor.OS, "Android")
	batches := f.callsOf("AddComments")
	equal(t, "second comment's task", batches[1].In.(activities.AddCommentsInput).TaskID, 101)
	equal(t, "episode", st.Episode, 2)
	equal(t, "status in episode 2", st.Status, StatusOpen)
	equal(t, "task in episode 2", st.TaskID, 101)
	completes := f.callsOf("CompleteTask")
	equal(t, "completed tasks", len(completes), 2)
	equal(t, "second completed", completes[1].In.(activities.CompleteTaskInput).TaskID, 101)
}

// A visitor's new message after the close (no chatStarted) also begins a new episode;
// an agent's message after the close goes into the closed task.
func TestMessageAfterCloseBeginsEpisode(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.closed(time.Hour, "close-1")
	f.message(2*time.Hour, "frag-2", agentMsg("A1", "Julia", "Anything else?", start.Add(2*time.Hour)))
	f.message(5*time.Hour, "frag-3", msg("M2", "one more thing", start.Add(5*time.Hour)))
	f.closed(6*time.Hour, "close-2")
	f.runDefault()
	f.requireEnded()

	batches := f.callsOf("AddComments")
	if len(batches) != 3 {
		t.Fatalf("AddComments calls = %d, want 3 (%q)", len(batches), f.commentBatches())
	}
	equal(t, "agent message's task", batches[1].In.(activities.AddCommentsInput).TaskID, 100)
	equal(t, "new message's task", batches[2].In.(activities.AddCommentsInput).TaskID, 101)
	equal(t, "CreateTask calls", f.count("CreateTask"), 2)
}

// Cancelling leaves a note in the task that the sync stopped and marks the conversation
// cancelled in the store; the task is not completed.
func TestCancelCleansUp(t *testing.T) {
	f := newFixture(t)
	f.commentDelay = func(n int) time.Duration {
		if n == 1 {
			return time.Hour // in flight when the admin cancels
		}
		return 0
	}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.message(time.Minute, "frag-2", msg("M2", "hello?", start.Add(time.Minute)))
	f.at(10*time.Minute, func() { f.env.CancelWorkflow() })
	f.runDefault()

	if !f.env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	if err := f.env.GetWorkflowError(); !isCanceled(err) {
		t.Fatalf("workflow error = %v, want cancelled", err)
	}
	notes := f.notes()
	if len(notes) != 1 {
		t.Fatalf("notes = %+v, want 1", notes)
	}
	equal(t, "note task", notes[0].TaskID, 100)
	contains(t, "note", notes[0].Text, "stopped by an administrator")
	contains(t, "note", notes[0].Text, "1 chat message(s) received but not yet added")
	saved := f.saved()
	equal(t, "last saved status", saved[len(saved)-1].Status, StatusCancelled)
	equal(t, "CompleteTask calls", f.count("CompleteTask"), 0)
}

// Messages that arrive while a comment call is in flight (waiting at Planfix's rate
// limit) are combined into the next call, not one call each.
func TestCoalescingWhileCommentInFlight(t *testing.T) {
	f := newFixture(t)
	f.commentDelay = func(n int) time.Duration {
		if n == 0 {
			return 30 * time.Second
		}
		return 0
	}
	f.message(time.Second, "frag-1", msg("M1", "first", start.Add(time.Second)))
	for i, id := range []string{"M2", "M3", "M4"} {
		d := time.Duration(5+5*i) * time.Second
		f.message(d, "frag-"+id, msg(id, "more "+id, start.Add(d)))
	}
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:first"}, {"M2:more M2", "M3:more M3", "M4:more M4"}})
}

// Chatra's fragments may arrive out of order (CHATRA.md): one that comes a few hundred
// milliseconds after a later message of the chat still lands before it in the task. The
// comment lane writes once no new message has come for reorderQuiet.
func TestLateFragmentCommentedInOrder(t *testing.T) {
	f := newFixture(t)
	t0 := start.Add(10 * time.Second)
	f.started(time.Second, "start-1", ivan) // the task exists before the fragments come
	f.message(10*time.Second, "frag-2", msg("M2", "two", t0.Add(2*time.Second)))
	f.message(10*time.Second+300*time.Millisecond, "frag-0", msg("M0", "zero", t0))
	f.message(10*time.Second+600*time.Millisecond, "frag-1", msg("M1", "one", t0.Add(time.Second)))
	f.message(11*time.Second, "frag-2", msg("M2", "two", t0.Add(2*time.Second))) // repeated: not news
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equal(t, "messages out of order", f.outOfOrder(), 0)
	equalBatches(t, f.commentBatches(), [][]string{{"M0:zero", "M1:one", "M2:two"}})
	if calls := f.callsOf("AddComments"); len(calls) > 0 {
		want := start.Add(10*time.Second + 600*time.Millisecond + reorderQuiet)
		equalTime(t, "written at", calls[0].At, want)
	}
}

// A chat that never goes quiet is still written every reorderMaxWait at the latest, in
// order, in a few calls rather than one per message.
func TestReorderWindowBounded(t *testing.T) {
	f := newFixture(t)
	f.started(time.Second, "start-1", ivan)
	for i := range 40 { // a message every 500ms for 20s
		d := 10*time.Second + time.Duration(i)*500*time.Millisecond
		id := "M" + strconv.Itoa(100+i)
		f.message(d, "frag-"+id, msg(id, "text "+id, start.Add(d)))
	}
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	calls := f.callsOf("AddComments")
	if len(calls) == 0 || len(calls) > 4 {
		t.Fatalf("AddComments calls = %d, want 2 to 4 (%q)", len(calls), f.commentBatches())
	}
	equalTime(t, "first written at", calls[0].At, start.Add(10*time.Second+reorderMaxWait))
	equal(t, "messages written", len(f.commented()), 40)
	equal(t, "messages out of order", f.outOfOrder(), 0)
}

// The chat's close writes what waits at once (the transcript completes the chat: nothing
// is left to reorder) and the task is completed without waiting for the window.
func TestCloseFlushesReorderWindow(t *testing.T) {
	f := newFixture(t)
	t0 := start.Add(10 * time.Second)
	f.started(time.Second, "start-1", ivan)
	f.message(10*time.Second, "frag-1", msg("M1", "one", t0))
	closeAt := 10*time.Second + 100*time.Millisecond
	f.closed(closeAt, "close-1", msg("M0", "zero (lost fragment)", t0.Add(-time.Second)), msg("M1", "one", t0))
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M0:zero (lost fragment)", "M1:one"}})
	equalTime(t, "written at", f.callsOf("AddComments")[0].At, start.Add(closeAt))
	equalTime(t, "completed at", f.callsOf("CompleteTask")[0].At, start.Add(closeAt))
}

// Continue-as-new does not wait for the reorder window: the messages in it are carried,
// and the next run writes them.
func TestContinueAsNewDuringReorderWindow(t *testing.T) {
	f := newFixture(t)
	f.started(time.Second, "start-1", ivan)
	f.message(10*time.Second, "frag-1", msg("M1", "one", start.Add(10*time.Second)))
	f.at(10*time.Second+500*time.Millisecond, func() { f.env.SetContinueAsNewSuggested(true) })
	f.runDefault()

	var can *workflow.ContinueAsNewError
	if err := f.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	if now := f.env.Now(); now.After(start.Add(10*time.Second + 500*time.Millisecond)) {
		t.Errorf("continued as new at %v: it waited for the window", now)
	}
	var next ConversationInput
	if err := decodeContinueAsNewInput(can, &next); err != nil {
		t.Fatal(err)
	}
	equal(t, "AddComments calls before the switch", f.count("AddComments"), 0)
	if p := next.Carried.Pending; len(p) != 1 || p[0].ID != "M1" {
		t.Fatalf("carried pending %+v, want M1", p)
	}

	g := newFixture(t)
	g.message(time.Second, "frag-0", msg("M0", "zero", start.Add(9*time.Second))) // late, still in order
	g.closed(time.Hour, "close-1")
	g.run(next)
	g.requireEnded()
	equalBatches(t, g.commentBatches(), [][]string{{"M0:zero", "M1:one"}})
}

// The conversation is saved in the store as soon as its task exists, before the optional
// steps (the action on the contact, the task link in the visitor's notes): a reply
// written in the new task at once finds its chat. It is saved again at the end of the
// setup only when what the store keeps changed meanwhile.
func TestConversationSavedOnceTaskExists(t *testing.T) {
	t.Run("nothing changes", func(t *testing.T) {
		f := newFixture(t)
		f.started(time.Second, "start-1", ivan)
		f.closed(time.Hour, "close-1")
		f.runDefault()
		f.requireEnded()

		names := f.names()
		equalSlices(t, "setup calls", names[:min(len(names), 5)], []string{
			"EnsureContact", "CreateTask", "SaveConversation", "AddContactAction", "WriteVisitorNotes"})
		saved := f.saved()
		equal(t, "first save's task", saved[0].TaskID, 100)
		equal(t, "first save's status", saved[0].Status, StatusOpen)
		equal(t, "saves", len(saved), 3) // set up, closed, ended
	})
	t.Run("the visitor introduces themselves meanwhile", func(t *testing.T) {
		f := newFixture(t)
		f.actionDelay = 5 * time.Second
		f.started(time.Second, "start-1", VisitorInfo{Name: "Visitor 4521"})
		f.signal(3*time.Second, SignalVisitorInfo, VisitorInfoSignal{Key: "info-2", ClientID: testClient,
			Visitor: VisitorInfo{Name: "Olga Petrova", Email: "olga@example.com"}})
		f.closed(time.Hour, "close-1")
		f.runDefault()
		f.requireEnded()

		if i, j := f.index("SaveConversation", 0), f.index("AddContactAction", 0); i < 0 || i > j {
			t.Fatalf("calls %q: want the conversation saved before the action", f.names())
		}
		saved := f.saved()
		equal(t, "first save's name", saved[0].CustomerName, "Visitor 4521")
		equal(t, "second save's name", saved[1].CustomerName, "Olga Petrova")
		equal(t, "second save's email", saved[1].CustomerEmail, "olga@example.com")
		equal(t, "second save's status", saved[1].Status, StatusOpen)
	})
}

// Replies written in the task before the store knew its conversation were held by the
// webhook; the save that took them returns them, and they are sent like reply signals:
// in order, once each (one also came by signal), the bridge's own comment skipped.
func TestHeldRepliesSent(t *testing.T) {
	f := newFixture(t)
	f.heldReplies = func(in activities.SaveConversationInput) []int64 {
		switch {
		case f.count("SaveConversation") == 1:
			return []int64{8001, 8002}
		case in.Status == StatusClosed:
			// 5001 is M1's comment, which the bridge wrote itself (the store would only
			// return it from the first save; the mock tests the workflow's check).
			return []int64{5001, 8003}
		}
		return nil
	}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.replyComment(time.Minute, 8002) // also came by signal, after it was held
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	var keys []string
	for _, c := range f.callsOf("SendReply") {
		in := c.In.(activities.SendReplyInput)
		equal(t, "task of "+in.Key, in.TaskID, 100)
		equal(t, "comment of "+in.Key, "planfix-comment:"+strconv.FormatInt(in.CommentID, 10), in.Key)
		keys = append(keys, in.Key)
	}
	equalSlices(t, "replies sent", keys, []string{"planfix-comment:8001", "planfix-comment:8002", "planfix-comment:8003"})
	if i, j := f.index("SaveConversation", 0), f.index("SendReply", 0); i < 0 || i > j {
		t.Errorf("calls %q: want the held replies sent after the save that took them", f.names())
	}
}

// A steady stream of messages does not hold a reply back: the comment lane lets a waiting
// reply start before its next call.
func TestRepliesNotStarvedByMessages(t *testing.T) {
	f := newFixture(t)
	f.commentDelay = func(int) time.Duration { return 10 * time.Second }
	for i := range 12 {
		d := time.Duration(1+5*i) * time.Second
		id := "M" + strconv.Itoa(i)
		f.message(d, "frag-"+id, msg(id, "text "+id, start.Add(d)))
	}
	f.replyComment(12*time.Second, 8006)
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	sends := f.callsOf("SendReply")
	if len(sends) != 1 {
		t.Fatalf("SendReply calls = %d, want 1", len(sends))
	}
	if at := sends[0].At; at.After(start.Add(35 * time.Second)) {
		t.Errorf("the reply went out at %v, %v after it came: held back by the messages", at, at.Sub(start.Add(12*time.Second)))
	}
	var n int
	for _, b := range f.commentBatches() {
		n += len(b)
	}
	equal(t, "messages added", n, 12)
}

// A message without text (an attachment) still leaves a trace in the task.
func TestMessageWithoutTextNoted(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "", start))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()
	batches := f.commentBatches()
	if len(batches) != 1 || !strings.Contains(batches[0][0], "attachment") {
		t.Errorf("batches = %q, want a note about the attachment", batches)
	}
}

// The bridge's own messages (its receivedFrom tag) never become comments.
func TestOwnReceivedFromSkipped(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.message(time.Minute, "frag-2", Message{ID: "R1", Type: MessageTypeAgent, Text: "We shipped it", AgentName: "Anna", ReceivedFrom: ReceivedFromTag})
	f.message(2*time.Minute, "frag-3", Message{ID: "R2", Type: MessageTypeAgent, Text: "Tracking: 123", ReceivedFrom: " ChatraBridge "})
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi"}})
	equal(t, "skipped", st.MessagesSkipped, 2)
}

// An agent's message written in the Chatra app becomes a comment as the agent's, with
// its name (the activity marks it "Agent Julia in Chatra: ...").
func TestAgentMessageMarked(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start.Add(time.Second)))
	f.message(time.Minute, "frag-2", agentMsg("A1", "Julia", "Hello! Let me check.", start.Add(time.Minute)))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	batches := f.callsOf("AddComments")
	if len(batches) != 2 {
		t.Fatalf("AddComments calls = %d, want 2", len(batches))
	}
	m := batches[1].In.(activities.AddCommentsInput).Messages[0]
	equal(t, "type", m.Type, MessageTypeAgent)
	equal(t, "agent", m.AgentName, "Julia")
	equal(t, "text", m.Text, "Hello! Let me check.")
}

// A reply signal for a comment the bridge wrote itself (the Planfix scenario fires on
// every comment) is ignored, also when it arrives while that comment is being written.
func TestOwnCommentReplyIgnored(t *testing.T) {
	f := newFixture(t)
	f.commentDelay = func(n int) time.Duration { return 10 * time.Second }
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	// 5001 is the first comment id the fixture hands out: M1's comment, still in flight.
	f.replyComment(5*time.Second, 5001)
	f.replyComment(time.Minute, 5001)
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equal(t, "SendReply calls", f.count("SendReply"), 0)
}

// Planfix refusing a message for good is recorded; the conversation goes on with the
// next ones.
func TestPermanentCommentFailureKeepsGoing(t *testing.T) {
	f := newFixture(t)
	first := true
	f.comments = func(in activities.AddCommentsInput) (activities.AddCommentsResult, error) {
		if first {
			first = false
			return activities.AddCommentsResult{}, permanent("planfix.bad_request", "planfix refused the comment")
		}
		return activities.AddCommentsResult{CommentIDs: []int64{1}}, nil
	}
	f.message(time.Second, "frag-1", msg("M1", "bad", start))
	f.message(time.Minute, "frag-2", msg("M2", "good", start.Add(time.Minute)))
	st := f.queryAt(time.Hour)
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equal(t, "failed", st.MessagesFailed, 1)
	equal(t, "added", st.MessagesAdded, 1)
	contains(t, "last error", st.LastError, "planfix refused the comment")
	equal(t, "CompleteTask calls", f.count("CompleteTask"), 1)
}

// A setup that fails for good (a wrong template) is retried when the next chat event
// comes (an admin may have fixed the integration), and the messages wait, none lost.
func TestSetupFailureRetriedAtNextEvent(t *testing.T) {
	f := newFixture(t)
	f.createTaskErr = []error{permanent("planfix.bad_request", "planfix says a parameter has a wrong value (code 41, parameter \"template\")")}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	failing := f.queryAt(10 * time.Second)
	f.message(30*time.Second, "frag-2", msg("M2", "hello?", start.Add(30*time.Second)))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	contains(t, "last error while failing", failing.LastError, "template")
	equal(t, "pending while failing", failing.PendingMessages, 1)
	equal(t, "CreateTask calls", f.count("CreateTask"), 2)
	if at := f.callsOf("CreateTask")[1].At; at.After(start.Add(31 * time.Second)) {
		t.Errorf("retried at %v, want at the next message", at)
	}
	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi", "M2:hello?"}})
}

// The visitor's contact that the store knew is gone from Planfix: CreateTask reports
// ErrContactGone (and has forgotten the mapping), and the setup sets the contact up again
// at once, without the setup's backoff, and creates the task for the new contact.
func TestSetupSetsAGoneContactUpAgain(t *testing.T) {
	f := newFixture(t)
	contacts := []activities.EnsureContactResult{{ContactID: 7, How: activities.ContactByClient}, {ContactID: 8, How: activities.ContactCreated}}
	f.contact = func(activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		r := contacts[0]
		if len(contacts) > 1 {
			contacts = contacts[1:]
		}
		return r, nil
	}
	f.createTaskErr = []error{permanent(activities.ErrContactGone, "planfix no longer has contact 7 (deleted or merged)")}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	during := f.queryAt(time.Minute)
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equalSlices(t, "setup calls", f.names()[:6], []string{"EnsureContact", "CreateTask", "EnsureContact", "CreateTask", "SaveConversation", "AddContactAction"})
	ensures, creates := f.callsOf("EnsureContact"), f.callsOf("CreateTask")
	equal(t, "EnsureContact calls", len(ensures), 2)
	equal(t, "CreateTask calls", len(creates), 2)
	equal(t, "second EnsureContact's contact", ensures[1].In.(activities.EnsureContactInput).ContactID, 0)
	equal(t, "first task's contact", creates[0].In.(activities.CreateTaskInput).ContactID, 7)
	equal(t, "second task's contact", creates[1].In.(activities.CreateTaskInput).ContactID, 8)
	equalTime(t, "second CreateTask (at once, no backoff)", creates[1].At, creates[0].At)
	equal(t, "task", during.TaskID, 100)
	equal(t, "contact", during.ContactID, 8)
	contains(t, "last error", during.LastError, "contact 7")
	equal(t, "saved contact", f.saved()[0].ContactID, 8)
	equal(t, "saved task", f.saved()[0].TaskID, 100)
	equal(t, "action's contact", f.callsOf("AddContactAction")[0].In.(activities.AddContactActionInput).ContactID, 8)
	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi"}})
}

// A contact reported gone twice in one setup attempt does not loop: the attempt fails,
// and the next one (after the setup's backoff) tries again with the contact it has.
func TestSetupSetsAGoneContactUpOncePerAttempt(t *testing.T) {
	f := newFixture(t)
	next := int64(7)
	f.contact = func(activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		next++
		return activities.EnsureContactResult{ContactID: next - 1, How: activities.ContactCreated}, nil
	}
	gone := permanent(activities.ErrContactGone, "planfix no longer has the contact")
	f.createTaskErr = []error{gone, gone}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.closed(2*time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	ensures, creates := f.callsOf("EnsureContact"), f.callsOf("CreateTask")
	equal(t, "EnsureContact calls", len(ensures), 2)
	equal(t, "CreateTask calls", len(creates), 3)
	if !creates[1].At.Equal(creates[0].At) {
		t.Errorf("second CreateTask at %v, want at once (%v)", creates[1].At, creates[0].At)
	}
	if creates[2].At.Sub(creates[1].At) < 30*time.Second {
		t.Errorf("third CreateTask %v after the second, want after the setup's backoff", creates[2].At.Sub(creates[1].At))
	}
	equal(t, "third task's contact", creates[2].In.(activities.CreateTaskInput).ContactID, 8)
	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi"}})
}

// A setup that keeps failing while the chat is idle fails the workflow visibly, with the
// cause, rather than waiting forever.
func TestSetupFailureGivesUpWhenIdle(t *testing.T) {
	f := newFixture(t)
	f.settings.IdleTimeout = 3 * time.Hour
	for range 20 {
		f.createTaskErr = append(f.createTaskErr, permanent("planfix.bad_request", "unknown task template"))
	}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.runDefault()

	if !f.env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	err := f.env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "conversation.setup_failed" {
		t.Fatalf("workflow error = %v, want conversation.setup_failed", err)
	}
	contains(t, "error", app.Message(), "unknown task template")
	// Retried with growing waits (1m, 2m, 4m, ... at most 1h), not in a tight loop.
	creates := f.callsOf("CreateTask")
	if len(creates) < 4 || len(creates) > 10 {
		t.Fatalf("CreateTask calls = %d, want a few retries with backoff within 3h", len(creates))
	}
	if g1, g2 := creates[2].At.Sub(creates[1].At), creates[3].At.Sub(creates[2].At); g2 <= g1 {
		t.Errorf("retry gaps %v then %v: want them to grow", g1, g2)
	}
}

// Continue-as-new carries the de-duplication keys and the state: after it, a repeated
// message is still recognised, the contact and task are kept, and new messages land.
func TestContinueAsNewKeepsDeduplication(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.replyComment(time.Minute, 8005)
	f.message(2*time.Minute, "frag-2", msg("M2", "arrives before the switch", start.Add(2*time.Minute)))
	f.at(3*time.Minute, func() { f.env.SetContinueAsNewSuggested(true) })
	f.runDefault()

	if !f.env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	err := f.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	var next ConversationInput
	if err := decodeContinueAsNewInput(can, &next); err != nil {
		t.Fatal(err)
	}
	cr := next.Carried
	if cr == nil {
		t.Fatal("nothing carried")
	}
	equal(t, "carried task", cr.State.TaskID, 100)
	equal(t, "carried contact", cr.State.ContactID, 7)
	for _, k := range []string{"message:M1", "message:M2", "signal:frag-1", "planfix-comment:8005"} {
		if !cr.SeenKeys.has(k) {
			t.Errorf("seen keys %q lack %q", cr.SeenKeys.keys(), k)
		}
	}
	equal(t, "carried client", next.ClientID, testClient)

	// The next run.
	g := newFixture(t)
	g.message(time.Second, "frag-1", msg("M1", "hi", start))    // repeated delivery
	g.message(2*time.Second, "frag-1b", msg("M1", "hi", start)) // same message again
	g.replyComment(3*time.Second, 8005)                         // repeated reply
	g.message(time.Minute, "frag-3", msg("M3", "after", start.Add(time.Minute)))
	g.closed(time.Hour, "close-1")
	g.run(next)
	g.requireEnded()

	equal(t, "EnsureContact calls after", g.count("EnsureContact"), 0)
	equal(t, "CreateTask calls after", g.count("CreateTask"), 0)
	equal(t, "SendReply calls after", g.count("SendReply"), 0)
	// Every message once over both runs.
	all := append(f.commentBatches(), g.commentBatches()...)
	seen := map[string]int{}
	for _, b := range all {
		for _, m := range b {
			seen[m]++
		}
	}
	equal(t, "M1 comments", seen["M1:hi"], 1)
	equal(t, "M2 comments", seen["M2:arrives before the switch"], 1)
	equal(t, "M3 comments", seen["M3:after"], 1)
	equal(t, "completed task", g.callsOf("CompleteTask")[0].In.(activities.CompleteTaskInput).TaskID, 100)
}

// Work not done at the switch is carried: here the messages that wait for a setup that
// failed (the next run sets the conversation up and adds them), and the replies queued.
func TestContinueAsNewCarriesPendingWork(t *testing.T) {
	f := newFixture(t)
	f.createTaskErr = []error{permanent("planfix.bad_request", "unknown task template")}
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.at(10*time.Second, func() { f.env.SetContinueAsNewSuggested(true) })
	f.runDefault()

	var can *workflow.ContinueAsNewError
	if err := f.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	var next ConversationInput
	if err := decodeContinueAsNewInput(can, &next); err != nil {
		t.Fatal(err)
	}
	cr := next.Carried
	if len(cr.Pending) == 0 || cr.Pending[0].ID != "M1" || cr.Phase != PhaseSettingUp {
		t.Fatalf("carried %+v: want M1 pending, started, episode not ready (setting up)", cr)
	}
	equal(t, "carried contact", cr.State.ContactID, 7)

	g := newFixture(t)
	g.message(time.Second, "frag-2", msg("M2", "hello?", start.Add(20*time.Second)))
	g.closed(time.Hour, "close-1")
	g.run(next)
	g.requireEnded()
	equal(t, "EnsureContact calls after", g.count("EnsureContact"), 0)
	equal(t, "CreateTask calls after", g.count("CreateTask"), 1)
	var all []string
	for _, b := range append(f.commentBatches(), g.commentBatches()...) {
		all = append(all, b...)
	}
	slices.Sort(all)
	equalSlices(t, "messages added over both runs", all, []string{"M1:hi", "M2:hello?"})
}

// A signal that arrives in the workflow task in which the conversation continues as new
// is carried to the next run, not lost (a Selector blocked on the channel would have
// taken it where the drain cannot see it).
func TestContinueAsNewCarriesSignalsAtTheSwitch(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	// Three signals and Temporal's suggestion meet in one workflow task.
	f.at(time.Minute, func() {
		f.env.SignalWorkflowSkippingWorkflowTask(SignalMessage, MessageSignal{Key: "frag-2", ClientID: testClient,
			Messages: []Message{msg("M2", "at the switch", start.Add(time.Minute))}})
		f.env.SignalWorkflowSkippingWorkflowTask(SignalChatClosed, ChatClosedSignal{Key: "close-1", ClientID: testClient})
		// Runs after the signals above are delivered, before the task below.
		f.env.RegisterDelayedCallback(func() { f.env.SetContinueAsNewSuggested(true) }, 0)
		f.env.SignalWorkflow(SignalVisitorInfo, VisitorInfoSignal{Key: "info-2", ClientID: testClient})
	})
	f.runDefault()

	var can *workflow.ContinueAsNewError
	if err := f.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	var next ConversationInput
	if err := decodeContinueAsNewInput(can, &next); err != nil {
		t.Fatal(err)
	}
	cr := next.Carried
	if len(cr.Pending) != 1 || cr.Pending[0].ID != "M2" || !cr.closeRequested() {
		t.Fatalf("carried pending %+v, phase %s: want M2 and the close; calls %q seen %q", cr.Pending, cr.Phase, f.names(), cr.SeenKeys.keys())
	}
	equal(t, "activities started at the switch", f.count("AddComments")+f.count("CompleteTask"), 1) // M1's only

	g := newFixture(t)
	g.run(next)
	g.requireEnded()
	equalBatches(t, g.commentBatches(), [][]string{{"M2:at the switch"}})
	equal(t, "CompleteTask calls", g.count("CompleteTask"), 1)
}

// The history threshold in the input triggers continue-as-new too.
func TestContinueAsNewAfterEvents(t *testing.T) {
	f := newFixture(t)
	f.env.SetCurrentHistoryLength(500)
	f.message(time.Second, "frag-1", msg("M1", "hi", start))
	f.run(ConversationInput{IntegrationID: testIntegration, ChatID: testChat, ClientID: testClient, ContinueAsNewAfterEvents: 400})

	var can *workflow.ContinueAsNewError
	if err := f.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	var next ConversationInput
	if err := decodeContinueAsNewInput(can, &next); err != nil {
		t.Fatal(err)
	}
	equal(t, "threshold carried", next.ContinueAsNewAfterEvents, 400)
}

// A run restarted by a late reply (no chat event) delivers the reply, notes a failure in
// the reply's task, and ends after the late-reply window.
func TestReplyOnlyRunDeliversAndEnds(t *testing.T) {
	f := newFixture(t)
	f.reply = func(activities.SendReplyInput) (activities.SendReplyResult, error) {
		return activities.SendReplyResult{}, permanent("chatra.not_found", "chatra has no such visitor")
	}
	f.signal(0, SignalReply, ReplySignal{Key: "planfix-comment:9001", CommentID: 9001, TaskID: 321})
	f.runDefault()
	f.requireEnded()

	equal(t, "SendReply calls", f.count("SendReply"), 1)
	equal(t, "EnsureContact calls", f.count("EnsureContact"), 0)
	notes := f.notes()
	if len(notes) != 1 {
		t.Fatalf("notes = %+v, want 1", notes)
	}
	equal(t, "note task", notes[0].TaskID, 321)
	saved := f.saved()
	equal(t, "saved status", saved[len(saved)-1].Status, StatusEnded)
}

// A signal whose payload does not decode is dropped; the conversation goes on.
func TestUndecodableSignalDropped(t *testing.T) {
	f := newFixture(t)
	f.signal(time.Second, SignalMessage, "not an object")
	f.signal(2*time.Second, SignalReply, []int{1, 2})
	f.message(3*time.Second, "frag-1", msg("M1", "hi", start))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	equalBatches(t, f.commentBatches(), [][]string{{"M1:hi"}})
}

// A conversation without its ids fails at once with a clear, non-retryable error.
func TestInvalidInput(t *testing.T) {
	f := newFixture(t)
	f.run(ConversationInput{IntegrationID: testIntegration})
	var app *temporal.ApplicationError
	if err := f.env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != "conversation.invalid_input" {
		t.Fatalf("workflow error = %v, want conversation.invalid_input", err)
	}
}

// Search attributes are upserted as they become known, and the current details follow.
func TestSearchAttributesAndDetails(t *testing.T) {
	f := newFixture(t)
	var upserts []map[string]any
	f.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		m := map[string]any{}
		for k, v := range sa.GetUntypedValues() {
			m[k.GetName()] = v
		}
		upserts = append(upserts, m)
	}).Return(nil)
	f.started(time.Second, "start-1", ivan)
	f.message(2*time.Second, "frag-1", msg("M1", "hi", start))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()

	final := map[string]any{}
	for _, u := range upserts {
		for k, v := range u {
			final[k] = v
		}
	}
	for k, want := range map[string]any{
		"ChatraIntegration": testIntegration, "ChatraChatId": testChat, "ChatraClientId": testClient,
		"CustomerEmail": "ivan@example.com", "CustomerName": "Ivan", "PlanfixTaskId": int64(100), "ConversationStatus": string(StatusEnded),
	} {
		if final[k] != want {
			t.Errorf("search attribute %s = %v, want %v (upserts %v)", k, final[k], want, upserts)
		}
	}
	statuses := []string{}
	for _, u := range upserts {
		if s, ok := u["ConversationStatus"].(string); ok {
			statuses = append(statuses, s)
		}
	}
	equalSlices(t, "status upserts", statuses, []string{string(StatusOpen), string(StatusClosed), string(StatusEnded)})
}

// What the start set (as the API's SignalWithStart does) is not upserted again: before
// the task, nothing is upserted at all.
func TestSearchAttributesOfTheStartNotUpsertedAgain(t *testing.T) {
	f := newFixture(t)
	f.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		SAIntegration.ValueSet(testIntegration), SAChatID.ValueSet(testChat), SAClientID.ValueSet(testClient),
		SAStatus.ValueSet(string(StatusOpen)), SAName.ValueSet("Ivan"), SAEmail.ValueSet("ivan@example.com")))
	var upserted []string
	f.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		for k := range args.Get(0).(temporal.SearchAttributes).GetUntypedValues() {
			upserted = append(upserted, k.GetName())
		}
	}).Return(nil)
	f.started(time.Second, "start-1", ivan)
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()
	slices.Sort(upserted)
	equalSlices(t, "upserted", upserted, []string{"ConversationStatus", "ConversationStatus", "PlanfixTaskId"}) // closed, ended; the task
}

// With CUSTOMER_SEARCH=hash or off (Settings.CustomerSearch), the workflow never
// upserts the customer's email or name (the start set them, hashed or not at all); the
// other attributes are upserted as before.
func TestCustomerSearchNotUpsertedWhenHashedOrOff(t *testing.T) {
	for _, mode := range []string{"hash", "off"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			f.settings.CustomerSearch = mode
			var upserted []string
			f.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
				for k := range args.Get(0).(temporal.SearchAttributes).GetUntypedValues() {
					upserted = append(upserted, k.GetName())
				}
			}).Return(nil)
			f.started(time.Second, "start-1", ivan)
			f.closed(time.Hour, "close-1")
			f.runDefault()
			f.requireEnded()
			if slices.Contains(upserted, SAEmail.GetName()) || slices.Contains(upserted, SAName.GetName()) {
				t.Errorf("upserted %v", upserted)
			}
			if !slices.Contains(upserted, SATaskID.GetName()) || !slices.Contains(upserted, SAChatID.GetName()) {
				t.Errorf("upserted %v, want the task and the chat", upserted)
			}
		})
	}
}

// The current details read like the conversation: status, task link, counts, last error.
func TestDetailsText(t *testing.T) {
	c := &conversation{st: Carried{State: State{Status: StatusOpen, Episode: 1, TaskID: 100, TaskURL: testAccount + "/task/100",
		CustomerName: "Ivan", CustomerEmail: "ivan@example.com", MessagesReceived: 3, MessagesAdded: 2, RepliesSent: 1,
		RepliesFailed: 1, LastError: "send a reply: no paid plan"}, Pending: []Message{{ID: "x"}}}}
	d := c.details()
	for _, want := range []string{"**open**", "[task #100](" + testAccount + "/task/100)", "Ivan · ivan@example.com",
		"3 message(s) received, 2 added", "1 reply(ies) sent, 1 not sent", "1 message(s) waiting", "Last error: send a reply: no paid plan"} {
		contains(t, "details", d, want)
	}
}

func TestKeySetForgetsOldest(t *testing.T) {
	s := newKeySet(3)
	for _, k := range []string{"a", "b", "c", "d"} {
		if !s.add(k) {
			t.Fatalf("add(%q) = false on first add", k)
		}
	}
	if s.add("d") {
		t.Error("add(d) twice = true")
	}
	if s.has("a") {
		t.Error("the oldest key was kept past the bound")
	}
	equalSlices(t, "keys", s.keys(), []string{"b", "c", "d"})
}

// A reply is retried at least every 30 s (a customer may be waiting), other Planfix
// calls back off up to a minute.
func TestReplyRetriesStayFrequent(t *testing.T) {
	if got := replyOptions("r").RetryPolicy.MaximumInterval; got != 30*time.Second {
		t.Errorf("reply retry interval up to %v, want 30s", got)
	}
	if got := planfixOptions("p").RetryPolicy.MaximumInterval; got != time.Minute {
		t.Errorf("planfix retry interval up to %v, want 1m (replyOptions must not change it)", got)
	}
}

// The rate limiter serves a chat's Planfix requests by class, oldest chat first: every
// Planfix activity carries the chat's start, and the task's first messages are spent with
// the setup (an employee needs them to answer), the later ones in the class of messages.
func TestPlanfixCallsCarryTheirPriority(t *testing.T) {
	f := newFixture(t)
	f.message(time.Second, "frag-1", msg("M1", "hi", start.Add(time.Second)))
	f.message(10*time.Minute, "frag-2", msg("M2", "anyone?", start.Add(10*time.Minute)))
	f.closed(time.Hour, "close-1")
	f.runDefault()
	f.requireEnded()
	adds := f.callsOf("AddComments")
	if len(adds) != 2 {
		t.Fatalf("AddComments calls = %d, want 2", len(adds))
	}
	chat := activities.ChatStart{ChatStartedAt: start.Add(time.Second)} // the chat's first event
	first, later := adds[0].In.(activities.AddCommentsInput), adds[1].In.(activities.AddCommentsInput)
	equal(t, "first messages' class", first.Class, planfix.ClassSetup)
	equal(t, "later messages' class", later.Class, planfix.ClassMessages)
	equal(t, "first messages' chat", first.ChatStart, chat)
	equal(t, "later messages' chat", later.ChatStart, chat)
	equal(t, "EnsureContact's chat", f.callsOf("EnsureContact")[0].In.(activities.EnsureContactInput).ChatStart, chat)
	equal(t, "CreateTask's chat", f.callsOf("CreateTask")[0].In.(activities.CreateTaskInput).ChatStart, chat)
	equal(t, "CompleteTask's chat", f.callsOf("CompleteTask")[0].In.(activities.CompleteTaskInput).ChatStart, chat)
}
