package main

// ---- 6. priorities: Planfix's one request a second, spent where a person waits ----
//
// Production's limiter interval (1.2 s), the sandbox's Planfix enforcing one request a
// second on the one account: a single new chat, then a burst of new chats within a few
// seconds, each with an email and one message; a second message 5 s after each chat
// began, and an employee's reply as soon as the first message is visible in the task.
// The burst runs with priorities (the limiter's default) and then first come, first
// served (RateLimiter.FirstComeFirstServed) in the same run, and reports both and their
// ratio.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

var (
	prioChats   = flag.Int("priorities-chats", 10, "new chats of the priorities scenario's burst")
	prioWindow  = flag.Duration("priorities-window", 2*time.Second, "the priorities burst's chats start within this")
	prioSecond  = flag.Duration("priorities-second-after", 5*time.Second, "the second message of each chat of the priorities burst comes this long after its start")
	prioTimeout = flag.Duration("priorities-timeout", 10*time.Minute, "give up waiting for a priorities round after this")
	prioOnly    = flag.String("priorities-modes", "priorities,fifo", "rounds of the priorities scenario: priorities, fifo (first come, first served), or both")
	prioTrace   = flag.Bool("priorities-trace", false, "print each Planfix request of the priorities rounds: when, what, for which chat")
)

// prioChat is one chat of a round and what was measured of it (zero: not seen).
type prioChat struct {
	id, email, first, second, reply string
	start                           time.Time // chatStarted posted
	task                            time.Duration
	firstVisible                    time.Duration
	secondVisible                   time.Duration
	replyAt                         time.Time // the reply's webhook posted
	replyComment                    int64     // the reply's comment in the task
	delivered                       time.Duration
	taskID                          int64
	secondSent, replied             bool
}

// prioRound is one round's figures.
type prioRound struct {
	mode     string
	chats    []*prioChat
	requests int
	rejected int
	paths    map[string]int
	done     bool
}

func (e *env) priorities(ctx context.Context) error {
	e.limiter.useProd.Store(true)
	e.sb.Planfix().SetRateInterval(time.Second)
	// The setting of the measurements: a new task only if the contact has no
	// active task (the search a contact created in the same setup is spared).
	on, off := true, false
	if _, err := e.store.UpdateIntegration(ctx, app.DemoIntegrationID, chatrabridge.IntegrationUpdate{
		Options: &chatrabridge.OptionsUpdate{NewTaskOnlyIfNoActiveTask: &on}}); err != nil {
		return err
	}
	defer func() {
		e.sb.Planfix().SetRateInterval(0)
		e.limiter.useProd.Store(false)
		e.limiter.fifo.Store(false)
		_, _ = e.store.UpdateIntegration(context.Background(), app.DemoIntegrationID, chatrabridge.IntegrationUpdate{
			Options: &chatrabridge.OptionsUpdate{NewTaskOnlyIfNoActiveTask: &off}})
	}()

	// A single new chat with an email: its task.
	single, err := e.prioRound(ctx, "single", 1, 0)
	if err != nil {
		return err
	}
	if c := single.chats[0]; c.task > 0 {
		goal := 2*1200*time.Millisecond + 300*time.Millisecond
		add(Result{Scenario: "prio", Metric: "single chat: chatStarted → task", Value: c.task.Seconds(), Unit: "s",
			Goal: fmt.Sprintf("<= %.1f (2 intervals + 0.3)", goal.Seconds()), Met: bp(c.task <= goal),
			Extra: map[string]any{"requests": single.paths}})
	}

	rounds := map[string]*prioRound{}
	for _, mode := range strings.Split(*prioOnly, ",") {
		mode = strings.TrimSpace(mode)
		e.limiter.fifo.Store(mode == "fifo")
		e.settle(30 * time.Second)
		r, err := e.prioRound(ctx, mode, *prioChats, *prioWindow)
		if err != nil {
			return err
		}
		rounds[mode] = r
		printPrioRound(r)
	}
	printPrioModels(*prioChats, *prioWindow, *prioSecond, postgres.DefaultPlanfixInterval)
	p, f := rounds["priorities"], rounds["fifo"]
	for _, r := range []*prioRound{p, f} {
		if r == nil {
			continue
		}
		task, first, reply := r.figures()
		add(Result{Scenario: "prio", Metric: r.mode + ": chatStarted → task p50", Value: pct(task, 0.5).Seconds(), Unit: "s"})
		add(Result{Scenario: "prio", Metric: r.mode + ": chatStarted → task max", Value: pct(task, 1).Seconds(), Unit: "s"})
		add(Result{Scenario: "prio", Metric: r.mode + ": → 1st message in task p50", Value: pct(first, 0.5).Seconds(), Unit: "s"})
		add(Result{Scenario: "prio", Metric: r.mode + ": → 1st message in task max", Value: pct(first, 1).Seconds(), Unit: "s"})
		add(Result{Scenario: "prio", Metric: r.mode + ": reply → in Chatra p50", Value: pct(reply, 0.5).Seconds(), Unit: "s"})
		add(Result{Scenario: "prio", Metric: r.mode + ": reply → in Chatra max", Value: pct(reply, 1).Seconds(), Unit: "s"})
		add(Result{Scenario: "prio", Metric: r.mode + ": Planfix requests spent", Value: float64(r.requests), Unit: "req", Extra: map[string]any{"requests": r.paths}})
		add(Result{Scenario: "prio", Metric: r.mode + ": Planfix 429s (rate limit)", Value: float64(r.rejected), Unit: "req", Goal: "0", Met: bp(r.rejected == 0)})
		add(Result{Scenario: "prio", Metric: r.mode + ": round complete", Value: map[bool]float64{true: 1, false: 0}[r.done], Unit: "bool", Goal: "1", Met: bp(r.done)})
	}
	if p != nil && f != nil {
		pt, pf, pr := p.figures()
		ft, ff, fr := f.figures()
		ratio := func(a, b time.Duration) float64 {
			if b <= 0 {
				return 0
			}
			return a.Seconds() / b.Seconds()
		}
		add(Result{Scenario: "prio", Metric: "ratio task p50 (prio/fifo)", Value: ratio(pct(pt, .5), pct(ft, .5)), Unit: "x", Goal: "<= 0.45", Met: bp(ratio(pct(pt, .5), pct(ft, .5)) <= 0.45)})
		add(Result{Scenario: "prio", Metric: "ratio task max (prio/fifo)", Value: ratio(pct(pt, 1), pct(ft, 1)), Unit: "x"})
		add(Result{Scenario: "prio", Metric: "ratio 1st message p50 (prio/fifo)", Value: ratio(pct(pf, .5), pct(ff, .5)), Unit: "x", Goal: "<= 0.5", Met: bp(ratio(pct(pf, .5), pct(ff, .5)) <= 0.5)})
		add(Result{Scenario: "prio", Metric: "ratio 1st message max (prio/fifo)", Value: ratio(pct(pf, 1), pct(ff, 1)), Unit: "x", Goal: "<= 1", Met: bp(ratio(pct(pf, 1), pct(ff, 1)) <= 1)})
		add(Result{Scenario: "prio", Metric: "ratio reply p50 (prio/fifo)", Value: ratio(pct(pr, .5), pct(fr, .5)), Unit: "x"})
		add(Result{Scenario: "prio", Metric: "ratio reply max (prio/fifo)", Value: ratio(pct(pr, 1), pct(fr, 1)), Unit: "x"})
		add(Result{Scenario: "prio", Metric: "ratio requests (prio/fifo)", Value: float64(p.requests) / float64(max(f.requests, 1)), Unit: "x", Goal: "<= 1", Met: bp(p.requests <= f.requests)})
	}
	return nil
}

