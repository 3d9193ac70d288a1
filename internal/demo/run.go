package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The scripted chat. Texts avoid characters that HTML escapes, so that what the task
// shows reads the same as what the visitor typed.
const (
	visitorFirstName = "Ivan"
	visitorLastName  = "Petrov"
	visitorPhone     = "+371 2000 1042"
	employeeOwner    = "user:5" // Anna Petrova, allowed on the demo integration's channel
	employeeName     = "Anna Petrova"
	replyPlain       = "Hi Ivan! Your order 1042 left our warehouse today, tracking number LV0001042. It should arrive on Thursday."
	replyHTML        = "<p>Hi Ivan! Your order 1042 left our warehouse today, tracking number <b>LV0001042</b>.</p><p>It should arrive on Thursday.</p>"
	closingText      = "Great, thank you!" // only in the transcript: its fragment "was lost"
	firstMessage     = "Hi! I ordered a blue kettle last week, order 1042."
	secondMessage    = "The tracking page still says processing. Could you check?"
)

// pollEvery is how often a wait looks again.
const pollEvery = 300 * time.Millisecond

// run is one play of the script.
type run struct {
	dev     *app.DevDemo
	tc      client.Client
	dc      converter.DataConverter // decodes what the workflows encrypted
	out     io.Writer
	http    *http.Client
	started time.Time

	id, chatID, clientID, email, displayedName string
	workflowID                                 string
	messages                                   []chatra.Message // the visitor's, as sent in fragments
	reply                                      chatra.Message   // what the visitor received
	taskID, employeeCommentID                  int64
	result                                     *Result
	lastStatus                                 int // of the last HTTP answer, for poll
}

func newRun(dev *app.DevDemo, tc client.Client, o Options) *run {
	now := time.Now()
	id := newRunID(now)
	r := &run{
		dev: dev, tc: tc, out: o.Out, started: now,
		http:          &http.Client{Timeout: 15 * time.Second},
		id:            id,
		chatID:        "demo-chat-" + id,
		clientID:      "demo-visitor-" + id,
		email:         "ivan.petrov+" + id + "@example.com",
		displayedName: "Visitor " + id[len(id)-4:],
	}
	r.workflowID = conversationID(dev, r.chatID)
	r.result = &Result{
		WorkflowID: r.workflowID, ChatID: r.chatID, ClientID: r.clientID,
		CustomerName: visitorFirstName + " " + visitorLastName, CustomerEmail: r.email, CustomerMessage: firstMessage,
		UIURL: dev.UIURL, WorkflowURL: workflowURL(dev.UIURL, dev.Namespace, r.workflowID),
	}
	return r
}

// play runs the steps in order and prints the report. It stops at the first step that
// fails, returning a *StepError.
func (r *run) play(ctx context.Context) (*Result, error) {
	r.printf("chatrabridge demo: a scripted chat on integration %q (chat %s)\n", r.dev.ID, r.chatID)
	steps := []struct {
		name string
		do   func(context.Context) (string, error)
	}{
		{StepReady, r.checkReady},
		{StepCard, r.seedCard},
		{StepStarted, r.chatStarted},
		{StepFragment1, r.fragment(1, firstMessage)},
		{StepFragment2, r.fragment(2, secondMessage)},
		{StepIntroduce, r.introduce},
		{StepTask, r.waitTask},
		{StepComments, r.waitComments},
		{StepEmployee, r.employeeReply},
		{StepReply, r.waitReply},
		{StepTranscript, r.transcript},
		{StepCompleted, r.waitCompleted},
	}
	for _, s := range steps {
		detail, err := s.do(ctx)
		elapsed := time.Since(r.started).Seconds()
		if err != nil {
			r.printf("  %5.1fs  FAIL  %s: %v\n", elapsed, s.name, err)
			return r.result, &StepError{Step: s.name, Err: err}
		}
		if detail != "" {
			detail = ": " + detail
		}
		r.printf("  %5.1fs  ok    %s%s\n", elapsed, s.name, detail)
	}
	if err := r.report(ctx); err != nil {
		return r.result, err
	}
	r.result.Passed = true
	r.printf("\nThe demo passed: the task was created, got the visitor's messages, the reply reached the visitor, and the task was completed.\n")
	return r.result, nil
}

func (r *run) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(r.out, format, args...)
}

// ---- the steps ----

