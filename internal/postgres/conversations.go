package postgres

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatrabridge/chatrabridge"
)

// Conversation statuses, as stored.
const (
	StatusOpen      = chatrabridge.StatusOpen
	StatusClosed    = chatrabridge.StatusClosed
	StatusEnded     = chatrabridge.StatusEnded
	StatusCancelled = chatrabridge.StatusCancelled
)

// Conversation is one chat as the store knows it: enough for a Planfix reply to find its
// chat and for the admin API to list conversations. The workflow holds the rest.
type Conversation struct {
	IntegrationID    string                          `db:"integration_id"`
	ChatID           string                          `db:"chat_id"`
	WorkflowID       string                          `db:"workflow_id"`
	ClientID         string                          `db:"client_id"`
	PlanfixTaskID    *int64                          `db:"planfix_task_id"`
	PlanfixContactID *int64                          `db:"planfix_contact_id"`
	CustomerName     string                          `db:"customer_name"`
	CustomerEmail    string                          `db:"customer_email"`
	Status           chatrabridge.ConversationStatus `db:"status"`
	StartedAt        time.Time                       `db:"started_at"`
	UpdatedAt        time.Time                       `db:"updated_at"`
	ClosedAt         *time.Time                      `db:"closed_at"`
	// ReceivesReplies says whether a reply written in the task goes to this chat: the
	// chat created the task, or joined it as a chat of the same Chatra visitor (or of
	// a claim the integration trusts). SaveConversation sets it from JoinedTask.
	ReceivesReplies bool `db:"receives_replies"`

	// JoinedTask says the conversation joined a task another chat created, and the
	// integration does not trust email claims: the save lets it receive the task's
	// replies only when its Chatra visitor (ClientID) is known to be the task's
	// customer: another conversation of that visitor in the task receives them, or the
	// visitor is mapped to the conversation's contact (a mapping that an email claim
	// never makes: see activities.EnsureContact). Not stored as such: see
	// ReceivesReplies.
	JoinedTask bool `db:"-"`

	// HeldRepliesKey names the save for the held replies it takes (SaveConversation): a
	// save again with the same key (the same activity, retried) gets the same replies
	// back. Empty: the save is a key of its own. Not stored.
	HeldRepliesKey string `db:"-"`
}