// figures returns a round's chatStarted → task, chatStarted → first message visible and
// reply → delivered, of the chats where each was seen.
func (r *prioRound) figures() (task, first, reply []time.Duration) {
	for _, c := range r.chats {
		if c.task > 0 {
			task = append(task, c.task)
		}
		if c.firstVisible > 0 {
			first = append(first, c.firstVisible)
		}
		if c.delivered > 0 {
			reply = append(reply, c.delivered)
		}
	}
	return
}

func printPrioRound(r *prioRound) {
	fmt.Fprintf(os.Stderr, "  %s: %-3s %9s %9s %9s %9s\n", r.mode, "#", "task", "1st msg", "2nd msg", "reply")
	for i, c := range r.chats {
		fmt.Fprintf(os.Stderr, "  %s: %-3d %8.1fs %8.1fs %8.1fs %8.1fs\n", r.mode, i+1, c.task.Seconds(), c.firstVisible.Seconds(), c.secondVisible.Seconds(), c.delivered.Seconds())
	}
	fmt.Fprintf(os.Stderr, "  %s: %d Planfix requests, %d refused (429): %v\n", r.mode, r.requests, r.rejected, r.paths)
}

// prioRound runs n new chats starting within window and waits until every one has its
// task, both messages in it and its reply in Chatra (or the timeout).
func (e *env) prioRound(ctx context.Context, mode string, n int, window time.Duration) (*prioRound, error) {
	r := &prioRound{mode: mode, paths: map[string]int{}}
	before := len(e.sb.Planfix().RequestLog())
	for i := range n {
		id := fmt.Sprintf("%s-p%s%d", e.run, mode[:1], i)
		r.chats = append(r.chats, &prioChat{id: id, email: fmt.Sprintf("p-%s@example.com", strings.ToLower(id)),
			first: "first message of " + id, second: "second message of " + id, reply: "employee answer to " + id})
	}
	errs := make(chan error, 3*n)
	begin := time.Now()
	for i, c := range r.chats {
		if n > 1 {
			time.Sleep(time.Until(begin.Add(window * time.Duration(i) / time.Duration(n))))
		}
		c.start = time.Now()
		go func() {
			if err := e.chatraEmail("chatStarted", c.id, c.email, []msg{{ID: "m1", Type: "client", Text: c.first, CreatedAt: time.Now().UnixMilli()}}); err != nil {
				errs <- err
			}
		}()
	}
	deadline := time.Now().Add(*prioTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-errs:
			return nil, err
		default:
		}
		tasks := e.sb.Planfix().Tasks()
		done := true
		for _, c := range r.chats {
			now := time.Now()
			if !c.secondSent && now.Sub(c.start) >= *prioSecond {
				c.secondSent = true
				go func() {
					if err := e.chatraEmail("chatFragment", c.id, c.email, []msg{{ID: "m2", Type: "client", Text: c.second, CreatedAt: time.Now().UnixMilli()}}); err != nil {
						errs <- err
					}
				}()
			}
			if c.taskID == 0 {
				if t, ok := taskOf(tasks, c.id); ok {
					c.taskID, c.task = t.ID, now.Sub(c.start)
				}
			}
			if c.taskID != 0 && (c.firstVisible == 0 || c.secondVisible == 0) {
				text := e.taskText(c.taskID)
				if c.firstVisible == 0 && strings.Contains(text, c.first) {
					c.firstVisible = now.Sub(c.start)
				}
				if c.secondVisible == 0 && c.secondSent && strings.Contains(text, c.second) {
					c.secondVisible = now.Sub(c.start)
				}
			}
			if c.firstVisible > 0 && !c.replied {
				// The employee read the first message and answers in the task; Planfix's
				// automation calls the bridge's webhook.
				c.replied = true
				cid, err := e.sb.Planfix().AddComment(sandbox.PlanfixComment{TaskID: c.taskID, Owner: "user:5", Description: c.reply})
				if err != nil {
					return nil, err
				}
				c.replyAt, c.replyComment = time.Now(), cid
				body, _ := json.Marshal(map[string]int64{"taskId": c.taskID, "commentId": cid})
				if code, err := e.post(e.planfixHook, body); err != nil || code != http.StatusOK {
					return nil, fmt.Errorf("planfix webhook: %d %v", code, err)
				}
			}
			if c.replied && c.delivered == 0 {
				for _, m := range e.sb.Chatra().Messages() {
					if strings.Contains(m.Text, c.reply) {
						c.delivered = time.Since(c.replyAt)
						break
					}
				}
			}
			if c.task == 0 || c.firstVisible == 0 || (c.secondSent && c.secondVisible == 0) || !c.secondSent || c.delivered == 0 {
				done = false
			}
		}
		if done {
			r.done = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.settle(30 * time.Second) // the optional calls still in the queue count as spent
	if *prioTrace {
		e.traceRound(r, begin, e.sb.Planfix().RequestLog()[before:])
	}
	for _, q := range e.sb.Planfix().RequestLog()[before:] {
		r.requests++
		if q.Status == http.StatusTooManyRequests {
			r.rejected++
		}
		r.paths[q.Method+" "+q.Path]++
	}
	if !r.done {
		fmt.Fprintf(os.Stderr, "  %s: not complete after %v\n", mode, *prioTimeout)
	}
	return r, nil
}

// chatraEmail posts a Chatra webhook whose visitor card has an email.
func (e *env) chatraEmail(event, chatID, email string, msgs []msg) error {
	if err := e.sb.Chatra().PutClient(chatra.ClientCard{ID: "V-" + chatID, ChatID: chatID, Name: customer(chatID), Email: email}); err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]any{
		"eventName": event, "messages": msgs,
		"client": map[string]any{"id": "V-" + chatID, "chatId": chatID, "name": customer(chatID), "email": email},
	})
	code, err := e.post(e.chatraHook, b)
	if err == nil && code != 200 {
		err = fmt.Errorf("chatra webhook %s %s: HTTP %d", event, chatID, code)
	}
	return err
}

