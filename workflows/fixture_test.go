package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
)

// start is the workflow's start time in every test.
var start = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

const (
	testIntegration = "shop"
	testChat        = "CHAT1"
	testClient      = "V1"
	testAccount     = "https://acme.planfix.com"
)

// call is one activity call a test observed.
type call struct {
	Name string
	In   any
	At   time.Time
}

// fixture runs ConversationWorkflow in the test environment with every activity mocked
// through the typed references (a.X). The mocks answer from the fixture's fields, which
// a test changes before (or while) the workflow runs, and record each call.
type fixture struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu    sync.Mutex
	calls []call

	settings      activities.Settings
	contact       func(activities.EnsureContactInput) (activities.EnsureContactResult, error)
	activeTask    func(activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error)
	nextTaskID    int64
	createTaskErr []error // returned by the first CreateTask calls, in turn
	comments      func(activities.AddCommentsInput) (activities.AddCommentsResult, error)
	commentDelay  func(n int) time.Duration // how long the n-th AddComments call takes (from 0)
	actionDelay   time.Duration             // how long AddContactAction takes
	reply         func(activities.SendReplyInput) (activities.SendReplyResult, error)
	heldReplies   func(activities.SaveConversationInput) []int64 // what SaveConversation took; nil: none
	elsewhere     func(activities.SaveConversationInput) bool    // SaveConversation's RepliesElsewhere; nil: false
	noteDelay     time.Duration                                  // how long AddNote takes
	replyDelay    time.Duration                                  // how long SendReply takes
	nextCommentID int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWithMetrics(t, nil)
}

// newFixtureWithMetrics is newFixture whose workflow reports its metrics to h.
func newFixtureWithMetrics(t *testing.T, h client.MetricsHandler) *fixture {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	if h != nil {
		ts.SetMetricsHandler(h)
	}
	f := &fixture{
		t:   t,
		env: ts.NewTestWorkflowEnvironment(),
		settings: activities.Settings{Name: "Shop", AccountURL: testAccount,
			LateReplyWindow: 72 * time.Hour, IdleTimeout: 24 * time.Hour},
		nextTaskID:    100,
		nextCommentID: 5000,
	}
	f.contact = func(in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		if in.ContactID != 0 {
			return activities.EnsureContactResult{ContactID: in.ContactID, How: activities.ContactKept}, nil
		}
		return activities.EnsureContactResult{ContactID: 7, How: activities.ContactCreated}, nil
	}
	f.activeTask = func(activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
		return activities.FindActiveTaskResult{}, nil
	}
	f.comments = func(in activities.AddCommentsInput) (activities.AddCommentsResult, error) {
		var r activities.AddCommentsResult
		for range in.Messages {
			r.CommentIDs = append(r.CommentIDs, f.commentID())
		}
		return r, nil
	}
	f.reply = func(in activities.SendReplyInput) (activities.SendReplyResult, error) {
		return activities.SendReplyResult{Outcome: activities.ReplySent, SentAs: "integration", MessageIDs: []string{"SENT-" + in.Key}}, nil
	}
	f.env.RegisterWorkflowWithOptions(ConversationWorkflow, workflow.RegisterOptions{Name: ConversationWorkflowName})
	f.env.RegisterActivity(&activities.Activities{})
	f.env.SetStartTime(start)
	f.mockActivities()
	return f
}

func (f *fixture) commentID() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextCommentID++
	return f.nextCommentID
}

func (f *fixture) record(name string, in any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{Name: name, In: in, At: f.env.Now()})
}

