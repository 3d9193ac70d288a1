// Package topology_test runs the production topology as separate processes, without
// Docker: the temporal CLI's dev server as the external Temporal cluster (its namespace
// without the search attributes, as a new cluster's), two `chatrabridge api` and two
// `chatrabridge worker` processes of the real binary (built by the test), and
// `chatrabridge sandbox` as Chatra and Planfix, enforcing Planfix's per-account limit.
// Webhooks are spread over both APIs; mid-load one worker is killed with -9 and started
// again, and one API is restarted. Afterwards every visitor message is in its task once
// and in order, every reply reached its chat once, every task is completed, no webhook
// answered 200 was lost, and the sandbox never had to refuse a Planfix request for the
// limit (both workers share it through PostgreSQL). The test prints what it sent,
// killed, restarted and counted.
//
// It needs the temporal CLI (v1.5.1: go install github.com/temporalio/cli/cmd/temporal@v1.5.1),
// on PATH or in $(go env GOPATH)/bin; .ci/run installs it. Without it the test fails
// in CI (CI set) and is skipped elsewhere, as the README's CLI test is.
package topology_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/testkit"
)

var (
	chats    = flag.Int("topology.chats", 6, "chats")
	messages = flag.Int("topology.messages", 5, "visitor messages per chat")
	pace     = flag.Duration("topology.pace", 400*time.Millisecond, "the pause between two webhooks of a chat")
	waitMax  = flag.Duration("topology.wait", 3*time.Minute, "how long the test waits for an outcome")
)

const (
	adminToken = "topology-admin-token"
	sealKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	// The sandbox refuses (429) two Planfix requests of the account closer than
	// sandboxInterval; the workers space theirs planfixInterval apart between them.
	sandboxInterval = 100 * time.Millisecond
	planfixInterval = 200 * time.Millisecond
)

// proc is a child process, started again by restart with the same command.
type proc struct {
	t    *testing.T
	name string
	args []string
	env  []string
	log  string // stdout and stderr
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, dir, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: append([]string{bin}, args...), env: env, log: filepath.Join(dir, name+".log")}
	t.Cleanup(p.kill)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("%s log:\n%s", name, testkit.Tail(string(b), 3000))
		}
	})
	p.start()
	return p
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "---- %s start %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (kill -9) and waits until the process is gone.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits until the process has exited (killing it after 30 s).
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s did not stop within 30 s of SIGTERM: killed", p.name)
		p.kill()
	}
}

// waitLog waits until the process's log has a line containing s and returns it.
func (p *proc) waitLog(s string, within time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if b, err := os.ReadFile(p.log); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if strings.Contains(sc.Text(), s) {
					return sc.Text()
				}
			}
		}
		if p.exited() {
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s exited before it said %q:\n%s", p.name, s, testkit.Tail(string(b), 3000))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not say %q within %v", p.name, s, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// temporalCLI finds the temporal CLI.
func temporalCLI(t *testing.T) string {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		why := "the topology test needs the temporal CLI as its Temporal cluster (go install github.com/temporalio/cli/cmd/temporal@v1.5.1); it is not on PATH nor at " + p
		if os.Getenv("CI") != "" {
			t.Fatal(why + ": CI must run it (.ci/run installs the CLI)")
		}
		t.Skip(why)
	}
	return p
}

// buildBinary builds cmd/chatrabridge into dir/name with the build tags given ("nodev":
// the production build of the Dockerfile).
func buildBinary(t *testing.T, dir, name, tags string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-tags="+tags, "-o", bin, "./cmd/chatrabridge")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags=%q ./cmd/chatrabridge: %v\n%s", tags, err, out)
	}
	return bin
}

// stack is the running topology.
type stack struct {
	t        *testing.T
	sandbox  string // its base URL
	apis     []*proc
	apiURLs  []string
	workers  []*proc
	chatraP  string // the Chatra webhook's path (with its token)
	planfixP string

	next     atomic.Int64 // round robin over the APIs
	accepted atomic.Int64 // webhooks answered 200
	retried  atomic.Int64 // attempts answered otherwise or not at all, then sent again
	perAPI   [2]atomic.Int64

	restarted time.Time // when the killed worker was started again
}

func TestProductionTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server and five processes")
	}
	began := time.Now()
	cli := temporalCLI(t)
	dir := t.TempDir()
	// api and worker run the production build, as the Dockerfile makes it; the sandbox,
	// which production never runs, comes from the full build.
	bin := buildBinary(t, dir, "chatrabridge", "nodev")
	full := buildBinary(t, dir, "chatrabridge-full", "")
	t.Logf("built the production binary and the full one in %v", time.Since(began).Round(100*time.Millisecond))

	temporalPort := testkit.FreePort(t)
	temporal := startProc(t, dir, "temporal", cli, nil, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--port", strconv.Itoa(temporalPort), "--http-port", strconv.Itoa(testkit.FreePort(t)),
		"--metrics-port", strconv.Itoa(testkit.FreePort(t)), "--log-level", "error")
	temporalAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(temporalPort))
	testkit.WaitTCP(t, temporalAddr, time.Minute)
	t.Logf("temporal server start-dev (pid %d) on %s, a namespace without the search attributes", temporal.pid(), temporalAddr)

	sb := startProc(t, dir, "sandbox", full, nil, "sandbox", "--addr", "127.0.0.1:0", "--planfix-interval", sandboxInterval.String())
	line := sb.waitLog("sandbox ready ", 30*time.Second)
	s := &stack{t: t, sandbox: strings.Fields(strings.TrimPrefix(line[strings.Index(line, "sandbox ready "):], "sandbox ready "))[0]}
	t.Logf("sandbox (pid %d) on %s, Planfix limit: one request per %v", sb.pid(), s.sandbox, sandboxInterval)

	_, dbURL := postgrestest.New(t)
	env := []string{
		"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + temporalAddr, "TEMPORAL_NAMESPACE=default",
		"ADMIN_TOKEN=" + adminToken, "SECRETS_KEY=" + sealKey, "TASK_QUEUE=topology",
		"ALLOW_PRIVATE_URLS=true", "PLANFIX_INTERVAL=" + planfixInterval.String(), "LOG_LEVEL=warn",
	}
	for i := range 2 {
		port := testkit.FreePort(t)
		s.apiURLs = append(s.apiURLs, fmt.Sprintf("http://127.0.0.1:%d", port))
		s.apis = append(s.apis, startProc(t, dir, fmt.Sprintf("api%d", i+1), bin,
			append(env, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port)), "api"))
		s.workers = append(s.workers, startProc(t, dir, fmt.Sprintf("worker%d", i+1), bin, env, "worker"))
	}
	for i := range s.apis {
		s.waitReady(i)
	}
	t.Logf("api1 (pid %d) %s, api2 (pid %d) %s, worker1 (pid %d), worker2 (pid %d): ready %v after the start",
		s.apis[0].pid(), s.apiURLs[0], s.apis[1].pid(), s.apiURLs[1], s.workers[0].pid(), s.workers[1].pid(),
		time.Since(began).Round(100*time.Millisecond))
	s.createIntegration()

	cs := newChats(*chats, *messages)
	for _, c := range cs {
		s.putClient(c)
	}
	s.deliverAll(cs, func() {
		// Into the Planfix work: once the first requests came, while webhooks still arrive.
		s.waitFor("the first Planfix requests", func() bool { return len(s.planfixRequests()) >= 2 })
		w, a := s.workers[0], s.apis[1]
		wpid, apid, reqs := w.pid(), a.pid(), len(s.planfixRequests())
		w.kill()
		t.Logf("worker1 pid %d killed (kill -9) after %d webhooks accepted and %d Planfix requests", wpid, s.accepted.Load(), reqs)
		a.stop()
		t.Logf("api2 pid %d stopped (SIGTERM) after %d webhooks accepted", apid, s.accepted.Load())
		time.Sleep(time.Second)
		w.start()
		s.restarted = time.Now()
		t.Logf("worker1 started again: pid %d", w.pid())
		a.start()
		s.waitReady(1)
		t.Logf("api2 started again: pid %d, ready after %v", a.pid(), time.Since(s.restarted).Round(100*time.Millisecond))
	})
	s.replyAndClose(cs)
	s.check(cs)
	t.Logf("the whole test took %v", time.Since(began).Round(100*time.Millisecond))
}