// traceRound prints a round's Planfix requests: the time since the round began, the
// status, the request, and the chat it served (by its email, customer name, task,
// contact or reply comment), so that the order the limiter chose can be read.
func (e *env) traceRound(r *prioRound, begin time.Time, log []sandbox.PlanfixRequest) {
	contacts := map[string]int64{}
	for _, c := range e.sb.Planfix().Contacts() {
		contacts[strings.ToLower(c.Email)] = c.ID
	}
	chatOf := func(q sandbox.PlanfixRequest) string {
		for i, c := range r.chats {
			needles := []string{c.email, customer(c.id)}
			if c.taskID != 0 {
				needles = append(needles, fmt.Sprintf("/task/%d/", c.taskID), fmt.Sprintf("/task/%d", c.taskID))
			}
			if id := contacts[c.email]; id != 0 {
				needles = append(needles, fmt.Sprintf("/contact/%d", id))
			}
			if c.replyComment != 0 {
				needles = append(needles, fmt.Sprintf("/comment/%d", c.replyComment))
			}
			for _, n := range needles {
				if strings.HasSuffix(q.Path, n) || strings.Contains(q.Path, n+"/") || strings.Contains(string(q.Body), n) {
					return fmt.Sprintf("chat %d", i+1)
				}
			}
		}
		return "?"
	}
	for _, q := range log {
		fmt.Fprintf(os.Stderr, "  %s trace: %7.2fs %d %-4s %-32s %s\n", r.mode, q.Time.Sub(begin).Seconds(), q.Status, q.Method, q.Path, chatOf(q))
	}
}