func (f *fixture) mockActivities() {
	env := f.env
	env.OnActivity(a.LoadSettings, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LoadSettingsInput) (activities.Settings, error) {
			f.record("LoadSettings", in)
			return f.settings, nil
		})
	env.OnActivity(a.EnsureContact, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
			f.record("EnsureContact", in)
			return f.contact(in)
		})
	env.OnActivity(a.FindActiveTask, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
			f.record("FindActiveTask", in)
			return f.activeTask(in)
		})
	env.OnActivity(a.CreateTask, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreateTaskInput) (activities.CreateTaskResult, error) {
			f.record("CreateTask", in)
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.createTaskErr) > 0 {
				err := f.createTaskErr[0]
				f.createTaskErr = f.createTaskErr[1:]
				return activities.CreateTaskResult{}, err
			}
			id := f.nextTaskID
			f.nextTaskID++
			return activities.CreateTaskResult{TaskID: id}, nil
		})
	env.OnActivity(a.AddContactAction, mock.Anything, mock.Anything).AfterFn(func() time.Duration {
		return f.actionDelay
	}).Return(
		func(_ context.Context, in activities.AddContactActionInput) (activities.AddContactActionResult, error) {
			f.record("AddContactAction", in)
			return activities.AddContactActionResult{CommentID: 900 + int64(in.Episode)}, nil
		})
	env.OnActivity(a.WriteVisitorNotes, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WriteVisitorNotesInput) error {
			f.record("WriteVisitorNotes", in)
			return nil
		})
	env.OnActivity(a.SaveConversation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SaveConversationInput) (activities.SaveConversationResult, error) {
			f.record("SaveConversation", in)
			var r activities.SaveConversationResult
			if f.heldReplies != nil {
				r.HeldReplies = f.heldReplies(in)
			}
			if f.elsewhere != nil {
				r.RepliesElsewhere = f.elsewhere(in)
			}
			return r, nil
		})
	env.OnActivity(a.UpdateContact, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.UpdateContactInput) error {
			f.record("UpdateContact", in)
			return nil
		})
	env.OnActivity(a.AddComments, mock.Anything, mock.Anything).AfterFn(func() time.Duration {
		if f.commentDelay == nil {
			return 0
		}
		return f.commentDelay(f.count("AddComments"))
	}).Return(
		func(_ context.Context, in activities.AddCommentsInput) (activities.AddCommentsResult, error) {
			f.record("AddComments", in)
			return f.comments(in)
		})
	env.OnActivity(a.AddNote, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return f.noteDelay }).Return(
		func(_ context.Context, in activities.AddNoteInput) (activities.AddNoteResult, error) {
			f.record("AddNote", in)
			return activities.AddNoteResult{CommentID: f.commentID()}, nil
		})
	env.OnActivity(a.CompleteTask, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CompleteTaskInput) (activities.CompleteTaskResult, error) {
			f.record("CompleteTask", in)
			return activities.CompleteTaskResult{StatusID: 3}, nil
		})
	env.OnActivity(a.SendReply, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return f.replyDelay }).Return(
		func(_ context.Context, in activities.SendReplyInput) (activities.SendReplyResult, error) {
			f.record("SendReply", in)
			return f.reply(in)
		})
}

// at runs fn d after the start of the workflow (in the test's virtual time).
func (f *fixture) at(d time.Duration, fn func()) { f.env.RegisterDelayedCallback(fn, d) }

func (f *fixture) signal(d time.Duration, name string, arg any) {
	f.at(d, func() { f.env.SignalWorkflow(name, arg) })
}

// message signals visitor (or agent) messages, each "id:text".
func (f *fixture) message(d time.Duration, key string, msgs ...Message) {
	f.signal(d, SignalMessage, MessageSignal{Key: key, ClientID: testClient, Messages: msgs})
}

func (f *fixture) started(d time.Duration, key string, v VisitorInfo) {
	f.signal(d, SignalVisitorInfo, VisitorInfoSignal{Key: key, ClientID: testClient, Started: true, Visitor: v})
}

func (f *fixture) closed(d time.Duration, key string, transcript ...Message) {
	f.signal(d, SignalChatClosed, ChatClosedSignal{Key: key, ClientID: testClient, Transcript: transcript})
}

func (f *fixture) replyComment(d time.Duration, commentID int64) {
	f.signal(d, SignalReply, ReplySignal{Key: fmt.Sprintf("planfix-comment:%d", commentID), CommentID: commentID, TaskID: 100})
}

// query returns the workflow's state now.
func (f *fixture) query() State {
	f.t.Helper()
	v, err := f.env.QueryWorkflow(QueryState)
	if err != nil {
		f.t.Fatalf("query state: %v", err)
	}
	var s State
	if err := v.Get(&s); err != nil {
		f.t.Fatalf("decode state: %v", err)
	}
	return s
}

