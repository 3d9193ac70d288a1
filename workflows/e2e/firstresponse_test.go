package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// waitingIDs lists the conversations visibility has as waiting for an answer, by the
// query the README gives (CustomerWaitingSince set, the workflow running).
func (s *stack) waitingIDs() []string {
	s.t.Helper()
	q := fmt.Sprintf(`ChatraIntegration=%q AND ExecutionStatus="Running" AND CustomerWaitingSince IS NOT NULL`, s.integ.ID)
	resp, err := s.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: q})
	if err != nil {
		s.t.Fatalf("list %s: %v", q, err)
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

// waitingSince returns the CustomerWaitingSince search attribute of the conversation,
// and false when it is not set.
func (s *stack) waitingSince(id string) (time.Time, bool) {
	s.t.Helper()
	d, err := s.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		s.t.Fatal(err)
	}
	p, ok := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SAWaitingSince.GetName()]
	if !ok || string(p.GetData()) == "null" {
		return time.Time{}, false
	}
	at, err := time.Parse(`"`+time.RFC3339Nano+`"`, string(p.GetData()))
	if err != nil {
		s.t.Fatalf("CustomerWaitingSince = %s: %v", p.GetData(), err)
	}
	return at, true
}

// A customer waits past the integration's first-response target (here 2 seconds): a
// reminder comment lands in the task, addressed to its assignees, quoting the message;
// the conversation is listed as waiting (CustomerWaitingSince) until an employee's
// reply reaches the chat, and no reminder follows the answer.
func TestFirstResponseReminder(t *testing.T) {
	s := newStack(t, chatrabridge.Options{LateReplyWindow: chatrabridge.Duration(time.Second),
		FirstResponse: chatrabridge.FirstResponse{Target: chatrabridge.Duration(2 * time.Second)}})
	chat := "CHAT-WAITING"
	id := workflows.ConversationWorkflowID(s.integ.ID, chat)
	m1 := clientMessage("M1", "Hi, is my order on its way?", time.Now().UTC())
	s.signal(chat, workflows.SignalVisitorInfo, workflows.VisitorInfoSignal{Key: "start-1", ClientID: clientID, Started: true, Visitor: ivan})
	s.signal(chat, workflows.SignalMessage, workflows.MessageSignal{Key: "frag-1", ClientID: clientID, Messages: []workflows.Message{m1}})

	st := s.waitState(chat, "the reminder", func(st workflows.State) bool { return st.RemindersSent == 1 })
	task := st.TaskID
	if want := m1.Time.Truncate(time.Second); !st.WaitingSince.Equal(want) {
		t.Errorf("state: waiting since %s, want %s", st.WaitingSince, want)
	}
	var reminders []sandbox.PlanfixComment
	for _, c := range s.planfix.Comments(task) {
		if strings.Contains(c.Description, "Reminder") {
			reminders = append(reminders, c)
		}
	}
	if len(reminders) != 1 {
		t.Fatalf("task comments = %q, want one reminder", s.comments(task))
	}
	r := reminders[0]
	for _, want := range []string{"Reminder 1 of 1: Ivan has been waiting for an answer for", "the first-response target is 2 s",
		"Hi, is my order on its way?"} {
		if !strings.Contains(r.Description, want) {
			t.Errorf("reminder %q lacks %q", r.Description, want)
		}
	}
	if !slices.Equal(r.Recipients, []string{"role:assignee"}) || r.Owner != "user:"+strconv.Itoa(sandbox.PlanfixRobotUserID) {
		t.Errorf("reminder by %s to %q, want by the bridge's user to the task's assignees", r.Owner, r.Recipients)
	}

	s.wait("listed as waiting", func() bool { return slices.Contains(s.waitingIDs(), id) })
	if since, ok := s.waitingSince(id); !ok || !since.Equal(st.WaitingSince) {
		t.Errorf("CustomerWaitingSince = %s (%v), want %s", since, ok, st.WaitingSince)
	}

	// An employee answers in Planfix: the wait is over.
	comment := s.employeeComment(task, 5, "<p>It left the warehouse this morning.</p>")
	s.signal(chat, workflows.SignalReply, replySignal(task, comment))
	st = s.waitState(chat, "answered", func(st workflows.State) bool { return st.RepliesSent == 1 && st.WaitingSince.IsZero() })
	s.wait("no longer listed as waiting", func() bool { return !slices.Contains(s.waitingIDs(), id) })
	if since, ok := s.waitingSince(id); ok {
		t.Errorf("CustomerWaitingSince = %s after the answer, want it unset", since)
	}

	s.signal(chat, workflows.SignalChatClosed, workflows.ChatClosedSignal{Key: "close-1", ClientID: clientID, Transcript: []workflows.Message{m1}})
	s.ended(chat)
	s.saveHistories("first_response_reminder", id)
	if st := s.state(chat); st.RemindersSent != 0 || st.Status != workflows.StatusEnded {
		t.Errorf("final state = %+v", st)
	}
	n := 0
	for _, c := range s.comments(task) {
		if strings.Contains(c, "Reminder") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d reminders in the task, want 1 (none after the answer): %q", n, s.comments(task))
	}
}