func (r *run) checkReady(ctx context.Context) (string, error) {
	u := apiBase(r.dev.ChatraWebhookURL) + "/readyz"
	status, body, err := r.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("the bridge's API does not answer at %s: is `chatrabridge dev` running? (%w)", u, err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("%s answered %d %s", u, status, oneLine(string(body)))
	}
	if _, _, err := r.do(ctx, http.MethodGet, r.dev.SandboxURL+sandbox.InspectPrefix+"/state", nil); err != nil {
		return "", fmt.Errorf("the sandbox does not answer at %s (is dev running without --no-sandbox?): %w", r.dev.SandboxURL, err)
	}
	return u, nil
}

// card is the visitor card as Chatra knows it; introduced adds what the visitor told.
func (r *run) card(introduced bool) map[string]any {
	c := map[string]any{
		"id":            r.clientID,
		"chatId":        r.chatID,
		"displayedName": r.displayedName,
		"info": map[string]any{
			"city": "Riga", "country": "Latvia", "ip": "203.0.113.42",
			"browser": "Chrome 131", "os": "Windows 11", "device": "Desktop",
			"referrer": "https://www.google.com/",
			"pages":    []string{"https://shop.example/", "https://shop.example/kettles/blue-kettle", "https://shop.example/orders/1042"},
		},
	}
	if introduced {
		c["name"] = visitorFirstName + " " + visitorLastName
		c["email"] = r.email
		c["phone"] = visitorPhone
	}
	return c
}

func (r *run) seedCard(ctx context.Context) (string, error) {
	card := r.card(false)
	delete(card, "chatId") // a stored card has no chat
	u := r.dev.SandboxURL + sandbox.InspectPrefix + "/chatra/clients/" + r.clientID
	status, body, err := r.do(ctx, http.MethodPut, u, card)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("PUT %s answered %d %s", u, status, oneLine(string(body)))
	}
	return "client " + r.clientID + " (" + r.displayedName + ")", nil
}

func (r *run) chatStarted(ctx context.Context) (string, error) {
	if err := r.chatraWebhook(ctx, chatra.EventChatStarted, nil, r.card(false)); err != nil {
		return "", err
	}
	return r.displayedName + " from Riga, Latvia (Chrome 131 on Windows 11) opened the chat", nil
}

