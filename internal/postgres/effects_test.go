package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

func TestEffects(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	if _, err := db.Effect(ctx, "shop", "reply:k#0"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Fatalf("unrecorded effect: %v, want ENOTFOUND", err)
	}
	if err := db.RecordEffect(ctx, "shop", "reply:k#0", "MSG1"); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordEffect(ctx, "shop", "reply:k#0", "MSG2"); err != nil {
		t.Fatalf("recording again: %v", err)
	}
	if r, err := db.Effect(ctx, "shop", "reply:k#0"); err != nil || r != "MSG1" {
		t.Fatalf("effect = %q, %v; want the first result MSG1", r, err)
	}
	if err := db.RecordEffect(ctx, "gone", "x", "y"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Errorf("effect of an unknown integration: %v, want ENOTFOUND", err)
	}
	n, err := db.DeleteEffectsBefore(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1", n, err)
	}
	if _, err := db.Effect(ctx, "shop", "reply:k#0"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Errorf("deleted effect still found: %v", err)
	}
}

// A contact's tasks come most recently active first, each once; touching a
// conversation makes it the one a reply to its task goes to.
func TestContactTasksAndTouch(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	save := func(chat string, task int64) {
		t.Helper()
		contact := int64(7)
		if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: chat, WorkflowID: "chatra/shop/" + chat,
			PlanfixTaskID: &task, PlanfixContactID: &contact}); err != nil {
			t.Fatal(err)
		}
	}
	save("A", 10)
	save("B", 20)
	save("C", 20) // a second device on the same task
	if err := db.TouchConversation(ctx, "shop", "A"); err != nil {
		t.Fatal(err)
	}
	ids, err := db.ContactTaskIDs(ctx, "shop", 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int64{10, 20}) {
		t.Errorf("contact tasks = %v, want [10 20]", ids)
	}
	if err := db.TouchConversation(ctx, "shop", "B"); err != nil {
		t.Fatal(err)
	}
	c, err := db.FindConversationByTask(ctx, "shop", 20)
	if err != nil || c.ChatID != "B" {
		t.Errorf("conversation of task 20 = %+v, %v; want chat B (touched last)", c, err)
	}
	if err := db.TouchConversation(ctx, "shop", "NONE"); err != nil {
		t.Errorf("touching a chat without a row: %v", err)
	}
}
