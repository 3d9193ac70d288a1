package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/workflows"
)

const (
	sealKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

	// waitMax bounds each wait for a conversation to get somewhere. A worker killed with
	// SIGKILL holds its Planfix activity until the activity's heartbeat timeout (a
	// minute) has passed, so a wait may take that long and more.
	waitMax = 3 * time.Minute

	// lateReplyWindowB is B's late-reply window: B closes just before the deploy, and its
	// late reply comes after it, within the window; the test then waits for the window's
	// end. The deploy takes seconds (at most 10 s side by side, then the old workers'
	// stop). The other conversations end shortWindow after their chat closed.
	lateReplyWindowB = 60 * time.Second
	shortWindow      = 3 * time.Second

	// continueAsNewAfter makes C continue as new every few messages.
	continueAsNewAfter = 40

	// planfixLatency makes A's and D's Planfix slow around the deploy, so that their
	// calls are in flight or queued when it happens.
	planfixLatency = 2 * time.Second
)

// A rolling deploy from the previous release to the current tree: old and new workers
// side by side on one task queue, then only the new one. See the package documentation.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the upgrade test builds two binaries and runs for minutes")
	}
	started := time.Now()
	bins := buildBinaries(t, t.TempDir())

	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	srv, err := devserver.Start(startCtx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	cancel()
	if err != nil {
		t.Fatalf("start the embedded Temporal server: %v", err)
	}
	t.Cleanup(srv.Stop)
	// The test's client reads what the workers encrypted (their keys are derived from
	// sealKey); what it sends stays in clear, which the old release reads too.
	keys, err := codec.ParseKeys("", sealKey)
	if err != nil {
		t.Fatal(err)
	}
	opts := client.Options{HostPort: srv.Address(), Namespace: srv.Namespace(), Logger: slog.New(slog.DiscardHandler)}
	codec.Apply(&opts, codec.New(keys, false))
	tc, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)

	// The database is the old release's: its binary migrates it. Once the old workers
	// run, the current tree's migrations are applied, as the first new process of a
	// rolling deploy does: the old release must work on the new schema (migrations only
	// add), and the test's own store (the current code, standing in for the API) needs it.
	dbURL := freshDatabase(t)
	run(t, bins.old, map[string]string{"DATABASE_URL": dbURL}, "migrate")
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	sealer, err := secrets.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, tc: tc, db: db, store: postgres.NewIntegrationStore(db, sealer),
		queue: "upgrade-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36), workers: map[string]string{},
		base: time.Now().Add(-time.Hour).UTC().Truncate(time.Second), release: bins.release}

	// One integration, and so one Planfix account and rate limit, per conversation.
	A := w.newConv("A", "open, messages queued", shortWindow, 0)
	B := w.newConv("B", "closed, in late-reply window", lateReplyWindowB, 0)
	C := w.newConv("C", "continued as new", shortWindow, continueAsNewAfter)
	D := w.newConv("D", "task being set up", shortWindow, 0)
	E := w.newConv("E", "started during the overlap", shortWindow, 0)
	convs := []*conv{A, B, C, D, E}

	env := map[string]string{
		"DATABASE_URL": dbURL, "TEMPORAL_ADDRESS": srv.Address(), "TEMPORAL_NAMESPACE": srv.Namespace(),
		"SECRETS_KEY": sealKey, "TASK_QUEUE": w.queue, "LOG_LEVEL": "warn",
	}
	olds := w.startWorkers(bins.old, env, "old-1", "old-2")
	old1, old2 := olds[0], olds[1]
	run(t, bins.new, map[string]string{"DATABASE_URL": dbURL}, "migrate")

	// ---- The old release at work ----
	w.parallel(
		func() error { // A: an open chat with its first messages
			w.start(A)
			w.say(A, 2)
			return w.waitAdded(A)
		},
		func() error { // B: messages and a reply; it closes right before the deploy
			w.start(B)
			w.say(B, 2)
			if err := w.waitAdded(B); err != nil {
				return err
			}
			if err := w.reply(B); err != nil {
				return err
			}
			return w.waitReplies(B)
		},
		func() error { // C: messages until it has continued as new
			w.start(C)
			for i := 0; w.runCount(C) < 2; i++ {
				if i == 12 {
					return fmt.Errorf("C: %d runs after %d messages, with continueAsNewAfterEvents %d", w.runCount(C), len(C.sent), continueAsNewAfter)
				}
				w.say(C, 1)
				if err := w.waitAdded(C); err != nil {
					return err
				}
			}
			return nil
		},
	)
	// Right before the deploy: B closes (its late-reply window opens), D's chat starts on
	// a slow Planfix (its setup is under way during the deploy), and A's Planfix turns slow
	// while more messages come (they are in flight or queued).
	w.close(B)
	if err := w.waitStatus(B, workflows.StatusClosed); err != nil {
		t.Fatal(err)
	}
	closedB := time.Now()
	for _, c := range []*conv{A, D} {
		if err := c.sb.SetFaults(sandbox.FaultPolicy{Target: sandbox.TargetPlanfix, Latency: planfixLatency}); err != nil {
			t.Fatal(err)
		}
	}
	w.start(D)
	w.say(D, 1)
	w.say(A, 2)
	for _, c := range []*conv{A, B, C, D} {
		c.atSwitch = w.where(c)
	}
	E.atSwitch = "not started"

	// ---- The deploy: the new worker beside the old ones, then alone ----
	// Beside the old release, which cannot decode them, the new one writes payloads in
	// clear (README, Upgrading).
	newEnv := maps.Clone(env)
	newEnv["PAYLOAD_ENCRYPTION"] = "off"
	deployAt := time.Now()
	news := w.startWorkers(bins.new, newEnv, "new")
	oldN, newN := w.overlap(deployAt,
		func() { w.start(E) },
		func() { w.say(A, 1) },
		func() { w.say(E, 1) },
		func() { w.say(C, 1) },
		func() { w.say(D, 1) },
	)
	t.Logf("side by side for %s: workflow tasks completed meanwhile by the old workers %d, by the new one %d",
		time.Since(deployAt).Round(100*time.Millisecond), oldN, newN)
	t.Logf("in flight at the switch: %s", w.inFlight())
	old2.kill()
	stopAt := time.Now()
	old1.stop()
	t.Logf("old-2 killed (SIGKILL); old-1 stopped (SIGTERM) in %s; the new worker alone from %s after the start",
		time.Since(stopAt).Round(100*time.Millisecond), time.Since(started).Round(time.Second))
	A.sb.ClearFaults(sandbox.TargetBoth)
	D.sb.ClearFaults(sandbox.TargetBoth)

	// ---- No old worker left: encryption turned on, one worker at a time ----
	// The conversations go on with histories half in clear, half encrypted.
	w.startWorkers(bins.new, env, "new-encrypting")
	news[0].stop()
	t.Logf("encryption on: the new worker restarted with PAYLOAD_ENCRYPTION=on")

	// ---- The new release finishes every conversation ----
	finish := func(c *conv, more int) func() error {
		return func() error {
			w.say(c, more)
			if err := w.waitAdded(c); err != nil {
				return err
			}
			if err := w.reply(c); err != nil {
				return err
			}
			if err := w.waitReplies(c); err != nil {
				return err
			}
			w.close(c)
			return nil
		}
	}
	w.parallel(
		finish(A, 1),
		func() error { // B: the late reply, inside its window
			st, err := w.waitState(B, "its state", func(workflows.State) bool { return true })
			if err != nil {
				return err
			}
			if st.Status != workflows.StatusClosed {
				return fmt.Errorf("B is %q before its late reply: its late-reply window (%s) passed during the deploy (a slow machine? raise lateReplyWindowB)", st.Status, lateReplyWindowB)
			}
			if err := w.reply(B); err != nil {
				return err
			}
			t.Logf("B's late reply came %s after B closed (its late-reply window: %s)", time.Since(closedB).Round(100*time.Millisecond), lateReplyWindowB)
			return w.waitReplies(B)
		},
		func() error { // C: on under the new code, through another continue-as-new
			runs := w.runCount(C)
			for w.runCount(C) == runs {
				if len(C.sent) > 40 {
					return fmt.Errorf("C did not continue as new under the new worker (%d runs)", w.runCount(C))
				}
				w.say(C, 1)
				if err := w.waitAdded(C); err != nil {
					return err
				}
			}
			return finish(C, 1)()
		},
		finish(D, 1),
		finish(E, 1),
	)
	for _, c := range convs {
		w.waitEnded(c, lateReplyWindowB+waitMax)
	}

	// ---- What Planfix, Chatra, the store and the histories hold ----
	w.check(convs)
	t.Logf("the upgrade test took %s", time.Since(started).Round(time.Second))
}

