package postgres_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

func heldCount(t *testing.T, db *postgres.DB, integrationID string, taskID int64) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM held_replies WHERE integration_id = $1 AND task_id = $2`, integrationID, taskID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func untaken(t *testing.T, db *postgres.DB, integrationID string, taskID int64) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM held_replies WHERE integration_id = $1 AND task_id = $2 AND taken_by IS NULL`, integrationID, taskID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A reply held for a task is taken by the first save of a conversation with the task
// (open or closed), oldest first, and by no other save; the other tasks' replies stay.
func TestHeldReplies(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	insertIntegration(t, db, "other")
	hold := func(integration string, task, comment int64) {
		t.Helper()
		if err := db.HoldReply(ctx, integration, task, comment); err != nil {
			t.Fatalf("hold %d of task %d: %v", comment, task, err)
		}
	}
	hold("shop", 42, 502)
	hold("shop", 42, 501)
	hold("shop", 42, 502) // Planfix sent it again: one row
	hold("shop", 43, 601)
	hold("other", 42, 701)
	if n := heldCount(t, db, "shop", 42); n != 2 {
		t.Fatalf("held for task 42: %d rows, want 2", n)
	}
	if err := db.HoldReply(ctx, "ghost", 42, 1); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Errorf("hold for an unknown integration: %v, want ENOTFOUND", err)
	}

	// Saves that take nothing: no task, or a conversation that no longer sends replies.
	task := int64(42)
	for _, c := range []postgres.Conversation{
		{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1"},
		{IntegrationID: "shop", ChatID: "X", WorkflowID: "chatra/shop/X", PlanfixTaskID: &task, Status: postgres.StatusCancelled},
		{IntegrationID: "shop", ChatID: "X", WorkflowID: "chatra/shop/X", PlanfixTaskID: &task, Status: postgres.StatusEnded},
	} {
		held, err := db.SaveConversation(ctx, c)
		if err != nil || len(held) != 0 {
			t.Fatalf("save %+v: held %v, %v; want none", c, held, err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM conversations WHERE chat_id = 'X'`); err != nil {
		t.Fatal(err)
	}
	// The first save with the task takes its replies, in the order they came; the same
	// save again (an activity retried after its result was lost) gets them again.
	first := postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1", PlanfixTaskID: &task, HeldRepliesKey: "run/5"}
	for range 2 {
		held, err := db.SaveConversation(ctx, first)
		if err != nil || !slices.Equal(held, []int64{502, 501}) {
			t.Fatalf("first save with task 42: held %v, %v; want [502 501]", held, err)
		}
	}
	for _, key := range []string{"run/9", ""} {
		held, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1", PlanfixTaskID: &task, Status: postgres.StatusClosed, HeldRepliesKey: key})
		if err != nil || len(held) != 0 {
			t.Fatalf("another save (key %q): held %v, %v; want none", key, held, err)
		}
	}
	if err := db.HoldReply(ctx, "shop", 42, 501); chatrabridge.ErrorCode(err) != chatrabridge.ECONFLICT {
		t.Errorf("a taken reply sent again: %v, want ECONFLICT (the webhook finds the conversation)", err)
	}
	if n := heldCount(t, db, "shop", 43); n != 1 {
		t.Errorf("task 43 of shop: %d held, want 1", n)
	}
	if n := heldCount(t, db, "other", 42); n != 1 {
		t.Errorf("task 42 of the other integration: %d held, want 1", n)
	}
	// Now that a conversation has the task, a reply is not held: the caller finds it.
	if err := db.HoldReply(ctx, "shop", 42, 503); chatrabridge.ErrorCode(err) != chatrabridge.ECONFLICT {
		t.Errorf("hold for a task with a conversation: %v, want ECONFLICT", err)
	}
	// Taken rows stay (for a retried save) until the janitor deletes every old row.
	n, err := db.DeleteHeldRepliesBefore(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 4 {
		t.Errorf("deleted %d held replies, %v; want 4", n, err)
	}
}

// A reply that comes while its task's first save runs is either held before the save
// and taken by it, or finds the conversation (ECONFLICT, then the webhook looks again):
// never left behind. Each round races the two on a new task.
func TestHoldReplyRacesSave(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	for task := int64(1); task <= 40; task++ {
		var wg sync.WaitGroup
		var held []int64
		var saveErr, holdErr error
		found := false
		wg.Add(2)
		go func() {
			defer wg.Done()
			held, saveErr = db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C", WorkflowID: "chatra/shop/C", PlanfixTaskID: &task})
		}()
		go func() {
			defer wg.Done()
			_, err := db.FindConversationByTask(ctx, "shop", task)
			if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND {
				err = db.HoldReply(ctx, "shop", task, 1000+task)
			} else if err == nil {
				found = true
			}
			holdErr = err
		}()
		wg.Wait()
		if saveErr != nil {
			t.Fatalf("task %d: save: %v", task, saveErr)
		}
		taken := slices.Equal(held, []int64{1000 + task})
		switch {
		case found || chatrabridge.ErrorCode(holdErr) == chatrabridge.ECONFLICT:
			if taken {
				t.Fatalf("task %d: the webhook found the conversation, and the save took the reply too", task)
			}
		case holdErr != nil:
			t.Fatalf("task %d: hold: %v", task, holdErr)
		case !taken:
			t.Fatalf("task %d: the reply was held and the save took %v: it is left behind", task, held)
		}
		if n := untaken(t, db, "shop", task); n != 0 {
			t.Fatalf("task %d: %d held replies left untaken", task, n)
		}
	}
}