// SaveConversation inserts the conversation or updates the row of the same chat. Empty
// strings and nil ids leave the stored values as they are, so callers pass only what
// they know. It is idempotent. It sets whether the conversation receives the task's
// replies (Conversation.ReceivesReplies, from JoinedTask): ReceivesReplies tells the caller.
//
// A save with a task id and the status open or closed (a conversation that still sends
// replies) also takes the replies held for that task (HoldReply: written in the task
// before any conversation had it), in the same transaction, and returns their comment
// ids, oldest first: the caller is the only one who will ever see them, and must send
// them. A save again with the same HeldRepliesKey returns what the first took (its
// result may have been lost); other saves return none of them.
func (db *DB) SaveConversation(ctx context.Context, c Conversation) (heldReplies []int64, err error) {
	if c.Status == "" {
		c.Status = StatusOpen
	}
	args := []any{c.IntegrationID, c.ChatID, c.WorkflowID, c.ClientID, c.PlanfixTaskID, c.PlanfixContactID,
		c.CustomerName, c.CustomerEmail, c.Status, c.JoinedTask}
	var receives bool
	if c.PlanfixTaskID == nil || (c.Status != StatusOpen && c.Status != StatusClosed) {
		return nil, translate(db.Pool.QueryRow(ctx, saveConversation, args...).Scan(&receives))
	}
	key := c.HeldRepliesKey
	if key == "" {
		key = "save:" + rand.Text()
	}
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := lockTaskReplies(ctx, tx, c.IntegrationID, *c.PlanfixTaskID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, saveConversation, args...).Scan(&receives); err != nil {
			return err
		}
		if !receives {
			return nil // the held replies are for a chat that receives the task's replies
		}
		if _, err := tx.Exec(ctx, `
			UPDATE held_replies SET taken_by = $3, taken_at = now()
			WHERE integration_id = $1 AND task_id = $2 AND taken_by IS NULL`,
			c.IntegrationID, *c.PlanfixTaskID, key); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			SELECT comment_id FROM held_replies
			WHERE integration_id = $1 AND task_id = $2 AND taken_by = $3
			ORDER BY received_at, comment_id`, c.IntegrationID, *c.PlanfixTaskID, key)
		heldReplies, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, translate(err)
	}
	return heldReplies, nil
}

const saveConversation = `
	INSERT INTO conversations (integration_id, chat_id, workflow_id, client_id,
		planfix_task_id, planfix_contact_id, customer_name, customer_email, status, closed_at,
		receives_replies)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
		CASE WHEN $9 IN ('closed', 'ended', 'cancelled') THEN now() END,
		NOT $10::boolean OR ($4 <> '' AND (
			EXISTS (SELECT 1 FROM conversations o
			        WHERE o.integration_id = $1 AND o.chat_id <> $2 AND o.planfix_task_id = $5
			          AND o.receives_replies AND o.client_id = $4)
			OR EXISTS (SELECT 1 FROM contacts m
			           WHERE m.integration_id = $1 AND m.chatra_client_id = $4 AND m.planfix_contact_id = $6))))
	ON CONFLICT (integration_id, chat_id) DO UPDATE SET
		client_id          = COALESCE(NULLIF(EXCLUDED.client_id, ''), conversations.client_id),
		planfix_task_id    = COALESCE(EXCLUDED.planfix_task_id, conversations.planfix_task_id),
		planfix_contact_id = COALESCE(EXCLUDED.planfix_contact_id, conversations.planfix_contact_id),
		customer_name      = COALESCE(NULLIF(EXCLUDED.customer_name, ''), conversations.customer_name),
		customer_email     = COALESCE(NULLIF(EXCLUDED.customer_email, ''), conversations.customer_email),
		status             = EXCLUDED.status,
		closed_at          = CASE WHEN EXCLUDED.status = 'open' THEN NULL
		                          ELSE COALESCE(conversations.closed_at, now()) END,
		receives_replies   = EXCLUDED.receives_replies,
		updated_at         = now()
	RETURNING receives_replies`

// GetConversation returns the conversation of a chat, or ENOTFOUND.
func (db *DB) GetConversation(ctx context.Context, integrationID, chatID string) (*Conversation, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT * FROM conversations WHERE integration_id = $1 AND chat_id = $2`,
		integrationID, chatID)
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByName[Conversation])
	return c, translate(err)
}

// FindConversationByTask returns the conversation a Planfix task belongs to. When several
// chats share the task (a customer on two devices), it is the one active last among
// those that receive the task's replies (ReceivesReplies), so a reply goes to the chat
// the customer wrote from last, never to one that only claimed the customer's email.
// Only when no conversation of the task receives replies is the one returned one that
// does not (ReceivesReplies false: the caller must not send it the reply). ENOTFOUND
// when none.
func (db *DB) FindConversationByTask(ctx context.Context, integrationID string, taskID int64) (*Conversation, error) {
	rows, _ := db.Pool.Query(ctx, `
		SELECT * FROM conversations WHERE integration_id = $1 AND planfix_task_id = $2
		ORDER BY receives_replies DESC, updated_at DESC LIMIT 1`, integrationID, taskID)
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByName[Conversation])
	return c, translate(err)
}

// ReceivesReplies reports whether a Planfix reply in the chat's task goes to the chat
// (Conversation.ReceivesReplies); ENOTFOUND when the chat has no row.
func (db *DB) ReceivesReplies(ctx context.Context, integrationID, chatID string) (bool, error) {
	var ok bool
	err := db.Pool.QueryRow(ctx, `SELECT receives_replies FROM conversations WHERE integration_id = $1 AND chat_id = $2`,
		integrationID, chatID).Scan(&ok)
	return ok, translate(err)
}

// ConversationFilter selects conversations; empty fields match everything.
type ConversationFilter struct {
	IntegrationID string
	Status        chatrabridge.ConversationStatus
	Limit         int // default 100, at most 1000
	Offset        int
}

// ListConversations returns conversations, the most recently active first.
func (db *DB) ListConversations(ctx context.Context, f ConversationFilter) ([]Conversation, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, _ := db.Pool.Query(ctx, `
		SELECT * FROM conversations
		WHERE ($1 = '' OR integration_id = $1) AND ($2 = '' OR status = $2)
		ORDER BY updated_at DESC, chat_id LIMIT $3 OFFSET $4`,
		f.IntegrationID, f.Status, f.Limit, f.Offset)
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Conversation])
	return cs, translate(err)
}