func (r *run) newMessage(n int, text string) chatra.Message {
	return chatra.Message{ID: fmt.Sprintf("demo-msg-%s-%d", r.id, n), Type: chatra.MessageTypeClient, Text: text,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

func (r *run) fragment(n int, text string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		m := r.newMessage(n, text)
		if err := r.chatraWebhook(ctx, chatra.EventChatFragment, []chatra.Message{m}, r.card(false)); err != nil {
			return "", err
		}
		r.messages = append(r.messages, m)
		return strconv.Quote(text), nil
	}
}

func (r *run) introduce(ctx context.Context) (string, error) {
	who := fmt.Sprintf("%s %s, %s, %s", visitorFirstName, visitorLastName, r.email, visitorPhone)
	m := r.newMessage(3, "I am "+who+", in case you need to call me.")
	if err := r.chatraWebhook(ctx, chatra.EventChatFragment, []chatra.Message{m}, r.card(true)); err != nil {
		return "", err
	}
	r.messages = append(r.messages, m)
	return who, nil
}

func (r *run) waitTask(ctx context.Context) (string, error) {
	var task *sandbox.PlanfixTaskState
	err := r.poll(ctx, func() (bool, string) {
		st, err := r.state(ctx)
		if err != nil {
			return false, "the workflow's state query failed: " + err.Error()
		}
		if st.TaskID == 0 {
			return false, fmt.Sprintf("the workflow reports no task yet (status %s, last error %q)", st.Status, st.LastError)
		}
		snap, err := r.sandboxState(ctx)
		if err != nil {
			return false, err.Error()
		}
		if task = findTask(snap, st.TaskID); task == nil {
			return false, fmt.Sprintf("the workflow names task #%d, which the sandbox Planfix does not have", st.TaskID)
		}
		return true, ""
	})
	if err != nil {
		return "", err
	}
	r.taskID, r.result.TaskID = task.ID, task.ID
	return fmt.Sprintf("task #%d %q", task.ID, task.Name), nil
}

func (r *run) waitComments(ctx context.Context) (string, error) {
	n := 0
	err := r.poll(ctx, func() (bool, string) {
		snap, err := r.sandboxState(ctx)
		if err != nil {
			return false, err.Error()
		}
		missing := missingTexts(findTask(snap, r.taskID), messageTexts(r.messages))
		if len(missing) > 0 {
			return false, fmt.Sprintf("task #%d lacks %d of the %d messages, e.g. %q", r.taskID, len(missing), len(r.messages), missing[0])
		}
		n = len(findTask(snap, r.taskID).Comments)
		return true, ""
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d messages in %d comment(s)", len(r.messages), n), nil
}

func (r *run) employeeReply(ctx context.Context) (string, error) {
	u := fmt.Sprintf("%s%s/planfix/tasks/%d/comments", r.dev.SandboxURL, sandbox.InspectPrefix, r.taskID)
	status, body, err := r.do(ctx, http.MethodPost, u, map[string]any{"owner": employeeOwner, "description": replyHTML})
	if err != nil {
		return "", err
	}
	var created struct {
		ID int64 `json:"id"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &created) != nil || created.ID == 0 {
		return "", fmt.Errorf("POST %s answered %d %s", u, status, oneLine(string(body)))
	}
	r.employeeCommentID = created.ID

	// What the Planfix scenario sends. The conversation is findable by its task once the
	// workflow has saved it; until then the bridge answers {"ignored":...}, so ask again.
	payload := map[string]any{"taskId": r.taskID, "commentId": created.ID}
	var refused error // a 200 that refuses for good (Planfix is never answered otherwise)
	err = r.poll(ctx, func() (bool, string) {
		status, body, err := r.do(ctx, http.MethodPost, r.dev.PlanfixWebhookURL, payload)
		switch {
		case err != nil:
			return false, "the Planfix webhook: " + err.Error()
		case status >= 500 || status == http.StatusTooManyRequests:
			return false, fmt.Sprintf("the Planfix webhook answered %d %s", status, oneLine(string(body)))
		case status != http.StatusOK:
			return false, fmt.Sprintf("the Planfix webhook answered %d %s", status, oneLine(string(body)))
		}
		var ans struct {
			OK         bool   `json:"ok"`
			WorkflowID string `json:"workflowId"`
			Ignored    string `json:"ignored"`
			Refused    string `json:"refused"`
			Code       string `json:"code"`
		}
		_ = json.Unmarshal(body, &ans)
		if ans.Refused != "" && ans.Code != "" {
			refused = fmt.Errorf("the Planfix webhook refused the request for good (%s): %s", ans.Code, ans.Refused)
			return true, ""
		}
		if ans.Ignored != "" {
			return false, "the Planfix webhook answered 200 but ignored the comment: " + ans.Ignored
		}
		if !ans.OK || ans.WorkflowID != r.workflowID {
			return false, "the Planfix webhook answered " + oneLine(string(body))
		}
		return true, ""
	}, permanentOn(func(status int) bool { return status >= 400 && status < 500 && status != http.StatusTooManyRequests }))
	if err == nil {
		err = refused
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s wrote comment #%d; the webhook accepted {\"taskId\":%d,\"commentId\":%d}", employeeName, created.ID, r.taskID, created.ID), nil
}

func (r *run) waitReply(ctx context.Context) (string, error) {
	err := r.poll(ctx, func() (bool, string) {
		snap, err := r.sandboxState(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, m := range snap.Chatra.Messages {
			if m.ClientID == r.clientID && strings.Contains(normalizeSpace(m.Text), replyPlain) {
				r.reply = m
				return true, ""
			}
		}
		sent := 0
		for _, m := range snap.Chatra.Messages {
			if m.ClientID == r.clientID {
				sent++
			}
		}
		return false, fmt.Sprintf("the sandbox Chatra has %d message(s) to visitor %s, none with the reply", sent, r.clientID)
	})
	if err != nil {
		return "", err
	}
	r.result.ReplyReceived = r.reply.Text
	from := r.reply.AgentName
	if from == "" {
		from = "the integration's Chatra user"
	}
	return "message " + r.reply.ID + " from " + from, nil
}

func (r *run) transcript(ctx context.Context) (string, error) {
	reply := r.reply
	reply.ClientID = ""
	if reply.Type == "" {
		reply.Type = chatra.MessageTypeAgent
	}
	msgs := append([]chatra.Message{}, r.messages...)
	msgs = append(msgs, reply, r.newMessage(4, closingText))
	if err := r.chatraWebhook(ctx, chatra.EventChatTranscript, msgs, r.card(true)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d messages, the last (%q) never sent as a fragment", len(msgs), closingText), nil
}

func (r *run) waitCompleted(ctx context.Context) (string, error) {
	var task *sandbox.PlanfixTaskState
	err := r.poll(ctx, func() (bool, string) {
		snap, err := r.sandboxState(ctx)
		if err != nil {
			return false, err.Error()
		}
		task = findTask(snap, r.taskID)
		if task == nil {
			return false, fmt.Sprintf("task #%d is gone from the sandbox", r.taskID)
		}
		if len(missingTexts(task, []string{closingText})) > 0 {
			return false, fmt.Sprintf("task #%d lacks the transcript's last message %q (status %s)", r.taskID, closingText, task.Status.Name)
		}
		if task.Status.IsActive {
			return false, fmt.Sprintf("task #%d is still %q", r.taskID, task.Status.Name)
		}
		return true, ""
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("task #%d is %q, with the transcript's last message", task.ID, task.Status.Name), nil
}

// ---- the report ----

// report prints the task with its comments, what the visitor received, and the link to
// the conversation; it fills the Result from the workflow's description.
func (r *run) report(ctx context.Context) error {
	snap, err := r.sandboxState(ctx)
	if err != nil {
		return err
	}
	task := findTask(snap, r.taskID)
	if task == nil {
		return fmt.Errorf("task #%d is gone from the sandbox", r.taskID)
	}
	st, stErr := r.state(ctx)
	r.printf("\nPlanfix task #%d: %s\n", task.ID, task.Name)
	r.printf("  status       %s\n", task.Status.Name)
	if stErr == nil && st.TaskURL != "" {
		r.printf("  link         %s\n", st.TaskURL)
	}
	r.printf("  assigner     %s\n", ownerName(snap, task.Assigner))
	if len(task.Assignees) > 0 {
		names := make([]string, len(task.Assignees))
		for i, a := range task.Assignees {
			names[i] = ownerName(snap, a)
		}
		r.printf("  assignees    %s\n", strings.Join(names, ", "))
	}
	r.printf("  description\n%s", indent(htmlToText(task.Description), "    | "))
	r.printf("  comments\n")
	for _, c := range task.Comments {
		r.printf("    #%-4d %s  %s:\n%s", c.ID, c.Created.UTC().Format("15:04:05"), ownerName(snap, c.Owner), indent(htmlToText(c.Description), "            "))
	}
	if contact := findContact(snap, task.Assigner); contact != nil {
		phones := make([]string, len(contact.Phones))
		for i, p := range contact.Phones {
			phones[i] = p.Number
		}
		r.printf("\nPlanfix contact #%d: %s <%s> %s\n", contact.ID, strings.TrimSpace(contact.Name+" "+contact.Lastname), contact.Email, strings.Join(phones, ", "))
	}

	from := r.reply.AgentName
	if from == "" {
		from = "(the integration's Chatra user)"
	}
	r.printf("\nThe visitor received in Chatra (message %s, %s, from %s):\n%s", r.reply.ID,
		r.reply.CreatedAt.UTC().Format("15:04:05 UTC"), from, indent(r.reply.Text, "    > "))

	desc, err := r.tc.DescribeWorkflowExecution(ctx, r.workflowID, "")
	if err == nil {
		r.result.RunID = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		if p := desc.GetExecutionConfig().GetUserMetadata().GetSummary(); p != nil {
			_ = r.dc.FromPayload(p, &r.result.Summary)
		}
	}
	r.printf("\nThe conversation in the Temporal Web UI (workflow %s):\n    %s\n", r.workflowID, r.result.WorkflowURL)
	if r.result.Summary != "" {
		r.printf("    summary: %s\n", r.result.Summary)
	}
	if stErr == nil {
		r.printf("    state:   %s, %d message(s) received, %d added to the task, %d reply(ies) sent\n",
			st.Status, st.MessagesReceived, st.MessagesAdded, st.RepliesSent)
	}
	return nil
}

// diagnose prints what the workflow says about itself, after a failed step.
func (r *run) diagnose() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.printf("\nWhat the conversation %s reports:\n", r.workflowID)
	if st, err := r.state(ctx); err != nil {
		r.printf("  state query: %v\n", err)
	} else {
		b, _ := json.MarshalIndent(st, "  ", "  ")
		r.printf("  state: %s\n", b)
		if st.LastError != "" {
			r.printf("  last error: %s\n", st.LastError)
		}
	}
	desc, err := r.tc.DescribeWorkflowExecution(ctx, r.workflowID, "")
	if err != nil {
		r.printf("  describe: %v\n", err)
	} else {
		info := desc.GetWorkflowExecutionInfo()
		r.printf("  workflow status: %s (run %s, %d history events)\n", info.GetStatus(), info.GetExecution().GetRunId(), info.GetHistoryLength())
		for _, pa := range desc.GetPendingActivities() {
			r.printf("  pending activity %s: %s, attempt %d", pa.GetActivityType().GetName(), pa.GetState(), pa.GetAttempt())
			if f := pa.GetLastFailure(); f != nil {
				r.printf(", last failure: %s", oneLine(f.GetMessage()))
			}
			r.printf("\n")
		}
	}
	if status, body, err := r.do(ctx, http.MethodGet, r.dev.SandboxURL+sandbox.InspectPrefix+"/faults", nil); err == nil && status == http.StatusOK {
		var f sandbox.FaultsState
		if json.Unmarshal(body, &f) == nil && (f.Chatra != nil || f.Planfix != nil) {
			r.printf("  the sandbox injects faults: %s\n", oneLine(string(body)))
		}
	}
	r.printf("  more: temporal workflow describe --workflow-id %s ; the Web UI: %s\n", r.workflowID, r.result.WorkflowURL)
}

// ---- talking to the stack ----

// chatraWebhook posts one Chatra webhook and checks the bridge's answer. A 5xx or a
// network error is retried (as Chatra retries) until the run's deadline; any other
// refusal fails at once.
func (r *run) chatraWebhook(ctx context.Context, event string, msgs []chatra.Message, card map[string]any) error {
	if msgs == nil {
		msgs = []chatra.Message{}
	}
	body := map[string]any{"eventName": event, "messages": msgs, "client": card}
	return r.poll(ctx, func() (bool, string) {
		status, answer, err := r.do(ctx, http.MethodPost, r.dev.ChatraWebhookURL, body)
		if err != nil {
			return false, "the Chatra webhook: " + err.Error()
		}
		if status != http.StatusOK {
			return false, fmt.Sprintf("the Chatra webhook answered %d %s", status, oneLine(string(answer)))
		}
		var ans struct {
			OK         bool   `json:"ok"`
			WorkflowID string `json:"workflowId"`
		}
		if json.Unmarshal(answer, &ans) != nil || !ans.OK || ans.WorkflowID != r.workflowID {
			return false, "the Chatra webhook answered " + oneLine(string(answer)) + ", want workflowId " + r.workflowID
		}
		return true, ""
	}, permanentOn(func(status int) bool { return status >= 400 && status < 500 && status != http.StatusTooManyRequests }))
}

// statusError is an HTTP answer that asking again cannot change.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// pollOption adjusts poll.
type pollOption func(*pollConfig)

type pollConfig struct {
	permanent func(status int) bool
}

// permanentOn makes poll give up at once when the last answer's status is one of these.
func permanentOn(f func(status int) bool) pollOption {
	return func(c *pollConfig) { c.permanent = f }
}

// poll calls check until it reports done or ctx ends; then the error says what check
// last saw.
func (r *run) poll(ctx context.Context, check func() (done bool, last string), opts ...pollOption) error {
	var cfg pollConfig
	for _, o := range opts {
		o(&cfg)
	}
	for {
		r.lastStatus = 0
		done, last := check()
		if done {
			return nil
		}
		if cfg.permanent != nil && r.lastStatus != 0 && cfg.permanent(r.lastStatus) {
			return &statusError{status: r.lastStatus, msg: last}
		}
		select {
		case <-ctx.Done():
			if last == "" {
				last = "nothing happened"
			}
			return fmt.Errorf("gave up after %s: %s", time.Since(r.started).Round(time.Second), last)
		case <-time.After(pollEvery):
		}
	}
}

// do sends a request with a JSON body (when body is not nil) and returns the answer.
func (r *run) do(ctx context.Context, method, u string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, errors.Unwrap(err) // *url.Error repeats the URL, which holds a token
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	r.lastStatus = resp.StatusCode
	return resp.StatusCode, b, err
}

// sandboxState reads everything the sandbox holds.
func (r *run) sandboxState(ctx context.Context) (*sandbox.State, error) {
	status, body, err := r.do(ctx, http.MethodGet, r.dev.SandboxURL+sandbox.InspectPrefix+"/state", nil)
	if err != nil {
		return nil, fmt.Errorf("the sandbox: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("the sandbox answered %d %s", status, oneLine(string(body)))
	}
	var st sandbox.State
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("the sandbox's state: %w", err)
	}
	return &st, nil
}

// state asks the conversation for its "state".
func (r *run) state(ctx context.Context) (workflows.State, error) {
	var st workflows.State
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := r.tc.QueryWorkflow(qctx, r.workflowID, "", workflows.QueryState)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}