// world is the test's view of the system.
type world struct {
	t       *testing.T
	tc      client.Client
	db      *postgres.DB
	store   *postgres.IntegrationStore
	queue   string
	base    time.Time // chat time of the first message
	mu      sync.Mutex
	workers map[string]string // a worker's identity prefix ("<pid>@") -> its name
	convs   []*conv
	release release
}

// conv is one conversation: its integration (with a sandbox of its own) and its chat.
type conv struct {
	name, about string
	integ, chat string
	client      string
	visitor     workflows.VisitorInfo
	sb          *sandbox.Server
	canAfter    int
	mu          sync.Mutex
	sent        []workflows.Message // the visitor's messages, in the chat's order
	viaFragment int                 // how many of them came as fragments (the rest only in the transcript)
	replies     []string            // the employees' replies, as written
	held        int                 // replies the store held (their task had no conversation yet)
	atSwitch    string
	keys        int
	firstRunID  string
}

func (w *world) newConv(name, about string, window time.Duration, canAfter int) *conv {
	t := w.t
	t.Helper()
	sb := sandbox.New(sandbox.Options{PlanfixInterval: -1}) // the bridge's own limiter spaces the requests
	if err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	c := &conv{name: name, about: about, integ: "upgrade-" + strings.ToLower(name), chat: "CHAT-" + name, client: "V-" + name,
		sb: sb, canAfter: canAfter}
	c.visitor = workflows.VisitorInfo{Name: "Visitor " + name, Email: "visitor-" + strings.ToLower(name) + "@example.com",
		City: "Riga", Country: "Latvia", OS: "macOS", Browser: "Safari", IP: "203.0.113.5", Pages: []string{"https://shop.example/" + name}}
	if err := sb.Chatra().PutClient(chatra.ClientCard{ID: c.client, ChatID: c.chat, Name: c.visitor.Name}); err != nil {
		t.Fatal(err)
	}
	integ := &chatrabridge.Integration{
		ID: c.integ, Name: "Upgrade shop " + name,
		Chatra: chatrabridge.ChatraSettings{APIURL: sb.ChatraURL(), PublicKey: sandbox.DefaultChatraPublicKey,
			SecretKey: secrets.String(sandbox.DefaultChatraSecretKey), HasSecretKey: true,
			AgentEmail: "support@example.com", AgentName: "Upgrade shop support"},
		Planfix: chatrabridge.PlanfixSettings{AccountURL: sb.PlanfixURL(), Token: secrets.String(sandbox.DefaultPlanfixToken), HasToken: true,
			TaskTemplateID: sandbox.PlanfixTaskTemplateID, ContactTemplateID: sandbox.PlanfixContactTemplateID,
			CompletedStatusID: sandbox.PlanfixStatusCompleted, AssigneeUserIDs: []int64{6}, EmployeeUserIDs: []int64{5, 6}},
		Options: chatrabridge.Options{LateReplyWindow: chatrabridge.Duration(window)},
	}
	integ.Normalize()
	if err := integ.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.CreateIntegration(context.Background(), integ); err != nil {
		t.Fatalf("create integration %s in the old release's database: %v", c.integ, err)
	}
	w.mu.Lock()
	w.convs = append(w.convs, c)
	w.mu.Unlock()
	return c
}

