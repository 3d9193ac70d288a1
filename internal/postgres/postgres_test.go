package postgres_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

func insertIntegration(t *testing.T, db *postgres.DB, id string) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(),
		`INSERT INTO integrations (id, name, chatra_token_hash, planfix_token_hash) VALUES ($1, $1, '\x00', '\x00')`, id)
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var version int
	if err := db.Pool.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 1 {
		t.Fatalf("schema version %d, want >= 1", version)
	}
	for _, table := range []string{"integrations", "contacts", "conversations", "employees", "planfix_rate_limits", "effects", "held_replies"} {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

// A database a newer release migrated (a rolling deploy, a rollback) does not stop this
// release from starting: Migrate leaves it as it is.
func TestMigrateLeavesANewerSchema(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	var before int
	if err := db.Pool.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate over a newer release's schema: %v", err)
	}
	var after int
	if err := db.Pool.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&after); err != nil || after != before {
		t.Fatalf("schema version %d after migrate, want %d left as it was (%v)", after, before, err)
	}
}

func TestConversations(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")

	if _, err := db.GetConversation(ctx, "shop", "nope"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Fatalf("missing conversation: got %v, want ENOTFOUND", err)
	}
	c := postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1", ClientID: "V1", CustomerName: "Ivan"}
	if _, err := db.SaveConversation(ctx, c); err != nil {
		t.Fatal(err)
	}
	task, contact := int64(42), int64(7)
	// A later save with only the task keeps what it does not mention.
	if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1", PlanfixTaskID: &task, PlanfixContactID: &contact}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetConversation(ctx, "shop", "C1")
	if err != nil {
		t.Fatal(err)
	}
	if got.CustomerName != "Ivan" || got.ClientID != "V1" || got.PlanfixTaskID == nil || *got.PlanfixTaskID != 42 || got.Status != postgres.StatusOpen || got.ClosedAt != nil {
		t.Fatalf("merged conversation = %+v", got)
	}

	// Two chats on one task (two devices): the reply goes to the one active last.
	if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C2", WorkflowID: "chatra/shop/C2", PlanfixTaskID: &task}); err != nil {
		t.Fatal(err)
	}
	byTask, err := db.FindConversationByTask(ctx, "shop", 42)
	if err != nil || byTask.ChatID != "C2" {
		t.Fatalf("by task = %+v, %v; want C2", byTask, err)
	}
	if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1"}); err != nil {
		t.Fatal(err)
	}
	if byTask, _ = db.FindConversationByTask(ctx, "shop", 42); byTask.ChatID != "C1" {
		t.Fatalf("by task after C1 wrote again = %s, want C1", byTask.ChatID)
	}

	if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1", Status: postgres.StatusClosed}); err != nil {
		t.Fatal(err)
	}
	closed, err := db.ListConversations(ctx, postgres.ConversationFilter{IntegrationID: "shop", Status: postgres.StatusClosed})
	if err != nil || len(closed) != 1 || closed[0].ChatID != "C1" || closed[0].ClosedAt == nil {
		t.Fatalf("closed list = %+v, %v", closed, err)
	}
	all, err := db.ListConversations(ctx, postgres.ConversationFilter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("all = %d, %v; want 2", len(all), err)
	}

	// A status outside the schema's set is refused by the database.
	_, err = db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C3", WorkflowID: "w3", Status: "bogus"})
	if err == nil {
		t.Fatal("bogus status accepted")
	}
	// An unknown integration is a not-found, not an internal error.
	_, err = db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "ghost", ChatID: "C1", WorkflowID: "chatra/ghost/C1"})
	if chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Fatalf("unknown integration: %v (code %s), want ENOTFOUND", err, chatrabridge.ErrorCode(err))
	}
}

func TestContacts(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	if err := db.SaveContact(ctx, postgres.Contact{IntegrationID: "shop", ChatraClientID: "laptop", Email: "Ivan@Example.com", PlanfixContactID: 12}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveContact(ctx, postgres.Contact{IntegrationID: "shop", ChatraClientID: "laptop", PlanfixContactID: 12}); err != nil {
		t.Fatal(err)
	}
	c, err := db.FindContactByClient(ctx, "shop", "laptop")
	if err != nil || c.PlanfixContactID != 12 || c.Email != "Ivan@Example.com" {
		t.Fatalf("by client = %+v, %v", c, err)
	}
	c, err = db.FindContactByEmail(ctx, "shop", "ivan@example.COM")
	if err != nil || c.ChatraClientID != "laptop" {
		t.Fatalf("by email (any case) = %+v, %v", c, err)
	}
	if _, err := db.FindContactByEmail(ctx, "shop", "other@example.com"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Fatalf("unknown email: %v", err)
	}
	if _, err := db.FindContactByEmail(ctx, "shop", ""); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Fatalf("empty email must match nothing: %v", err)
	}
}

