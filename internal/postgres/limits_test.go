package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// A value PostgreSQL refuses (a NUL byte, invalid UTF-8) is EINVALID, which no retry
// fixes, and the error quotes neither the value nor the server's message about it.
func TestRefusedValuesArePermanent(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	for name, err := range map[string]error{
		"contact email with a NUL":     db.SaveContact(ctx, postgres.Contact{IntegrationID: "shop", ChatraClientID: "V1", Email: "iv\x00an@example.com", PlanfixContactID: 7}),
		"client id with invalid UTF-8": db.SaveContact(ctx, postgres.Contact{IntegrationID: "shop", ChatraClientID: "V\xff", PlanfixContactID: 7}),
		"customer name with a NUL": func() error {
			_, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1", CustomerName: "Secret\x00Name"})
			return err
		}(),
	} {
		if chatrabridge.ErrorCode(err) != chatrabridge.EINVALID {
			t.Errorf("%s: %v (code %q), want EINVALID", name, err, chatrabridge.ErrorCode(err))
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "Secret") || strings.Contains(msg, "ivan") || !strings.Contains(msg, "SQLSTATE 22") {
			t.Errorf("%s: error %q quotes the value or lacks the SQLSTATE", name, msg)
		}
	}
	// The store still works for what it can keep.
	if err := db.SaveContact(ctx, postgres.Contact{IntegrationID: "shop", ChatraClientID: "V1", Email: "ivan@example.com", PlanfixContactID: 7}); err != nil {
		t.Fatal(err)
	}
}

// New chats are admitted up to the integration's limit a minute; a chat the store knows
// (admitted before, or with a conversation row) always is; the refusal says when to come
// back; integrations do not share the limit.
func TestAdmitChat(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	insertIntegration(t, db, "other")
	admit := func(integration, chat string) (bool, time.Duration) {
		t.Helper()
		ok, retry, err := db.AdmitChat(ctx, integration, chat, 2)
		if err != nil {
			t.Fatal(err)
		}
		return ok, retry
	}
	for _, chat := range []string{"A", "B", "A", "B"} {
		if ok, _ := admit("shop", chat); !ok {
			t.Fatalf("chat %s refused within the limit", chat)
		}
	}
	ok, retry := admit("shop", "C")
	if ok || retry < time.Second || retry > postgres.AdmissionWindow {
		t.Fatalf("third new chat: admitted %v, retry after %v; want refused, within the window", ok, retry)
	}
	if ok, _ := admit("shop", "A"); !ok {
		t.Error("a chat admitted before is refused once the limit is reached")
	}
	if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "OLD", WorkflowID: "chatra/shop/OLD"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := admit("shop", "OLD"); !ok {
		t.Error("a chat with a conversation (from before admissions were recorded) is refused")
	}
	if ok, _ := admit("other", "C"); !ok {
		t.Error("another integration's chat is refused by this one's limit")
	}
	// Without a limit everything is admitted.
	if ok, _, err := db.AdmitChat(ctx, "shop", "D", 0); err != nil || !ok {
		t.Fatalf("no limit: %v %v", ok, err)
	}
	// The janitor forgets them: then a chat is new again.
	if n, err := db.DeleteChatraBefore(ctx, time.Now().Add(time.Hour)); err != nil || n != 4 {
		t.Fatalf("deleted %d rows, %v; want 4", n, err)
	}
}