func (c *conv) workflowID() string { return workflows.ConversationWorkflowID(c.integ, c.chat) }

func (c *conv) key(what string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys++
	return fmt.Sprintf("%s-%d", what, c.keys)
}

// startWorkers starts worker processes of bin, one per name, and waits until they all
// serve; it remembers their identities for the history scan.
func (w *world) startWorkers(bin string, env map[string]string, names ...string) []*workerProc {
	w.t.Helper()
	var ps []*workerProc
	for _, name := range names {
		p := spawnWorker(w.t, name, bin, env)
		w.mu.Lock()
		w.workers[p.identityPrefix()] = name
		w.mu.Unlock()
		ps = append(ps, p)
	}
	for _, p := range ps {
		w.t.Logf("%s worker (pid %d) polling %s after its start", p.name, p.pid(), p.waitPolling(w.tc, w.queue).Round(100*time.Millisecond))
	}
	return ps
}

// workerName names the worker of a Temporal identity: old-1, old-2, new, or the identity.
func (w *world) workerName(identity string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for prefix, name := range w.workers {
		if strings.HasPrefix(identity, prefix) {
			return name
		}
	}
	return identity
}

// parallel runs fns concurrently and fails the test with their errors.
func (w *world) parallel(fns ...func() error) {
	w.t.Helper()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		w.t.Fatal(err)
	}
}

