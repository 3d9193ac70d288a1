package main

// The priorities scenario's schedule, computed: what a round gives when every Planfix
// slot goes, at its time, to the best request then ready, with no slot lost. Printed
// next to the measured rounds, so that a measured figure far from its computed one
// shows a slot lost or given out of order, and for a few other orders and request
// shapes, so that the goals can be weighed against what any of them could give.

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"time"
)

// The model's delays, as the traced rounds show them: a chat's first request goes 40 ms
// after its chatStarted, a request that follows another of the same chat across a
// workflow task 150 ms after the other's slot (one in the same activity at once), and
// the reply's read 200 ms after its chat's first message went in (the employee's answer,
// the webhook). The comment lane writes a chat's messages once none came for 2 s
// (workflows' reorder window).
const (
	modelFirst   = 40 * time.Millisecond
	modelStep    = 150 * time.Millisecond
	modelReply   = 200 * time.Millisecond
	modelReorder = 2 * time.Second
)

// prioModel is one order or request shape the model computes.
type prioModel struct {
	name string
	// rank of each kind of request under priorities (first come, first served ignores
	// it): search, create (the contact), task, first (the first comment), reply (its
	// read), later (a later comment), action (on the contact), link (the contact set on
	// a task made before it).
	rank map[string]int
	// taskFirst: the task is created right after the contact search; the contact is
	// created and set on the task afterwards.
	taskFirst bool
	// inTask: the first messages go into the task's description as it is created.
	inTask bool
}

var prioModels = []prioModel{
	{name: "as built", rank: modelRanks(nil)},
	{name: "first messages in class 2", rank: modelRanks(map[string]int{"first": 2})},
	{name: "replies in class 2", rank: modelRanks(map[string]int{"reply": 2})},
	{name: "task before contact", rank: modelRanks(map[string]int{"create": 4, "link": 4}), taskFirst: true},
	{name: "first messages in the task", rank: modelRanks(nil), inTask: true},
}

// modelRanks returns the classes as built (planfix.Class.Rank), with changes.
func modelRanks(changes map[string]int) map[string]int {
	r := map[string]int{"search": 1, "create": 1, "task": 1, "first": 1, "reply": 1, "later": 2, "action": 4, "link": 4}
	for k, v := range changes {
		r[k] = v
	}
	return r
}

// modelChat is what the model computed of one chat: when its task was made, its first
// message went in and its reply was read, from its start.
type modelChat struct {
	task, first, reply time.Duration
}

