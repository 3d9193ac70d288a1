package readme_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchpb "go.temporal.io/api/batch/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/readme"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/worker"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// readmePath is the README, from this package's directory.
var readmePath = filepath.Join("..", "..", "README.md")

// What the README's examples name. The stack below is set up so that they hold: the
// integration shop, the visitor V1 in Chatra, the conversation's task numbered 1042 and
// the employee's comment numbered 5012.
const (
	integrationID = "shop"
	chatID        = "CHAT1"
	clientID      = "V1"
	taskID        = 1042
	commentID     = 5012
	employeeText  = "Your order 1042 ships today, tracking number LV0001042."
)

var workflowID = workflows.ConversationWorkflowID(integrationID, chatID)

func blocks(t *testing.T) []readme.Block {
	t.Helper()
	bs, err := readme.Blocks(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// commands returns the commands of the README block name.
func commands(t *testing.T, bs []readme.Block, name string) []readme.Command {
	t.Helper()
	b, ok := readme.Find(bs, name)
	if !ok {
		t.Fatalf("README.md has no block marked readme-test: %s", name)
	}
	cmds, err := readme.Commands(b.Text)
	if err != nil {
		t.Fatalf("README.md:%d (%s): %v", b.Line, name, err)
	}
	if len(cmds) == 0 {
		t.Fatalf("README.md:%d (%s): no command", b.Line, name)
	}
	for _, c := range cmds {
		if len(c.Args) < 3 || c.Args[0] != "temporal" || c.Args[1] != "workflow" {
			t.Fatalf("README.md:%d (%s): %q is not a temporal workflow command", b.Line+c.Line, name, c)
		}
	}
	return cmds
}

// payloadType returns a pointer to the contract type a command's --input is.
func payloadType(c readme.Command) (any, error) {
	switch c.Args[2] {
	case "start":
		return new(workflows.ConversationInput), nil
	case "signal":
		name, _ := c.Flag("name")
		switch name {
		case workflows.SignalMessage:
			return new(workflows.MessageSignal), nil
		case workflows.SignalVisitorInfo:
			return new(workflows.VisitorInfoSignal), nil
		case workflows.SignalChatClosed:
			return new(workflows.ChatClosedSignal), nil
		case workflows.SignalReply:
			return new(workflows.ReplySignal), nil
		}
		return nil, fmt.Errorf("signal %q is not one of the workflow's", name)
	}
	return nil, fmt.Errorf("%s takes no input", c.Args[2])
}

// Every payload the README shows decodes into its contract type with no unknown field
// (so no key is silently ignored), carries an idempotency key, and targets the workflow
// its ids name; the README shows the start and each of the four signals; and no JSON
// outside the tested blocks is shown in "Operating conversations".
func TestReadmePayloadsMatchTheContract(t *testing.T) {
	bs := blocks(t)
	shown := map[string]bool{}
	for _, b := range bs {
		cmds, err := readme.Commands(b.Text)
		if err != nil {
			t.Fatalf("README.md:%d (%s): %v", b.Line, b.Name, err)
		}
		for _, c := range cmds {
			in, ok := c.Flag("input")
			if !ok {
				continue
			}
			where := fmt.Sprintf("README.md:%d (%s)", b.Line+c.Line, b.Name)
			v, err := payloadType(c)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			dec := json.NewDecoder(strings.NewReader(in))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil || dec.More() {
				t.Errorf("%s: %T does not take %s: %v", where, v, in, err)
				continue
			}
			id, _ := c.Flag("workflow-id")
			switch p := v.(type) {
			case *workflows.ConversationInput:
				shown["start"] = true
				if p.IntegrationID == "" || p.ChatID == "" || id != workflows.ConversationWorkflowID(p.IntegrationID, p.ChatID) {
					t.Errorf("%s: workflow id %q does not match the input's ids %+v", where, id, p)
				}
				if q, _ := c.Flag("task-queue"); q != workflows.DefaultTaskQueue {
					t.Errorf("%s: task queue %q, want %q", where, q, workflows.DefaultTaskQueue)
				}
				if typ, _ := c.Flag("type"); typ != workflows.ConversationWorkflowName {
					t.Errorf("%s: type %q, want %q", where, typ, workflows.ConversationWorkflowName)
				}
			case *workflows.MessageSignal:
				shown["message"] = p.Key != "" && len(p.Messages) > 0 && p.Messages[0].ID != "" && !p.Messages[0].Time.IsZero()
			case *workflows.VisitorInfoSignal:
				shown["visitor-info"] = p.Key != "" && p.Visitor.Email != ""
			case *workflows.ChatClosedSignal:
				shown["chat-closed"] = p.Key != "" && len(p.Transcript) > 0
			case *workflows.ReplySignal:
				if p.Key == "" {
					t.Errorf("%s: a reply without a key", where)
				}
				if p.CommentID > 0 {
					shown["reply by comment"] = p.Key == "planfix-comment:"+strconv.FormatInt(p.CommentID, 10)
				} else {
					shown["reply by hand"] = p.Text != "" && p.AuthorName != ""
				}
			}
		}
	}
	for _, want := range []string{"start", "message", "visitor-info", "chat-closed", "reply by comment", "reply by hand"} {
		if !shown[want] {
			t.Errorf("README.md shows no complete %s payload in a tested block", want)
		}
	}

	// No untested JSON in the section: every fenced block holding JSON is a tested one,
	// and no inline code holds a JSON object.
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, "\n## Operating conversations\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Operating conversations" section`)
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	tested := 0
	for _, m := range regexp.MustCompile("(?s)(<!-- readme-test: [^>]*-->\\s*)?```[a-z]*\\n(.*?)```").FindAllStringSubmatch(section, -1) {
		if m[1] != "" {
			tested++
			continue
		}
		if strings.Contains(m[2], `{"`) {
			t.Errorf("README.md shows JSON in an untested block:\n%s", m[2])
		}
	}
	outside := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(section, "")
	if strings.Contains(outside, `{"`) {
		t.Errorf("README.md's Operating conversations shows JSON outside the tested blocks")
	}
	if tested < 7 {
		t.Errorf("only %d tested blocks in Operating conversations", tested)
	}
}

// The README's examples, through the Go client: exactly the README's JSON as the
// payloads, on an embedded Temporal server with the real worker.
func TestReadmeOperatingGoClient(t *testing.T) {
	s := newStack(t)
	runOperating(t, s, &goExec{t: t, c: s.temporal, namespace: s.server.Namespace()})
}

// The README's examples, run by the temporal CLI exactly as printed (but for --yes on the
// batch cancel, which would otherwise ask), when the CLI is installed.
func TestReadmeOperatingTemporalCLI(t *testing.T) {
	bin, err := exec.LookPath("temporal")
	if err != nil {
		const why = "the temporal CLI is not on PATH (go install github.com/temporalio/cli/cmd/temporal@v1.5.1)"
		if os.Getenv("CI") != "" {
			t.Fatal(why + ": CI must run the README's examples through it (.ci/run installs it)")
		}
		t.Skip(why + "; only the Go client ran the README's examples")
	}
	s := newStack(t)
	runOperating(t, s, &cliExec{t: t, bin: bin, address: s.server.Address(), namespace: s.server.Namespace()})
}

// executor runs a README command and returns its output.
type executor interface {
	run(c readme.Command) string
}

// runOperating runs the README's blocks in the order an admin would, checking after
// each what it did in the sandbox, the store and Temporal.
func runOperating(t *testing.T, s *stack, x executor) {
	bs := blocks(t)
	ctx := context.Background()

	// Start by hand: the task (number 1042) with the visitor's message, the contact.
	start := commands(t, bs, "start")
	for _, c := range start {
		x.run(c)
	}
	st := s.waitState("the task with the first message", func(st workflows.State) bool { return st.MessagesAdded == 1 && st.TaskID != 0 })
	if st.TaskID != taskID || st.CustomerEmail != "ivan@example.com" || st.CustomerName != "Ivan Petrov" || st.Status != workflows.StatusOpen {
		t.Fatalf("state after start: %+v", st)
	}
	task, _ := s.sandbox.Planfix().Task(taskID)
	if !strings.Contains(task.Name, "Ivan Petrov") || !strings.Contains(task.Description, "Riga") || !strings.Contains(task.Description, "Safari") {
		t.Errorf("task 1042: %q %q", task.Name, task.Description)
	}
	if !s.taskHas("Hi, where is my order 1042?") {
		t.Errorf("task 1042 lacks the message: %+v", s.sandbox.Planfix().Comments(taskID))
	}
	contacts := s.sandbox.Planfix().Contacts()
	if i := slices.IndexFunc(contacts, func(c sandbox.PlanfixContact) bool { return c.Email == "ivan@example.com" }); i < 0 ||
		task.Assigner != "contact:"+strconv.FormatInt(contacts[i].ID, 10) {
		t.Errorf("the task's assigner %q is not the contact ivan@example.com (%+v)", task.Assigner, contacts)
	}

	// Finding it: each query of the README lists it (once visibility has caught up).
	for _, c := range commands(t, bs, "find") {
		s.wait(c.String(), 20*time.Second, func() (bool, string) {
			out := x.run(c)
			return strings.Contains(out, workflowID), out
		})
	}

	// Its customer waits for an answer (since the message's time, 10:00 UTC): each
	// waiting query of the README lists it.
	waiting := commands(t, bs, "waiting")
	for _, c := range waiting {
		s.wait(c.String(), 20*time.Second, func() (bool, string) {
			out := x.run(c)
			return strings.Contains(out, workflowID), out
		})
	}

	// Looking at it.
	for _, c := range commands(t, bs, "inspect") {
		out := x.run(c)
		var want []string
		switch c.Args[2] {
		case "describe":
			want = []string{workflows.ConversationWorkflowName, "Chat with Ivan Petrov on shop", "ivan@example.com"}
		case "show":
			want = []string{"WorkflowExecutionStarted", "WorkflowExecutionSignaled", "ActivityTaskCompleted"}
		case "query":
			want = []string{`"taskId":1042`, `"customerEmail":"ivan@example.com"`, `"status":"open"`, `"waitingSince":"2026-11-24T10:00:00Z"`}
		case "metadata":
			want = []string{"task #1042", "Ivan Petrov", "Customer waiting for an answer since 2026-11-24 10:00:00 UTC"}
		default:
			t.Fatalf("README inspect block: no check for %q", c)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the output lacks %q:\n%s", c, w, out)
			}
		}
	}

	// Replies: the employee's comment 5012, and one by hand; both reach the visitor in
	// Chatra as Anna Petrova (the integration sends as the employee).
	s.addEmployeeComment(commentID, employeeText)
	for _, c := range commands(t, bs, "reply") {
		x.run(c)
	}
	s.wait("both replies in Chatra", 30*time.Second, func() (bool, string) {
		return len(s.sandbox.Chatra().Messages()) >= 2, fmt.Sprintf("%+v", s.sandbox.Chatra().Messages())
	})
	var got []string
	for _, m := range s.sandbox.Chatra().Messages() {
		got = append(got, m.ClientID+" "+m.AgentName+": "+m.Text)
	}
	if want := []string{"V1 Anna Petrova: " + employeeText, "V1 Anna Petrova: We shipped it today."}; !slices.Equal(got, want) {
		t.Errorf("Chatra messages =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	s.waitState("replies sent", func(st workflows.State) bool { return st.RepliesSent == 2 })
	// Answered: no longer waiting.
	for _, c := range waiting {
		s.wait(c.String()+" without it", 20*time.Second, func() (bool, string) {
			out := x.run(c)
			return !strings.Contains(out, workflowID), out
		})
	}

	// The chat closed: the transcript's new message is added, the task completed.
	for _, c := range commands(t, bs, "close") {
		x.run(c)
	}
	st = s.waitState("closed", func(st workflows.State) bool { return st.Status == workflows.StatusClosed })
	task, _ = s.sandbox.Planfix().Task(taskID)
	if task.StatusID != sandbox.PlanfixStatusCompleted || !s.taskHas("Thanks, bye!") || st.TranscriptAdded != 1 {
		t.Errorf("after chat-closed: task status %d, transcript added %d, comments %+v", task.StatusID, st.TranscriptAdded, s.sandbox.Planfix().Comments(taskID))
	}

	// Cancelled: a comment in the task that the sync stopped, cancelled in the store.
	for _, c := range commands(t, bs, "cancel") {
		x.run(c)
	}
	s.waitStatus(enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
	s.wait("the note that the sync stopped", 10*time.Second, func() (bool, string) {
		return s.taskHas("sync of this task with its Chatra chat was stopped"), fmt.Sprintf("%+v", s.sandbox.Planfix().Comments(taskID))
	})
	conv, err := s.db.GetConversation(ctx, integrationID, chatID)
	if err != nil || conv.Status != postgres.StatusCancelled {
		t.Errorf("store: %+v %v, want status cancelled", conv, err)
	}
	task, _ = s.sandbox.Planfix().Task(taskID)
	if task.StatusID != sandbox.PlanfixStatusCompleted {
		t.Errorf("cancelling changed the task's status to %d", task.StatusID)
	}

	// Terminated: started again by hand (the README's start), then terminated.
	x.run(start[0])
	s.waitStatus(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING)
	for _, c := range commands(t, bs, "terminate") {
		x.run(c)
	}
	s.waitStatus(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED)

	// Cancelled by query: started again, listed as open, then cancelled by the batch.
	x.run(start[0])
	many := commands(t, bs, "cancel-many")
	q, ok := many[0].Flag("query")
	if !ok {
		t.Fatalf("%s has no --query", many[0])
	}
	s.wait("the new run listed by "+q, 20*time.Second, func() (bool, string) {
		ids := s.list(q)
		return slices.Contains(ids, workflowID), fmt.Sprint(ids)
	})
	for _, c := range many {
		x.run(c)
	}
	s.waitStatus(enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
}

// ---- the stack ----

// stack is an embedded Temporal server with the bridge's worker on the task queue the
// README names, a fresh PostgreSQL schema with the integration shop, and the sandbox.
type stack struct {
	t        *testing.T
	server   *devserver.Server
	temporal client.Client
	db       *postgres.DB
	sandbox  *sandbox.Server
	filler   int64 // a contact whose comments move Planfix's comment numbers on
}

const sealKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)

	db, _ := postgrestest.New(t)
	sealer, err := secrets.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewIntegrationStore(db, sealer)

	sb := sandbox.New(sandbox.Options{PlanfixInterval: -1}) // the limiter below spaces requests
	if err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	if err := sb.Chatra().PutClient(chatra.ClientCard{ID: clientID, DisplayedName: "Visitor 1"}); err != nil {
		t.Fatal(err)
	}
	// Older tasks, so that the conversation's task is number 1042 as in the README.
	for sb.Planfix().AddTask(sandbox.PlanfixTask{Name: "An older task"}) < taskID-1 {
	}
	filler := sb.Planfix().AddContact(sandbox.PlanfixContact{Name: "Older", Lastname: "Contact"})

	integ := &chatrabridge.Integration{
		ID: integrationID, Name: "Example shop",
		Chatra: chatrabridge.ChatraSettings{APIURL: sb.ChatraURL(), PublicKey: sandbox.DefaultChatraPublicKey,
			SecretKey: secrets.String(sandbox.DefaultChatraSecretKey), HasSecretKey: true,
			AgentEmail: "support@example.com", AgentName: "Example shop"},
		Planfix: chatrabridge.PlanfixSettings{AccountURL: sb.PlanfixURL(), Token: secrets.String(sandbox.DefaultPlanfixToken), HasToken: true,
			TaskTemplateID: sandbox.PlanfixTaskTemplateID, ContactTemplateID: sandbox.PlanfixContactTemplateID,
			CompletedStatusID: sandbox.PlanfixStatusCompleted, AssigneeUserIDs: []int64{5}, EmployeeUserIDs: []int64{5, 6}},
		Options: chatrabridge.Options{SendAsEmployee: true},
	}
	integ.Normalize()
	if err := integ.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateIntegration(ctx, integ); err != nil {
		t.Fatal(err)
	}

	c, err := client.Dial(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	acts := activities.New(db, store, postgres.NewRateLimiter(db, 20*time.Millisecond), nil)
	w := worker.New(c, worker.TaskQueue(workflows.DefaultTaskQueue), acts, sdkworker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &stack{t: t, server: srv, temporal: c, db: db, sandbox: sb, filler: filler}
}

// addEmployeeComment writes Anna Petrova's comment in the task as number id, as the
// README's reply example names it.
func (s *stack) addEmployeeComment(id int64, text string) {
	s.t.Helper()
	pf := s.sandbox.Planfix()
	for {
		n, err := pf.AddComment(sandbox.PlanfixComment{ContactID: s.filler, Description: "an older comment"})
		if err != nil {
			s.t.Fatal(err)
		}
		if n >= id-1 {
			if n > id-1 {
				s.t.Fatalf("Planfix's comments are already past %d", id)
			}
			break
		}
	}
	n, err := pf.AddComment(sandbox.PlanfixComment{TaskID: taskID, Owner: "user:5", Description: "<p>" + text + "</p>"})
	if err != nil || n != id {
		s.t.Fatalf("the employee's comment is %d (%v), want %d", n, err, id)
	}
}

// taskHas reports whether a comment of task 1042 contains text.
func (s *stack) taskHas(text string) bool {
	for _, c := range s.sandbox.Planfix().Comments(taskID) {
		if strings.Contains(c.Description, text) {
			return true
		}
	}
	return false
}

func (s *stack) wait(what string, timeout time.Duration, cond func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: timed out after %s; last: %s", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *stack) waitState(what string, ok func(workflows.State) bool) workflows.State {
	s.t.Helper()
	var st workflows.State
	s.wait(what, 30*time.Second, func() (bool, string) {
		v, err := s.temporal.QueryWorkflow(context.Background(), workflowID, "", workflows.QueryState)
		if err != nil {
			return false, err.Error()
		}
		st = workflows.State{} // a field the answer leaves out (omitzero) is zero, not the last answer's
		if err := v.Get(&st); err != nil {
			return false, err.Error()
		}
		return ok(st), fmt.Sprintf("%+v", st)
	})
	return st
}

func (s *stack) waitStatus(want enumspb.WorkflowExecutionStatus) {
	s.t.Helper()
	s.wait("workflow status "+want.String(), 30*time.Second, func() (bool, string) {
		d, err := s.temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
		if err != nil {
			return false, err.Error()
		}
		got := d.GetWorkflowExecutionInfo().GetStatus()
		return got == want, got.String()
	})
}

func (s *stack) list(query string) []string {
	s.t.Helper()
	resp, err := s.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: s.server.Namespace(), Query: query})
	if err != nil {
		s.t.Fatalf("list %s: %v", query, err)
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

// ---- the temporal CLI ----

type cliExec struct {
	t                  *testing.T
	bin                string
	address, namespace string
}

func (x *cliExec) run(c readme.Command) string {
	x.t.Helper()
	args := slices.Clone(c.Args[1:])
	if _, ok := c.Flag("query"); ok && c.Args[2] == "cancel" {
		args = append(args, "--yes") // the README says: it asks to confirm
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.bin, args...)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+x.address, "TEMPORAL_NAMESPACE="+x.namespace)
	out, err := cmd.CombinedOutput()
	if err != nil {
		x.t.Fatalf("%s: %v\n%s", c, err, out)
	}
	return string(out)
}

// ---- the Go client ----

// goExec does what each README command does, through the Go client, with the
// command's JSON as the payload byte for byte.
type goExec struct {
	t         *testing.T
	c         client.Client
	namespace string
}

// rawJSON is a payload holding exactly s, as the temporal CLI sends --input.
func rawJSON(s string) converter.RawValue {
	return converter.NewRawValue(&commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)}, Data: []byte(s)})
}