// A delivery's event key, once recorded, is seen, per integration.
func TestChatraEvents(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	insertIntegration(t, db, "other")
	seen := func(integration, key string) bool {
		t.Helper()
		ok, err := db.SeenChatraEvent(ctx, integration, key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if seen("shop", "chatStarted:abc") {
		t.Fatal("an event never recorded is seen")
	}
	for range 2 {
		if err := db.RecordChatraEvent(ctx, "shop", "chatStarted:abc"); err != nil {
			t.Fatal(err)
		}
	}
	if !seen("shop", "chatStarted:abc") || seen("other", "chatStarted:abc") {
		t.Fatal("recorded events are not seen per integration")
	}
}

// Held replies are bounded per integration: beyond the bound a new one is refused
// (ELIMIT), a repeated one is not, and once a conversation takes some there is room.
func TestHoldReplyAtMost(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	insertIntegration(t, db, "other")
	hold := func(integration string, task, comment int64) error {
		return db.HoldReplyAtMost(ctx, integration, task, comment, 2)
	}
	for _, c := range [][2]int64{{42, 1}, {43, 2}} {
		if err := hold("shop", c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := hold("shop", 44, 3); chatrabridge.ErrorCode(err) != chatrabridge.ELIMIT {
		t.Fatalf("third held reply: %v, want ELIMIT", err)
	}
	if err := hold("shop", 42, 1); err != nil {
		t.Fatalf("a repeated reply at the bound: %v", err)
	}
	if err := hold("other", 44, 3); err != nil {
		t.Fatalf("another integration: %v", err)
	}
	task := int64(42)
	if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C", WorkflowID: "chatra/shop/C", PlanfixTaskID: &task}); err != nil {
		t.Fatal(err)
	}
	if err := hold("shop", 44, 3); err != nil {
		t.Fatalf("after a take: %v", err)
	}
	if n := heldCount(t, db, "shop", 44); n != 1 {
		t.Fatalf("held for task 44: %d", n)
	}
}

// A chat that joined a task on an email claim does not receive the task's replies: the
// task's reply goes to the chat that created it even when the joined one was active
// last, and the joined chat takes none of the held replies. A chat of the same Chatra
// visitor as the creator, or of a visitor mapped to the task's contact, does receive
// them. A task whose only chat joined on a claim is found, marked.
func TestRepliesGoToVerifiedChats(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	task, contact := int64(42), int64(7)
	save := func(chat, client string, joined bool, task *int64) {
		t.Helper()
		if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: chat, WorkflowID: "chatra/shop/" + chat,
			ClientID: client, PlanfixTaskID: task, PlanfixContactID: &contact, JoinedTask: joined}); err != nil {
			t.Fatal(err)
		}
	}
	receives := func(chat string) bool {
		t.Helper()
		ok, err := db.ReceivesReplies(ctx, "shop", chat)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	save("VICTIM", "V-victim", false, &task)
	save("IMPOSTOR", "V-impostor", true, &task)
	if !receives("VICTIM") || receives("IMPOSTOR") {
		t.Fatalf("victim receives %v, impostor %v", receives("VICTIM"), receives("IMPOSTOR"))
	}
	if err := db.TouchConversation(ctx, "shop", "IMPOSTOR"); err != nil { // wrote last
		t.Fatal(err)
	}
	if c, err := db.FindConversationByTask(ctx, "shop", task); err != nil || c.ChatID != "VICTIM" || !c.ReceivesReplies {
		t.Fatalf("the task's reply goes to %+v (%v), want VICTIM", c, err)
	}
	save("PHONE", "V-victim", true, &task) // the victim's own visitor, another chat
	if !receives("PHONE") {
		t.Error("a chat of the creator's Chatra visitor does not receive the replies")
	}
	if err := db.SaveContact(ctx, postgres.Contact{IntegrationID: "shop", ChatraClientID: "V-mapped", PlanfixContactID: contact}); err != nil {
		t.Fatal(err)
	}
	save("MAPPED", "V-mapped", true, &task)
	if !receives("MAPPED") {
		t.Error("a chat of a visitor mapped to the task's contact does not receive the replies")
	}

	// Only the impostor is left in the task (the others moved on): it is found, marked.
	other := int64(99)
	save("VICTIM", "V-victim", false, &other)
	save("PHONE", "V-victim", false, &other)
	save("MAPPED", "V-mapped", false, &other)
	save("IMPOSTOR", "V-impostor", true, &task)
	if c, err := db.FindConversationByTask(ctx, "shop", task); err != nil || c.ChatID != "IMPOSTOR" || c.ReceivesReplies {
		t.Fatalf("task with only a claimed chat: %+v (%v), want IMPOSTOR, marked", c, err)
	}
	// A held reply is not taken by a chat that does not receive replies.
	held := int64(1000)
	if err := db.HoldReply(ctx, "shop", held, 1); err != nil {
		t.Fatal(err)
	}
	got, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "IMPOSTOR", WorkflowID: "chatra/shop/IMPOSTOR",
		ClientID: "V-impostor", PlanfixTaskID: &held, JoinedTask: true})
	if err != nil || len(got) != 0 {
		t.Fatalf("a claimed chat took held replies %v (%v)", got, err)
	}
}