// signal sends a signal the way the API's Chatra webhook does: SignalWithStart, the
// conversation started if no run is open.
func (w *world) signal(c *conv, name string, arg any) {
	id := c.workflowID()
	attrs := temporal.NewSearchAttributes(workflows.SAIntegration.ValueSet(c.integ), workflows.SAChatID.ValueSet(c.chat),
		workflows.SAStatus.ValueSet(string(workflows.StatusOpen)), workflows.SAClientID.ValueSet(c.client),
		workflows.SAName.ValueSet(c.visitor.Name), workflows.SAEmail.ValueSet(c.visitor.Email))
	opts := client.StartWorkflowOptions{
		ID: id, TaskQueue: w.queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    attrs,
		StaticSummary:            "Chat with " + c.visitor.Name + " on Upgrade shop " + c.name,
	}
	in := workflows.ConversationInput{IntegrationID: c.integ, ChatID: c.chat, ClientID: c.client, ContinueAsNewAfterEvents: c.canAfter}
	// Temporal answers within seconds; while a worker is killed it still does (it does
	// not wait for the worker). Retry what fails, as Chatra retries a webhook.
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var run client.WorkflowRun
		run, err = w.tc.SignalWithStartWorkflow(ctx, id, name, arg, opts, workflows.ConversationWorkflowName, in)
		cancel()
		if err == nil {
			c.mu.Lock()
			if c.firstRunID == "" {
				c.firstRunID = run.GetRunID()
			}
			c.mu.Unlock()
			return
		}
		time.Sleep(time.Second)
	}
	w.t.Errorf("%s: signal %s: %v", c.name, name, err)
}

// start is Chatra's chatStarted: the visitor's card, the start of the chat.
func (w *world) start(c *conv) {
	w.signal(c, workflows.SignalVisitorInfo, workflows.VisitorInfoSignal{Key: c.key("chatStarted") + "/" + workflows.SignalVisitorInfo,
		ClientID: c.client, Started: true, Visitor: c.visitor})
}

// newMessage makes the visitor's next message (its text names the conversation and its
// number: no text is part of another).
func (c *conv) newMessage(base time.Time, viaFragment bool) workflows.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.sent) + 1
	m := workflows.Message{ID: fmt.Sprintf("%s-m%02d", c.chat, n), Type: workflows.MessageTypeClient,
		Text: fmt.Sprintf("Visitor %s message %02d", c.name, n), Time: base.Add(time.Duration(n) * time.Second)}
	c.sent = append(c.sent, m)
	if viaFragment {
		c.viaFragment++
	}
	return m
}

// say sends n visitor messages, each in a chatFragment of its own.
func (w *world) say(c *conv, n int) {
	for range n {
		m := c.newMessage(w.base, true)
		v := c.visitor
		w.signal(c, workflows.SignalMessage, workflows.MessageSignal{Key: c.key("chatFragment") + "/" + workflows.SignalMessage,
			ClientID: c.client, Messages: []workflows.Message{m}, Visitor: &v})
	}
}

// close is Chatra's chatTranscript: the whole chat (the bridge's own replies with their
// tag, as Chatra sends them) and one last message whose fragment never came.
func (w *world) close(c *conv) {
	c.newMessage(w.base, false)
	c.mu.Lock()
	transcript := append([]workflows.Message{}, c.sent...)
	c.mu.Unlock()
	for _, m := range c.sb.Chatra().Messages() {
		transcript = append(transcript, workflows.Message{ID: m.ID, Type: workflows.MessageTypeAgent, Text: m.Text,
			ReceivedFrom: m.ReceivedFrom, Time: w.base.Add(time.Duration(len(transcript)) * time.Second)})
	}
	w.signal(c, workflows.SignalChatClosed, workflows.ChatClosedSignal{Key: c.key("chatTranscript") + "/" + workflows.SignalChatClosed,
		ClientID: c.client, Transcript: transcript, Visitor: c.visitor})
}

