package api_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// maxPayloadBytes is Temporal's default limit on one payload (2 MiB) less room for the
// command around it, as the API and the workflow bound theirs.
const maxPayloadBytes = 2<<20 - 64<<10

// checkActivityInputs runs the signals a webhook was mapped to (calls) through the real
// ConversationWorkflow in the test environment, the chat then closed and a reply
// written, every activity answering success, and checks each activity input: it must
// be storable in PostgreSQL (every string valid UTF-8 without NUL) and fit in a Temporal
// payload.
func checkActivityInputs(t *testing.T, calls []fakeCall) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.ConversationWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	env.RegisterActivity(&activities.Activities{})

	var (
		mu     sync.Mutex
		inputs []any
	)
	record := func(in any) {
		mu.Lock()
		defer mu.Unlock()
		inputs = append(inputs, in)
	}
	var a *activities.Activities
	env.OnActivity(a.LoadSettings, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LoadSettingsInput) (activities.Settings, error) {
		record(in)
		return activities.Settings{Name: "Shop", AccountURL: "https://acme.planfix.com", LateReplyWindow: time.Hour, IdleTimeout: time.Hour}, nil
	})
	env.OnActivity(a.EnsureContact, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.EnsureContactInput) (activities.EnsureContactResult, error) {
		record(in)
		return activities.EnsureContactResult{ContactID: 7, How: activities.ContactCreated}, nil
	})
	env.OnActivity(a.FindActiveTask, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FindActiveTaskInput) (activities.FindActiveTaskResult, error) {
		record(in)
		return activities.FindActiveTaskResult{}, nil
	})
	env.OnActivity(a.CreateTask, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CreateTaskInput) (activities.CreateTaskResult, error) {
		record(in)
		return activities.CreateTaskResult{TaskID: 100}, nil
	})
	env.OnActivity(a.AddContactAction, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AddContactActionInput) (activities.AddContactActionResult, error) {
		record(in)
		return activities.AddContactActionResult{CommentID: 900}, nil
	})
	env.OnActivity(a.WriteVisitorNotes, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WriteVisitorNotesInput) error {
		record(in)
		return nil
	})
	env.OnActivity(a.SaveConversation, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SaveConversationInput) (activities.SaveConversationResult, error) {
		record(in)
		return activities.SaveConversationResult{}, nil
	})
	env.OnActivity(a.UpdateContact, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateContactInput) error {
		record(in)
		return nil
	})
	env.OnActivity(a.AddComments, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AddCommentsInput) (activities.AddCommentsResult, error) {
		record(in)
		return activities.AddCommentsResult{CommentIDs: []int64{5001}}, nil
	})
	env.OnActivity(a.AddNote, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AddNoteInput) (activities.AddNoteResult, error) {
		record(in)
		return activities.AddNoteResult{CommentID: 6001}, nil
	})
	env.OnActivity(a.CompleteTask, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CompleteTaskInput) (activities.CompleteTaskResult, error) {
		record(in)
		return activities.CompleteTaskResult{StatusID: 3}, nil
	})
	env.OnActivity(a.SendReply, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SendReplyInput) (activities.SendReplyResult, error) {
		record(in)
		return activities.SendReplyResult{Outcome: activities.ReplySent}, nil
	})

	var input workflows.ConversationInput
	for i, c := range calls {
		input = c.args[0].(workflows.ConversationInput)
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(c.signal, c.arg) }, time.Duration(i+1)*time.Second)
	}
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalReply, workflows.ReplySignal{Key: "planfix-comment:77", CommentID: 77, TaskID: 100})
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalChatClosed, workflows.ChatClosedSignal{Key: "fuzz-close", ClientID: input.ClientID})
	}, 2*time.Minute)
	env.ExecuteWorkflow(workflows.ConversationWorkflowName, input)
	if !env.IsWorkflowCompleted() {
		t.Fatal("the conversation did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("the conversation failed: %v", err)
	}
	if len(inputs) < 4 {
		t.Fatalf("only %d activities ran", len(inputs))
	}
	for _, in := range inputs {
		name := reflect.TypeOf(in).Name()
		p, err := converter.GetDefaultDataConverter().ToPayload(in)
		if err != nil {
			t.Fatalf("%s cannot be a payload: %v", name, err)
		}
		if len(p.GetData()) > maxPayloadBytes {
			t.Fatalf("%s is %d bytes, over a payload's %d", name, len(p.GetData()), maxPayloadBytes)
		}
		walkStrings(reflect.ValueOf(in), func(s string) {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("%s carries %q, which PostgreSQL refuses", name, s)
			}
		})
	}
}

// walkStrings calls fn with every string in v (fields, slices, map keys and values).
func walkStrings(v reflect.Value, fn func(string)) {
	switch v.Kind() {
	case reflect.String:
		fn(v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walkStrings(v.Field(i), fn)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkStrings(v.Index(i), fn)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			walkStrings(k, fn)
			walkStrings(v.MapIndex(k), fn)
		}
	}
}