func (x *goExec) run(c readme.Command) string {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	flags := map[string]string{}
	for i := 3; i < len(c.Args); i += 2 {
		name, ok := strings.CutPrefix(c.Args[i], "--")
		if !ok || i+1 >= len(c.Args) {
			x.t.Fatalf("%s: the Go translation expects --flag value pairs", c)
		}
		flags[name] = c.Args[i+1]
	}
	known := map[string][]string{
		"start":     {"task-queue", "type", "workflow-id", "static-summary", "input"},
		"signal":    {"workflow-id", "name", "input"},
		"query":     {"workflow-id", "type"},
		"describe":  {"workflow-id"},
		"show":      {"workflow-id"},
		"metadata":  {"workflow-id"},
		"list":      {"query"},
		"cancel":    {"workflow-id", "query", "reason"},
		"terminate": {"workflow-id", "reason"},
	}[c.Args[2]]
	for name := range flags {
		if !slices.Contains(known, name) {
			x.t.Fatalf("%s: the Go translation does not know --%s of %s", c, name, c.Args[2])
		}
	}
	id := flags["workflow-id"]
	var out bytes.Buffer
	var err error
	switch c.Args[2] {
	case "start":
		var run client.WorkflowRun
		run, err = x.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: flags["task-queue"], StaticSummary: flags["static-summary"]},
			flags["type"], rawJSON(flags["input"]))
		if err == nil {
			fmt.Fprintf(&out, "started %s %s\n", run.GetID(), run.GetRunID())
		}
	case "signal":
		err = x.c.SignalWorkflow(ctx, id, "", flags["name"], rawJSON(flags["input"]))
	case "query":
		var v converter.EncodedValue
		if v, err = x.c.QueryWorkflow(ctx, id, "", flags["type"]); err == nil {
			var raw json.RawMessage
			if err = v.Get(&raw); err == nil {
				out.Write(raw)
			}
		}
	case "describe":
		var d *workflowservice.DescribeWorkflowExecutionResponse
		if d, err = x.c.DescribeWorkflowExecution(ctx, id, ""); err == nil {
			info := d.GetWorkflowExecutionInfo()
			fmt.Fprintf(&out, "Type %s\nStatus %s\n", info.GetType().GetName(), info.GetStatus())
			if p := d.GetExecutionConfig().GetUserMetadata().GetSummary(); p != nil {
				var summary string
				_ = converter.GetDefaultDataConverter().FromPayload(p, &summary)
				fmt.Fprintf(&out, "StaticSummary %q\n", summary)
			}
			for k, p := range info.GetSearchAttributes().GetIndexedFields() {
				fmt.Fprintf(&out, "%s %s\n", k, p.GetData())
			}
			for _, pa := range d.GetPendingActivities() {
				fmt.Fprintf(&out, "Pending %s attempt %d\n", pa.GetActivityType().GetName(), pa.GetAttempt())
			}
		}
	case "show":
		it := x.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, nerr := it.Next()
			if nerr != nil {
				err = nerr
				break
			}
			fmt.Fprintf(&out, "%d %s\n", e.GetEventId(), e.GetEventType())
		}
	case "metadata":
		var v converter.EncodedValue
		if v, err = x.c.QueryWorkflow(ctx, id, "", "__temporal_workflow_metadata"); err == nil {
			var md sdkpb.WorkflowMetadata
			if err = v.Get(&md); err == nil {
				out.WriteString(md.GetCurrentDetails())
			}
		}
	case "list":
		var resp *workflowservice.ListWorkflowExecutionsResponse
		if resp, err = x.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: x.namespace, Query: flags["query"]}); err == nil {
			for _, e := range resp.GetExecutions() {
				fmt.Fprintf(&out, "%s %s\n", e.GetExecution().GetWorkflowId(), e.GetStatus())
			}
		}
	case "cancel":
		if q, ok := flags["query"]; ok {
			_, err = x.c.WorkflowService().StartBatchOperation(ctx, &workflowservice.StartBatchOperationRequest{
				Namespace: x.namespace, VisibilityQuery: q, Reason: flags["reason"],
				JobId:     fmt.Sprintf("readme-test-%d", time.Now().UnixNano()),
				Operation: &workflowservice.StartBatchOperationRequest_CancellationOperation{CancellationOperation: &batchpb.BatchOperationCancellation{Identity: "readme-test"}},
			})
		} else {
			err = x.c.CancelWorkflow(ctx, id, "")
		}
	case "terminate":
		err = x.c.TerminateWorkflow(ctx, id, "", flags["reason"])
	default:
		x.t.Fatalf("%s: no Go translation", c)
	}
	if err != nil {
		x.t.Fatalf("%s: %v", c, err)
	}
	return out.String()
}
