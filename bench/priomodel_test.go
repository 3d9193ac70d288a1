package main

import (
	"testing"
	"time"
)

const modelInterval = 1200 * time.Millisecond

// One chat alone: its contact search, contact create and task take the first three
// slots, its first comment the fourth, the reply's read the fifth; with the action on
// the contact and the second message (a comment of its own: it came after the first
// went in), seven requests.
func TestPrioModelOneChat(t *testing.T) {
	chats, spent := prioModels[0].run(1, 0, 5*time.Second, modelInterval, true)
	c := chats[0]
	if want := modelFirst + 2*modelInterval; c.task != want {
		t.Errorf("task after %v, want %v (the third slot)", c.task, want)
	}
	if want := modelFirst + 3*modelInterval; c.first != want {
		t.Errorf("first message after %v, want %v (the fourth slot)", c.first, want)
	}
	if c.reply != modelInterval {
		t.Errorf("reply read %v after the first message, want one interval", c.reply)
	}
	if spent != 7 {
		t.Errorf("%d requests, want 7", spent)
	}
}

// With priorities a chat is complete (contact, task, first message, reply's read) before
// the next one's setup begins: its task comes five slots after the one before. First
// come, first served serves the first chat's first message later, and the last chat's
// task sooner.
func TestPrioModelOrder(t *testing.T) {
	const n, window = 4, 2 * time.Second
	start := func(i int) time.Duration { return window * time.Duration(i) / n }
	chats, _ := prioModels[0].run(n, window, 5*time.Second, modelInterval, true)
	for i := 1; i < n; i++ {
		if d := chats[i].task + start(i) - chats[i-1].task - start(i-1); d != 5*modelInterval {
			t.Errorf("chat %d's task %v after chat %d's, want five slots", i+1, d, i)
		}
	}
	fifo, _ := prioModels[0].run(n, window, 5*time.Second, modelInterval, false)
	if fifo[0].first <= chats[0].first {
		t.Errorf("first come, first served: chat 1's first message after %v, priorities %v", fifo[0].first, chats[0].first)
	}
	if fifo[n-1].task >= chats[n-1].task {
		t.Errorf("first come, first served: chat %d's task after %v, priorities %v", n, fifo[n-1].task, chats[n-1].task)
	}
}