// waitReady waits until API i answers /readyz 200.
func (s *stack) waitReady(i int) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(s.apiURLs[i] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if s.apis[i].exited() {
			b, _ := os.ReadFile(s.apis[i].log)
			s.t.Fatalf("api%d exited: %s", i+1, testkit.Tail(string(b), 3000))
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("api%d not ready after 2 minutes", i+1)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *stack) do(method, url string, body any, out any) int {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		s.t.Fatalf("%s %s: HTTP %d %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// createIntegration creates, through api1's admin API, an integration wired to the
// sandbox, and keeps its webhooks' paths.
func (s *stack) createIntegration() {
	var out struct {
		Webhooks struct{ ChatraURL, PlanfixURL string }
	}
	s.do("POST", s.apiURLs[0]+"/api/v1/integrations", map[string]any{
		"id": "topo", "name": "Topology shop",
		"chatra": map[string]any{"apiUrl": s.sandbox + sandbox.ChatraPrefix, "publicKey": sandbox.DefaultChatraPublicKey,
			"secretKey": sandbox.DefaultChatraSecretKey, "agentEmail": "support@example.com"},
		"planfix": map[string]any{"accountUrl": s.sandbox + sandbox.PlanfixPrefix, "token": sandbox.DefaultPlanfixToken,
			"taskTemplateId": sandbox.PlanfixTaskTemplateID, "contactTemplateId": sandbox.PlanfixContactTemplateID,
			"completedStatusId": sandbox.PlanfixStatusCompleted, "assigneeUserIds": []int{5}, "employeeUserIds": []int{5, 6}},
		"options": map[string]any{"newConversationsPerMinute": 1000},
	}, &out)
	path := func(u string) string {
		i := strings.Index(u, "/webhooks/")
		if i < 0 {
			s.t.Fatalf("webhook URL %q", u)
		}
		return u[i:]
	}
	s.chatraP, s.planfixP = path(out.Webhooks.ChatraURL), path(out.Webhooks.PlanfixURL)
}

type message struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Text      string `json:"text"`
	CreatedAt int64  `json:"createdAt"`
}

type chat struct {
	id    string
	msgs  []message
	reply string
	task  int64
}

func (c *chat) name() string { return "Topo" + c.id }

func newChats(n, m int) []*chat {
	base := time.Now().Add(-time.Hour).UnixMilli()
	out := make([]*chat, n)
	for i := range out {
		c := &chat{id: fmt.Sprintf("T%d", i), reply: fmt.Sprintf("reply to T%d!", i)}
		for j := range m {
			c.msgs = append(c.msgs, message{ID: fmt.Sprintf("m%d", j), Type: "client",
				Text: fmt.Sprintf("visitor T%d says %c%d", i, 'A'+j%26, j), CreatedAt: base + int64(j)*1000})
		}
		out[i] = c
	}
	return out
}

func (s *stack) putClient(c *chat) {
	s.do("PUT", s.sandbox+"/_sandbox/chatra/clients/V-"+c.id, chatra.ClientCard{ID: "V-" + c.id, ChatID: c.id, Name: c.name()}, nil)
}

func (s *stack) chatraBody(event string, c *chat, msgs []message) []byte {
	if msgs == nil {
		msgs = []message{}
	}
	b, _ := json.Marshal(map[string]any{"eventName": event, "messages": msgs,
		"client": map[string]any{"id": "V-" + c.id, "chatId": c.id, "name": c.name()}})
	return b
}

// post delivers a webhook until it is answered 200, as Chatra and Planfix retry; each
// attempt goes to the next API in turn (a load balancer's round robin), so an API that
// is down is passed over.
func (s *stack) post(path string, body []byte) string {
	s.t.Helper()
	deadline := time.Now().Add(*waitMax)
	for {
		i := int(s.next.Add(1)) % len(s.apiURLs)
		resp, err := http.Post(s.apiURLs[i]+path, "application/json", bytes.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				s.accepted.Add(1)
				s.perAPI[i].Add(1)
				return string(b)
			}
			err = fmt.Errorf("HTTP %d %s", resp.StatusCode, b)
		}
		s.retried.Add(1)
		if time.Now().After(deadline) {
			s.t.Errorf("webhook never accepted: %v", err)
			return ""
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deliverAll delivers each chat's chatStarted and fragments, the chats concurrently, a
// chat's webhooks in order *pace apart. Once half are accepted, disrupt runs while the
// rest go on.
func (s *stack) deliverAll(cs []*chat, disrupt func()) {
	total := len(cs) * (1 + *messages)
	var (
		n    atomic.Int64
		once sync.Once
		wg   sync.WaitGroup
	)
	half := make(chan struct{})
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies := [][]byte{s.chatraBody("chatStarted", c, nil)}
			for _, m := range c.msgs {
				bodies = append(bodies, s.chatraBody("chatFragment", c, []message{m}))
			}
			for _, b := range bodies {
				s.post(s.chatraP, b)
				if n.Add(1) >= int64(total/2) {
					once.Do(func() { close(half) })
				}
				time.Sleep(*pace)
			}
		}()
	}
	disrupted := make(chan struct{})
	go func() {
		defer close(disrupted)
		<-half
		disrupt()
	}()
	wg.Wait()
	<-disrupted
	s.t.Logf("sent %d chats × (chatStarted + %d fragments) = %d Chatra webhooks, spread over both APIs", len(cs), *messages, total)
}

// state is what the test reads of the sandbox.
type state struct {
	Planfix struct {
		Tasks []struct {
			ID          int64  `json:"id"`
			Name        string `json:"name"`
			Description string `json:"description"`
			Status      struct {
				ID int64 `json:"id"`
			} `json:"status"`
			Comments []struct {
				Description string `json:"description"`
			} `json:"comments"`
		} `json:"tasks"`
	} `json:"planfix"`
	Chatra struct {
		Messages []json.RawMessage `json:"messages"`
	} `json:"chatra"`
}

func (s *stack) state() state {
	s.t.Helper()
	var st state
	s.do("GET", s.sandbox+"/_sandbox/state", nil, &st)
	return st
}

type planfixRequest struct {
	Time   time.Time `json:"time"`
	Status int       `json:"status"`
}

func (s *stack) planfixRequests() []planfixRequest {
	s.t.Helper()
	var out []planfixRequest
	s.do("GET", s.sandbox+"/_sandbox/planfix/requests", nil, &out)
	return out
}

// taskOf is c's task and its text (description and comments), if it exists.
func (st state) taskOf(c *chat) (id, status int64, text string, ok bool) {
	for _, t := range st.Planfix.Tasks {
		if strings.Contains(t.Name, " "+c.name()+" ") {
			var b strings.Builder
			b.WriteString(t.Description)
			for _, cm := range t.Comments {
				b.WriteString("\n" + cm.Description)
			}
			return t.ID, t.Status.ID, b.String(), true
		}
	}
	return 0, 0, "", false
}

func (st state) chatraCount(text string) int {
	n := 0
	for _, m := range st.Chatra.Messages {
		n += strings.Count(string(m), text)
	}
	return n
}

func (s *stack) waitFor(what string, cond func() bool) bool {
	s.t.Helper()
	deadline := time.Now().Add(*waitMax)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Errorf("%s: timed out after %v", what, *waitMax)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

// replyAndClose has an employee comment in each chat's task and delivers Planfix's
// webhook; once every message came into the task through its fragment and the reply
// reached the chat, it closes the chat with its transcript.
func (s *stack) replyAndClose(cs []*chat) {
	for _, c := range cs {
		if !s.waitFor("task of "+c.id, func() bool {
			id, _, _, ok := s.state().taskOf(c)
			c.task = id
			return ok
		}) {
			return
		}
		var out struct{ ID int64 }
		s.do("POST", fmt.Sprintf("%s/_sandbox/planfix/tasks/%d/comments", s.sandbox, c.task),
			map[string]any{"owner": "user:5", "description": c.reply}, &out)
		b, _ := json.Marshal(map[string]int64{"taskId": c.task, "commentId": out.ID})
		if a := s.post(s.planfixP, b); !strings.Contains(a, `"ok":true`) {
			s.t.Errorf("planfix webhook of %s answered %s", c.id, a)
		}
	}
	s.t.Logf("every chat has its task %v after the killed worker was started again", time.Since(s.restarted).Round(100*time.Millisecond))
	for _, c := range cs {
		s.waitFor("messages of "+c.id+" in its task", func() bool {
			_, _, text, _ := s.state().taskOf(c)
			for _, m := range c.msgs {
				if !strings.Contains(text, m.Text) {
					return false
				}
			}
			return true
		})
		s.waitFor("reply in chat "+c.id, func() bool { return s.state().chatraCount(c.reply) > 0 })
		transcript := append(append([]message{}, c.msgs...), message{ID: "r", Type: "agent", Text: c.reply, CreatedAt: time.Now().UnixMilli()})
		s.post(s.chatraP, s.chatraBody("chatTranscript", c, transcript))
	}
}

// check asserts the outcome and prints what it counted.
func (s *stack) check(cs []*chat) {
	t := s.t
	t.Helper()
	var msgsOK, dup, missing, disorder, repliesOK, completed int
	for _, c := range cs {
		s.waitFor("task of "+c.id+" completed", func() bool {
			_, status, _, _ := s.state().taskOf(c)
			return status == sandbox.PlanfixStatusCompleted
		})
		st := s.state()
		_, status, text, _ := st.taskOf(c)
		if status == sandbox.PlanfixStatusCompleted {
			completed++
		}
		last := -1
		for _, m := range c.msgs {
			switch n := strings.Count(text, m.Text); {
			case n == 0:
				missing++
				t.Errorf("%s: %q is not in task %d", c.id, m.Text, c.task)
				continue
			case n > 1:
				dup++
				t.Errorf("%s: %q is %d times in task %d", c.id, m.Text, n, c.task)
			default:
				msgsOK++
			}
			at := strings.Index(text, m.Text)
			if at < last {
				disorder++
				t.Errorf("%s: %q comes before the message sent before it, in task %d", c.id, m.Text, c.task)
			}
			last = at
		}
		if n := st.chatraCount(c.reply); n == 1 {
			repliesOK++
		} else {
			t.Errorf("%s: the reply is %d times in the chat", c.id, n)
		}
	}
	reqs := s.planfixRequests()
	var refused int
	minGap := time.Duration(-1)
	var prev time.Time
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			refused++
			continue
		}
		if !prev.IsZero() && (minGap < 0 || r.Time.Sub(prev) < minGap) {
			minGap = r.Time.Sub(prev)
		}
		prev = r.Time
	}
	if refused > 0 {
		t.Errorf("the sandbox refused %d Planfix requests for the rate limit: the workers did not keep it between them", refused)
	}
	t.Logf("webhooks answered 200: %d (api1 %d, api2 %d); attempts refused or unanswered and sent again: %d",
		s.accepted.Load(), s.perAPI[0].Load(), s.perAPI[1].Load(), s.retried.Load())
	t.Logf("chats %d: messages once %d/%d (missing %d, repeated %d, out of order %d), replies once %d/%d, tasks completed %d/%d",
		len(cs), msgsOK, len(cs)**messages, missing, dup, disorder, repliesOK, len(cs), completed, len(cs))
	t.Logf("Planfix requests %d, refused for the limit (429) %d, least gap between two taken %v (limit %v, workers' spacing %v)",
		len(reqs), refused, minGap.Round(time.Millisecond), sandboxInterval, planfixInterval)
}