// ForgetContact deletes every visitor's mapping to a contact Planfix no longer has, so
// that neither the visitor nor the email finds it again; other contacts' mappings, other
// integrations' and the conversations that used the contact are left as they are.
func TestForgetContact(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	insertIntegration(t, db, "shop")
	insertIntegration(t, db, "other")
	for _, c := range []postgres.Contact{
		{IntegrationID: "shop", ChatraClientID: "laptop", Email: "ivan@example.com", PlanfixContactID: 12},
		{IntegrationID: "shop", ChatraClientID: "phone", PlanfixContactID: 12},
		{IntegrationID: "shop", ChatraClientID: "anna", Email: "anna@example.com", PlanfixContactID: 13},
		{IntegrationID: "other", ChatraClientID: "laptop", Email: "ivan@example.com", PlanfixContactID: 12},
	} {
		if err := db.SaveContact(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	task, contact := int64(42), int64(12)
	if _, err := db.SaveConversation(ctx, postgres.Conversation{IntegrationID: "shop", ChatID: "C1", WorkflowID: "chatra/shop/C1",
		ClientID: "laptop", PlanfixTaskID: &task, PlanfixContactID: &contact}); err != nil {
		t.Fatal(err)
	}

	n, err := db.ForgetContact(ctx, "shop", 12)
	if err != nil || n != 2 {
		t.Fatalf("ForgetContact = %d, %v; want 2 visitors forgotten", n, err)
	}
	for _, client := range []string{"laptop", "phone"} {
		if c, err := db.FindContactByClient(ctx, "shop", client); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
			t.Errorf("visitor %s after forgetting: %+v, %v; want ENOTFOUND", client, c, err)
		}
	}
	if c, err := db.FindContactByEmail(ctx, "shop", "ivan@example.com"); chatrabridge.ErrorCode(err) != chatrabridge.ENOTFOUND {
		t.Errorf("email after forgetting: %+v, %v; want ENOTFOUND", c, err)
	}
	if c, err := db.FindContactByClient(ctx, "shop", "anna"); err != nil || c.PlanfixContactID != 13 {
		t.Errorf("another contact's visitor = %+v, %v; want contact 13 kept", c, err)
	}
	if c, err := db.FindContactByEmail(ctx, "other", "ivan@example.com"); err != nil || c.PlanfixContactID != 12 {
		t.Errorf("another integration's mapping = %+v, %v; want contact 12 kept", c, err)
	}
	if conv, err := db.GetConversation(ctx, "shop", "C1"); err != nil || conv.PlanfixContactID == nil || *conv.PlanfixContactID != 12 {
		t.Errorf("conversation after forgetting = %+v, %v; want its contact kept", conv, err)
	}

	if n, err := db.ForgetContact(ctx, "shop", 12); err != nil || n != 0 {
		t.Errorf("ForgetContact again = %d, %v; want 0, nil", n, err)
	}
	// The visitor is mapped again to the contact found or created next.
	if err := db.SaveContact(ctx, postgres.Contact{IntegrationID: "shop", ChatraClientID: "laptop", Email: "ivan@example.com", PlanfixContactID: 14}); err != nil {
		t.Fatal(err)
	}
	if c, err := db.FindContactByEmail(ctx, "shop", "ivan@example.com"); err != nil || c.PlanfixContactID != 14 {
		t.Errorf("email after mapping again = %+v, %v; want contact 14", c, err)
	}
}

func TestEnsureDatabaseCreatesIt(t *testing.T) {
	ctx := context.Background()
	base, err := pgx.ParseConfig(postgrestest.URL())
	if err != nil {
		t.Fatal(err)
	}
	name := "chatrabridge_ensure_test"
	admin, err := pgx.Connect(ctx, strings.Replace(postgrestest.URL(), "/"+base.Database+"?", "/postgres?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name) })

	url := strings.Replace(postgrestest.URL(), "/"+base.Database+"?", "/"+name+"?", 1)
	if err := postgres.EnsureDatabase(ctx, url); err != nil {
		t.Fatal(err)
	}
	if err := postgres.EnsureDatabase(ctx, url); err != nil {
		t.Fatalf("second call: %v", err)
	}
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenErrorsNameTheFix(t *testing.T) {
	ctx := context.Background()
	_, err := postgres.Open(ctx, "postgres://postgres:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if chatrabridge.ErrorCode(err) != chatrabridge.EUNAVAILABLE {
		t.Fatalf("unreachable server: %v (code %s)", err, chatrabridge.ErrorCode(err))
	}
	if msg := chatrabridge.ErrorMessage(err); !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "DATABASE_URL") {
		t.Errorf("message should name the address and the fix: %q", msg)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = postgres.Open(ctx, "postgres://postgres:hunter2@[::1/x")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL: %v (must fail without echoing the password)", err)
	}
}

// A connection that breaks mid-query (the server crashed: no error message, the socket
// just ends) is EUNAVAILABLE, so callers retry, not "internal".
func TestBrokenConnectionIsUnavailable(t *testing.T) {
	ctx := context.Background()
	target, err := pgx.ParseConfig(postgrestest.URL())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conns := make(chan net.Conn, 2)
	go func() { // a proxy to the server whose connections the test cuts
		c, err := l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", net.JoinHostPort(target.Host, strconv.Itoa(int(target.Port))))
		if err != nil {
			c.Close()
			return
		}
		conns <- c
		conns <- s
		go func() { _, _ = io.Copy(s, c) }()
		_, _ = io.Copy(c, s)
	}()
	cfg := target.Copy()
	cfg.Host, cfg.Port = "127.0.0.1", uint16(l.Addr().(*net.TCPAddr).Port)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	go func() {
		time.Sleep(300 * time.Millisecond)
		client, server := <-conns, <-conns
		server.Close()
		client.Close()
	}()
	var one int
	err = conn.QueryRow(ctx, "SELECT 1 FROM pg_sleep(5)").Scan(&one)
	if err == nil {
		t.Fatal("the query survived its connection")
	}
	t.Logf("broken: %v (%T)", err, err)
	if got := postgres.Translate(err); chatrabridge.ErrorCode(got) != chatrabridge.EUNAVAILABLE {
		t.Errorf("translate(%v) = %v (code %q), want EUNAVAILABLE", err, got, chatrabridge.ErrorCode(got))
	}
}