// queryAt records the state at d.
func (f *fixture) queryAt(d time.Duration) *State {
	s := &State{}
	f.at(d, func() { *s = f.query() })
	return s
}

func (f *fixture) run(in ConversationInput) {
	f.env.ExecuteWorkflow(ConversationWorkflowName, in)
}

func (f *fixture) runDefault() {
	f.run(ConversationInput{IntegrationID: testIntegration, ChatID: testChat, ClientID: testClient})
}

// requireEnded asserts that the workflow completed without an error.
func (f *fixture) requireEnded() {
	f.t.Helper()
	if !f.env.IsWorkflowCompleted() {
		f.t.Fatal("the workflow did not complete")
	}
	if err := f.env.GetWorkflowError(); err != nil {
		f.t.Fatalf("workflow error: %v", err)
	}
}

func (f *fixture) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Name == name {
			n++
		}
	}
	return n
}

func (f *fixture) callsOf(name string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// names lists the calls in order, LoadSettings left out.
func (f *fixture) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Name != "LoadSettings" {
			out = append(out, c.Name)
		}
	}
	return out
}

// index returns the position of the n-th (from 0) call of name in names(), -1 if none.
func (f *fixture) index(name string, n int) int {
	for i, c := range f.names() {
		if c == name {
			if n == 0 {
				return i
			}
			n--
		}
	}
	return -1
}

// commentTexts lists the messages of each AddComments call as "id:text".
func (f *fixture) commentBatches() [][]string {
	var out [][]string
	for _, c := range f.callsOf("AddComments") {
		in := c.In.(activities.AddCommentsInput)
		var b []string
		for _, m := range in.Messages {
			b = append(b, m.ID+":"+m.Text)
		}
		out = append(out, b)
	}
	return out
}

// commented lists the messages written into the task, over every AddComments call, in
// the order they were written.
func (f *fixture) commented() []activities.ChatMessage {
	var out []activities.ChatMessage
	for _, c := range f.callsOf("AddComments") {
		out = append(out, c.In.(activities.AddCommentsInput).Messages...)
	}
	return out
}

// outOfOrder counts the messages written into the task after a message that the chat
// has later (by its time): what a reader of the task sees out of order.
func (f *fixture) outOfOrder() int {
	n := 0
	var latest time.Time
	for _, m := range f.commented() {
		if m.Time.Before(latest) {
			n++
		} else {
			latest = m.Time
		}
	}
	return n
}

func (f *fixture) notes() []activities.AddNoteInput {
	var out []activities.AddNoteInput
	for _, c := range f.callsOf("AddNote") {
		out = append(out, c.In.(activities.AddNoteInput))
	}
	return out
}

func (f *fixture) saved() []activities.SaveConversationInput {
	var out []activities.SaveConversationInput
	for _, c := range f.callsOf("SaveConversation") {
		out = append(out, c.In.(activities.SaveConversationInput))
	}
	return out
}

func msg(id, text string, at time.Time) Message {
	return Message{ID: id, Type: MessageTypeClient, Text: text, Time: at}
}

func agentMsg(id, name, text string, at time.Time) Message {
	return Message{ID: id, Type: MessageTypeAgent, Text: text, Time: at, AgentName: name}
}

func permanent(kind, text string) error {
	return temporal.NewNonRetryableApplicationError(text, kind, nil)
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func equalTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func equalSlices(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s =\n  %q\nwant\n  %q", what, got, want)
	}
}

func equalBatches(t *testing.T, got, want [][]string) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(x, y []string) bool { return slices.Equal(x, y) }) {
		t.Errorf("AddComments batches =\n  %q\nwant\n  %q", got, want)
	}
}

func contains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s = %q, want it to contain %q", what, s, sub)
	}
}

func isCanceled(err error) bool {
	var ce *temporal.CanceledError
	return errors.As(err, &ce)
}

// decodeContinueAsNewInput reads the input a continue-as-new passes to the next run.
func decodeContinueAsNewInput(can *workflow.ContinueAsNewError, in *ConversationInput) error {
	if can.Input == nil || len(can.Input.Payloads) != 1 {
		return fmt.Errorf("continue-as-new input: want one payload, got %v", can.Input)
	}
	return converter.GetDefaultDataConverter().FromPayload(can.Input.Payloads[0], in)
}