// reply has an employee comment in the task, then signals it as the Planfix webhook
// does: the conversation found by its task in the store, the reply signalled to its
// workflow (started again if it had ended).
func (w *world) reply(c *conv) error {
	st, err := w.waitState(c, "its task", func(st workflows.State) bool { return st.TaskID != 0 })
	if err != nil {
		return err
	}
	c.mu.Lock()
	text := fmt.Sprintf("Reply %d to %s.", len(c.replies)+1, c.name)
	c.replies = append(c.replies, text)
	c.mu.Unlock()
	commentID, err := c.sb.Planfix().AddComment(sandbox.PlanfixComment{TaskID: st.TaskID, Owner: "user:5", Description: text})
	if err != nil {
		return fmt.Errorf("%s: comment in task %d: %w", c.name, st.TaskID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	row, err := w.db.FindConversationByTask(ctx, c.integ, st.TaskID)
	if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND {
		// The task is a moment older than its row in the store: the webhook holds the
		// reply, and the conversation's save takes it.
		err = w.db.HoldReply(ctx, c.integ, st.TaskID, commentID)
		if err == nil {
			c.mu.Lock()
			c.held++
			c.mu.Unlock()
			return nil
		}
		if chatrabridge.ErrorCode(err) == chatrabridge.ECONFLICT {
			row, err = w.db.FindConversationByTask(ctx, c.integ, st.TaskID)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: the conversation of task %d in the store: %w", c.name, st.TaskID, err)
	}
	sig := workflows.ReplySignal{Key: "planfix-comment:" + strconv.FormatInt(commentID, 10), CommentID: commentID, TaskID: st.TaskID}
	err = w.tc.SignalWorkflow(ctx, row.WorkflowID, "", workflows.SignalReply, sig)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		w.signal(c, workflows.SignalReply, sig)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: signal the reply: %w", c.name, err)
	}
	return nil
}

// state queries the conversation's state (the current run).
func (w *world) state(c *conv) (workflows.State, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st workflows.State
	v, err := w.tc.QueryWorkflow(ctx, c.workflowID(), "", workflows.QueryState)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

// waitState polls the state until ok holds; on a timeout the error says what the
// conversation was doing.
func (w *world) waitState(c *conv, what string, ok func(workflows.State) bool) (workflows.State, error) {
	deadline := time.Now().Add(waitMax)
	var (
		st  workflows.State
		err error
	)
	lastScan := time.Now()
	for time.Now().Before(deadline) {
		if st, err = w.state(c); err == nil && ok(st) {
			return st, nil
		}
		if time.Since(lastScan) > 2*time.Second {
			if err := w.failedTask(c); err != nil {
				return st, fmt.Errorf("%s: %s: %w", c.name, what, err)
			}
			lastScan = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return st, fmt.Errorf("%s: %s: not after %s; last state %+v (query error: %v)\n%s", c.name, what, waitMax, st, err, w.pending(c))
}

// waitAdded waits until every message sent as a fragment is in the task.
func (w *world) waitAdded(c *conv) error {
	c.mu.Lock()
	n := c.viaFragment
	c.mu.Unlock()
	_, err := w.waitState(c, fmt.Sprintf("%d messages in the task", n), func(st workflows.State) bool { return st.MessagesAdded >= n })
	return err
}

// waitReplies waits until every reply was sent to the chat.
func (w *world) waitReplies(c *conv) error {
	c.mu.Lock()
	n := len(c.replies)
	c.mu.Unlock()
	_, err := w.waitState(c, fmt.Sprintf("%d replies in the chat", n), func(st workflows.State) bool { return st.RepliesSent >= n })
	return err
}

func (w *world) waitStatus(c *conv, status chatrabridge.ConversationStatus) error {
	_, err := w.waitState(c, "status "+string(status), func(st workflows.State) bool { return st.Status == status })
	return err
}

// waitEnded waits until the conversation's workflow is no longer running.
func (w *world) waitEnded(c *conv, max time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(max)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := w.tc.DescribeWorkflowExecution(ctx, c.workflowID(), "")
		cancel()
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return
		}
		if err := w.failedTask(c); err != nil {
			w.t.Fatalf("%s: waiting for its end: %v", c.name, err)
		}
		if time.Now().After(deadline) {
			st, _ := w.state(c)
			w.t.Fatalf("%s: still running %s after its chat closed; state %+v\n%s", c.name, max, st, w.pending(c))
		}
		time.Sleep(time.Second)
	}
}

// failedTask returns an error naming the failed workflow tasks of the conversation's
// histories, if any: a workflow task that fails (a non-determinism error, a panic) is
// retried forever, so the wait would only time out.
func (w *world) failedTask(c *conv) error {
	var failed []string
	for i, r := range w.runs(c) {
		for _, f := range r.failedTasks {
			failed = append(failed, fmt.Sprintf("run %d (%s): %s", i+1, r.id, f))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("a workflow task failed (not deterministic across the deploy?):\n  %s", strings.Join(failed, "\n  "))
}

// pending describes what the conversation's current run waits for: its pending workflow
// task and activities with their last failures.
func (w *world) pending(c *conv) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := w.tc.DescribeWorkflowExecution(ctx, c.workflowID(), "")
	if err != nil {
		return "describe: " + err.Error()
	}
	var b strings.Builder
	if p := d.GetPendingWorkflowTask(); p != nil {
		fmt.Fprintf(&b, "  pending workflow task: %s, attempt %d\n", p.GetState(), p.GetAttempt())
	}
	for _, a := range d.GetPendingActivities() {
		fmt.Fprintf(&b, "  pending activity %s: %s, attempt %d, worker %s, last failure: %s\n", a.GetActivityType().GetName(),
			a.GetState(), a.GetAttempt(), w.workerName(a.GetLastWorkerIdentity()), a.GetLastFailure().GetMessage())
	}
	for _, r := range w.runs(c) {
		for _, f := range r.failedTasks {
			fmt.Fprintf(&b, "  failed workflow task in run %s: %s\n", r.id, f)
		}
	}
	return b.String()
}

// where says where the conversation stands, for the table (at the deploy).
func (w *world) where(c *conv) string {
	st, err := w.state(c)
	if err != nil {
		return "state: " + err.Error()
	}
	c.mu.Lock()
	sent := c.viaFragment
	c.mu.Unlock()
	var parts []string
	switch {
	case st.TaskID == 0:
		parts = append(parts, "setting up, no task yet")
	case st.Status == workflows.StatusClosed:
		parts = append(parts, "closed, late replies open")
	default:
		parts = append(parts, string(st.Status))
	}
	if q := sent - st.MessagesAdded; q > 0 {
		parts = append(parts, fmt.Sprintf("%d msg queued", q))
	}
	if n := w.runCount(c); n > 1 {
		parts = append(parts, fmt.Sprintf("run %d", n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d, err := w.tc.DescribeWorkflowExecution(ctx, c.workflowID(), ""); err == nil {
		for _, a := range d.GetPendingActivities() {
			parts = append(parts, a.GetActivityType().GetName()+" in flight")
		}
	}
	return strings.Join(parts, ", ")
}

// overlap keeps the old and the new workers side by side while signals arrive: it runs
// each of signals a moment apart, then waits until both the old and the new workers have
// completed workflow tasks since the new one started, or 10 s have passed. It returns
// how many workflow tasks each side completed.
func (w *world) overlap(since time.Time, signals ...func()) (oldN, newN int) {
	for _, send := range signals {
		send()
		time.Sleep(500 * time.Millisecond)
	}
	for {
		oldN, newN = 0, 0
		for _, c := range w.allConvs() {
			for _, r := range w.runs(c) {
				for _, wt := range r.tasks {
					if wt.at.Before(since) {
						continue
					}
					if strings.HasPrefix(wt.worker, "old") {
						oldN++
					} else if strings.HasPrefix(wt.worker, "new") {
						newN++
					}
				}
			}
		}
		if (oldN > 0 && newN > 0) || time.Since(since) > 10*time.Second {
			return oldN, newN
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (w *world) allConvs() []*conv {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*conv{}, w.convs...)
}

// inFlight lists the activities in flight (started, not yet done) and the worker that
// runs each, to show what the SIGKILL and the SIGTERM interrupt.
func (w *world) inFlight() string {
	var out []string
	for _, c := range w.allConvs() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := w.tc.DescribeWorkflowExecution(ctx, c.workflowID(), "")
		cancel()
		if err != nil {
			continue
		}
		for _, a := range d.GetPendingActivities() {
			if a.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				out = append(out, fmt.Sprintf("%s %s on %s", c.name, a.GetActivityType().GetName(), w.workerName(a.GetLastWorkerIdentity())))
			}
		}
	}
	if len(out) == 0 {
		return "no activity"
	}
	return strings.Join(out, ", ")
}

// ---- Histories ----

// runInfo is what one run's history says.
type runInfo struct {
	id          string
	status      string // how the run closed: Completed, ContinuedAsNew, ... or Running
	tasks       []taskInfo
	failedTasks []string // failed workflow tasks: cause and message
	benign      int      // failed workflow tasks of cause UnhandledCommand (a signal came as the run completed)
	timedOut    int      // workflow tasks timed out (a worker killed or stopped with one)
	retried     int      // activities that took more than one attempt
	readErr     error    // the history could not be read (whole)
	clear       int      // payloads in the history written in clear
	encrypted   int      // payloads encrypted (codec.EncodingEncrypted)
}

type taskInfo struct {
	at     time.Time
	worker string
}

// runs reads every run of the conversation, the first one first (continue-as-new links
// them).
func (w *world) runs(c *conv) []runInfo {
	c.mu.Lock()
	run := c.firstRunID
	c.mu.Unlock()
	var out []runInfo
	for run != "" && len(out) < 100 {
		r := runInfo{id: run, status: "Running"}
		next := ""
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		it := w.tc.GetWorkflowHistory(ctx, c.workflowID(), run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				r.readErr = err
				break
			}
			countPayloads(e.ProtoReflect(), &r)
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				r.tasks = append(r.tasks, taskInfo{at: e.GetEventTime().AsTime(), worker: w.workerName(e.GetWorkflowTaskCompletedEventAttributes().GetIdentity())})
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
				a := e.GetWorkflowTaskFailedEventAttributes()
				if a.GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND {
					r.benign++
					continue
				}
				r.failedTasks = append(r.failedTasks, fmt.Sprintf("event %d by %s: %s: %s", e.GetEventId(), w.workerName(a.GetIdentity()), a.GetCause(), a.GetFailure().GetMessage()))
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
				r.timedOut++
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				if e.GetActivityTaskStartedEventAttributes().GetAttempt() > 1 {
					r.retried++
				}
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
				r.status = "Completed"
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
				r.status = "ContinuedAsNew"
				next = e.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
				r.status = "Failed: " + e.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage()
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
				r.status = "Terminated: " + e.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
				r.status = "Canceled"
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
				r.status = "TimedOut"
			}
		}
		cancel()
		out = append(out, r)
		run = next
	}
	return out
}

// countPayloads counts the payloads of a history event (its inputs, results, signals,
// failures' encoded attributes) written in clear and encrypted.
func countPayloads(m protoreflect.Message, r *runInfo) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		if string(p.GetMetadata()[codec.MetadataEncoding]) == codec.EncodingEncrypted {
			r.encrypted++
		} else {
			r.clear++
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				countPayloads(v.List().Get(i).Message(), r)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					countPayloads(mv.Message(), r)
					return true
				})
			}
		default:
			countPayloads(v.Message(), r)
		}
		return true
	})
}