// run computes a round of n chats started window/n apart, each with a second message
// second after its start, at interval, with priorities or first come, first served. It
// returns each chat's figures and the requests spent.
func (m prioModel) run(n int, window, second, interval time.Duration, priorities bool) ([]modelChat, int) {
	type req struct {
		ready time.Duration
		kind  string
		chat  int
	}
	start := make([]time.Duration, n)
	both := make([]bool, n) // the first comment carries the second message too
	at := make([]map[string]time.Duration, n)
	var queue []req
	for i := range n {
		start[i] = window * time.Duration(i) / time.Duration(n)
		at[i] = map[string]time.Duration{}
		queue = append(queue, req{start[i] + modelFirst, "search", i})
	}
	// firstComment queues chat i's first comment after its task, made at t.
	firstComment := func(i int, t time.Duration) {
		ready := max(t+2*modelStep, start[i]+modelReorder)
		if ready >= start[i]+second { // the second message came meanwhile: one comment
			ready, both[i] = max(ready, start[i]+second+modelReorder), true
		}
		queue = append(queue, req{ready, "first", i})
	}
	better := func(a, b req) bool {
		if priorities && m.rank[a.kind] != m.rank[b.kind] {
			return m.rank[a.kind] < m.rank[b.kind]
		}
		if priorities && start[a.chat] != start[b.chat] {
			return start[a.chat] < start[b.chat]
		}
		return a.ready < b.ready || (a.ready == b.ready && a.chat < b.chat)
	}
	var t time.Duration
	spent := 0
	for len(queue) > 0 {
		next := slices.MinFunc(queue, func(a, b req) int { return cmp.Compare(a.ready, b.ready) }).ready
		t = max(t, next)
		best := -1
		for j, r := range queue {
			if r.ready <= t && (best < 0 || better(r, queue[best])) {
				best = j
			}
		}
		r := queue[best]
		queue = slices.Delete(queue, best, best+1)
		spent++
		i := r.chat
		at[i][r.kind] = t
		switch r.kind {
		case "search":
			if m.taskFirst {
				queue = append(queue, req{t + modelStep, "task", i})
			} else {
				queue = append(queue, req{t, "create", i})
			}
		case "create":
			if m.taskFirst {
				queue = append(queue, req{t + modelStep, "link", i})
			} else {
				queue = append(queue, req{t + modelStep, "task", i})
			}
		case "task":
			if m.inTask {
				at[i]["first"] = t
				queue = append(queue, req{t + modelReply, "reply", i})
			} else {
				firstComment(i, t)
			}
			if m.taskFirst {
				queue = append(queue, req{t + 2*modelStep, "create", i})
			}
			queue = append(queue, req{t + 2*modelStep, "action", i})
		case "first":
			queue = append(queue, req{t + modelReply, "reply", i})
			if !both[i] {
				queue = append(queue, req{max(t+modelStep, start[i]+second+modelReorder), "later", i})
			}
		}
		t += interval
	}
	chats := make([]modelChat, n)
	for i := range chats {
		chats[i] = modelChat{task: at[i]["task"] - start[i], first: at[i]["first"] - start[i], reply: at[i]["reply"] - at[i]["first"]}
	}
	return chats, spent
}

// figures returns the model's chatStarted → task, → first message and reply's waits.
func modelFigures(chats []modelChat) (task, first, reply []time.Duration) {
	for _, c := range chats {
		task, first, reply = append(task, c.task), append(first, c.first), append(reply, c.reply)
	}
	return
}

// printPrioModels prints the computed schedule of every model, with priorities and first
// come, first served, and their ratios, for the round's shape.
func printPrioModels(n int, window, second, interval time.Duration) {
	fmt.Fprintf(os.Stderr, "  computed (every slot at its time to the best ready request, none lost):\n")
	for _, m := range prioModels {
		p, pn := m.run(n, window, second, interval, true)
		f, fn := m.run(n, window, second, interval, false)
		pt, pf, pr := modelFigures(p)
		ft, ff, fr := modelFigures(f)
		fmt.Fprintf(os.Stderr, "  %-27s prio task p50 %4.1fs max %4.1fs, 1st p50 %4.1fs max %4.1fs, reply max %4.1fs, %d req | fcfs task p50 %4.1fs, 1st p50 %4.1fs max %4.1fs, reply max %4.1fs, %d req | ratios task %.2f, 1st %.2f, 1st max %.2f\n",
			m.name, pct(pt, .5).Seconds(), pct(pt, 1).Seconds(), pct(pf, .5).Seconds(), pct(pf, 1).Seconds(), pct(pr, 1).Seconds(), pn,
			pct(ft, .5).Seconds(), pct(ff, .5).Seconds(), pct(ff, 1).Seconds(), pct(fr, 1).Seconds(), fn,
			pct(pt, .5).Seconds()/pct(ft, .5).Seconds(), pct(pf, .5).Seconds()/pct(ff, .5).Seconds(), pct(pf, 1).Seconds()/pct(ff, 1).Seconds())
		if m.name == prioModels[0].name {
			for _, r := range []struct {
				mode  string
				chats []modelChat
			}{{"priorities", p}, {"fifo", f}} {
				for i, c := range r.chats {
					fmt.Fprintf(os.Stderr, "  %s computed: %-3d %8.1fs %8.1fs %18.1fs\n", r.mode, i+1, c.task.Seconds(), c.first.Seconds(), c.reply.Seconds())
				}
			}
		}
	}
}