// runCount is the number of runs so far (1 + the continues-as-new).
func (w *world) runCount(c *conv) int {
	c.mu.Lock()
	first := c.firstRunID
	c.mu.Unlock()
	if first == "" {
		return 0
	}
	return len(w.runs(c))
}

// ---- The outcome ----

func (w *world) check(convs []*conv) {
	t := w.t
	t.Helper()
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "conversation\tat the deploy\tfinished\truns\tmessages in task\treplies in chat\tworkflow tasks old/new\tfailed tasks\tretried\ttask")
	for _, c := range convs {
		// Planfix: the conversation's account holds its one task, every message once and
		// in order, the task completed.
		msgs, task := "no task", "-"
		tasks := c.sb.Planfix().Tasks()
		if len(tasks) != 1 {
			t.Errorf("%s: %d tasks in its Planfix, want 1", c.name, len(tasks))
		}
		if len(tasks) > 0 {
			tk := tasks[0]
			var text strings.Builder
			for _, cm := range c.sb.Planfix().Comments(tk.ID) {
				text.WriteString(cm.Description + "\n")
			}
			once, last, inOrder := 0, -1, true
			for _, m := range c.sent {
				switch n := strings.Count(text.String(), m.Text); n {
				case 1:
					once++
				case 0:
					t.Errorf("%s: %q is not in task %d", c.name, m.Text, tk.ID)
					continue
				default:
					t.Errorf("%s: %q is %d times in task %d", c.name, m.Text, n, tk.ID)
				}
				at := strings.Index(text.String(), m.Text)
				if at < last {
					inOrder = false
					t.Errorf("%s: %q comes before the message sent before it in task %d", c.name, m.Text, tk.ID)
				}
				last = at
			}
			msgs = fmt.Sprintf("%d/%d once", once, len(c.sent))
			if inOrder {
				msgs += ", in order"
			}
			task = "open"
			if tk.StatusID == sandbox.PlanfixStatusCompleted {
				task = "completed"
			} else {
				t.Errorf("%s: task %d has status %d, want completed (%d)", c.name, tk.ID, tk.StatusID, sandbox.PlanfixStatusCompleted)
			}
		}
		// Chatra: every reply once, nothing else.
		sent := c.sb.Chatra().Messages()
		once := 0
		for _, r := range c.replies {
			n := 0
			for _, m := range sent {
				if strings.Contains(m.Text, r) {
					n++
				}
			}
			if n == 1 {
				once++
			} else {
				t.Errorf("%s: reply %q is %d times in the chat", c.name, r, n)
			}
		}
		if len(sent) != len(c.replies) {
			t.Errorf("%s: %d messages sent to the chat, want %d (the replies)", c.name, len(sent), len(c.replies))
		}
		// Temporal: every run completed or continued as new, no failed workflow task.
		runs := w.runs(c)
		oldN, newN, benign, failed, retried, timedOut := 0, 0, 0, 0, 0, 0
		finished := "?"
		for i, r := range runs {
			for _, wt := range r.tasks {
				if strings.HasPrefix(wt.worker, "old") {
					oldN++
				} else if strings.HasPrefix(wt.worker, "new") {
					newN++
				}
			}
			benign += r.benign
			failed += len(r.failedTasks)
			retried += r.retried
			timedOut += r.timedOut
			if r.readErr != nil {
				t.Errorf("%s: the history of run %d (%s): %v", c.name, i+1, r.id, r.readErr)
			}
			for _, f := range r.failedTasks {
				t.Errorf("%s: failed workflow task in run %d (%s): %s", c.name, i+1, r.id, f)
			}
			last := i == len(runs)-1
			switch {
			case last && r.status != "Completed", !last && r.status != "ContinuedAsNew":
				t.Errorf("%s: run %d (%s) is %s", c.name, i+1, r.id, r.status)
			}
			if last {
				finished = r.status
			}
		}
		// Payloads: in clear until encryption was turned on, encrypted after.
		clearN, encN := 0, 0
		for _, r := range runs {
			clearN, encN = clearN+r.clear, encN+r.encrypted
		}
		if encN == 0 {
			t.Errorf("%s: no encrypted payload in its history after encryption was turned on (%d in clear)", c.name, clearN)
		}
		if c.name != "E" && clearN == 0 {
			t.Errorf("%s: no payload in clear in its history, though it ran under the old release", c.name)
		}
		if c.name != "E" && (oldN == 0 || newN == 0) {
			t.Errorf("%s: workflow tasks by the old workers %d, by the new one %d: the deploy did not happen inside this conversation", c.name, oldN, newN)
		}
		// The store: the conversation ended.
		if row, err := w.db.GetConversation(context.Background(), c.integ, c.chat); err != nil {
			t.Errorf("%s: the conversation in the store: %v", c.name, err)
		} else if row.Status != postgres.StatusEnded {
			t.Errorf("%s: the store says %q, want %q", c.name, row.Status, postgres.StatusEnded)
		} else {
			finished += ", " + string(row.Status)
		}
		failedCol := strconv.Itoa(failed)
		if benign > 0 {
			failedCol += fmt.Sprintf(" (+%d unhandled-command)", benign)
		}
		replies := fmt.Sprintf("%d/%d once", once, len(c.replies))
		if c.held > 0 {
			replies += fmt.Sprintf(" (%d held first)", c.held)
		}
		fmt.Fprintf(tw, "%s: %s\t%s\t%s\t%d\t%s\t%s\t%d/%d\t%s\t%d act, %d wft timeouts\t%s\n", c.name, c.about, c.atSwitch, finished, len(runs), msgs,
			replies, oldN, newN, failedCol, retried, timedOut, task)
	}
	tw.Flush()
	t.Logf("conversations (release %s -> current tree):\n%s", w.release.version, table.String())
}
