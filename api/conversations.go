package api

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/conversation"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// Conversation is a conversation as the admin API lists it: what the store keeps of it.
type Conversation struct {
	IntegrationID    string                          `json:"integrationId"`
	ChatID           string                          `json:"chatId"`
	WorkflowID       string                          `json:"workflowId"`
	ClientID         string                          `json:"clientId"`
	PlanfixTaskID    *int64                          `json:"planfixTaskId,omitempty"`
	PlanfixContactID *int64                          `json:"planfixContactId,omitempty"`
	CustomerName     string                          `json:"customerName"`
	CustomerEmail    string                          `json:"customerEmail"`
	Status           chatrabridge.ConversationStatus `json:"status"`
	StartedAt        time.Time                       `json:"startedAt"`
	UpdatedAt        time.Time                       `json:"updatedAt"`
	ClosedAt         *time.Time                      `json:"closedAt,omitempty"`
	// ReceivesReplies says whether a reply written in the task goes to this chat.
	ReceivesReplies bool `json:"receivesReplies"`
}

func conversationOf(c postgres.Conversation) Conversation {
	return Conversation{
		IntegrationID: c.IntegrationID, ChatID: c.ChatID, WorkflowID: c.WorkflowID, ClientID: c.ClientID,
		PlanfixTaskID: c.PlanfixTaskID, PlanfixContactID: c.PlanfixContactID,
		CustomerName: c.CustomerName, CustomerEmail: c.CustomerEmail, Status: c.Status,
		StartedAt: c.StartedAt, UpdatedAt: c.UpdatedAt, ClosedAt: c.ClosedAt, ReceivesReplies: c.ReceivesReplies,
	}
}

// ConversationList is the answer of GET /api/v1/conversations.
type ConversationList struct {
	Conversations []Conversation `json:"conversations"`
}

// ConversationDetail is the answer of GET /api/v1/conversations/{id}: the stored row,
// and the workflow's answer to the "state" query, or, when it gave none, StateError
// saying why.
type ConversationDetail struct {
	Conversation
	State      *workflows.State `json:"state,omitempty"`
	StateError string           `json:"stateError,omitempty"`
}

// StateQueryTimeout bounds the "state" query of a conversation detail.
const StateQueryTimeout = conversation.StateQueryTimeout

// listConversations: GET /api/v1/conversations?integrationId=&status=&limit=&offset=.
func (a *admin) listConversations(c echo.Context) error {
	q := c.QueryParams()
	for name := range q {
		if !slices.Contains([]string{"integrationId", "status", "limit", "offset"}, name) {
			return chatrabridge.Invalid(name, "unknown query parameter %q: use integrationId, status, limit, offset", name)
		}
	}
	f := postgres.ConversationFilter{IntegrationID: q.Get("integrationId"), Status: chatrabridge.ConversationStatus(q.Get("status"))}
	if f.IntegrationID != "" && !plausibleID(f.IntegrationID) {
		return chatrabridge.Invalid("integrationId", "integrationId is longer than 256 bytes, or holds control characters or invalid UTF-8")
	}
	if f.Status != "" && !slices.Contains(chatrabridge.ConversationStatuses, f.Status) {
		return chatrabridge.Invalid("status", "status must be one of %s", joinStatuses(chatrabridge.ConversationStatuses))
	}
	var err error
	if f.Limit, err = intParam(q, "limit", 1, 1000); err != nil {
		return err
	}
	if f.Offset, err = intParam(q, "offset", 0, 1<<31-1); err != nil {
		return err
	}
	list, err := a.db.ListConversations(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := ConversationList{Conversations: make([]Conversation, 0, len(list))}
	for _, conv := range list {
		out.Conversations = append(out.Conversations, conversationOf(conv))
	}
	return c.JSON(http.StatusOK, out)
}

func joinStatuses(ss []chatrabridge.ConversationStatus) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}

func intParam(q url.Values, name string, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, chatrabridge.Invalid(name, "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// getConversation: GET /api/v1/conversations/{id}, where id is the workflow id
// chatra/<integrationId>/<chatId> (URL-escaped or not) or <integrationId>/<chatId>.
func (a *admin) getConversation(c echo.Context) error {
	raw := c.Param("*")
	if c.Request().URL.RawPath != "" {
		// Echo routed on the escaped path, so the parameter is still escaped.
		var err error
		if raw, err = url.PathUnescape(raw); err != nil {
			return chatrabridge.Invalid("id", "the conversation id is not a valid URL path")
		}
	}
	integrationID, chatID, ok := strings.Cut(strings.TrimPrefix(raw, "chatra/"), "/")
	if !ok || integrationID == "" || chatID == "" {
		return chatrabridge.Invalid("id", "a conversation id is its workflow id, chatra/<integrationId>/<chatId>, or <integrationId>/<chatId>")
	}
	if !plausibleID(integrationID) || !plausibleID(chatID) {
		return chatrabridge.Invalid("id", "the conversation id is longer than 256 bytes a part, or holds control characters or invalid UTF-8")
	}
	ctx := c.Request().Context()
	conv, err := a.db.GetConversation(ctx, integrationID, chatID)
	if err != nil {
		if chatrabridge.ErrorCode(err) == chatrabridge.ENOTFOUND {
			return chatrabridge.Errorf(chatrabridge.ENOTFOUND, "no conversation of chat %q in integration %q", chatID, integrationID)
		}
		return err
	}
	detail := ConversationDetail{Conversation: conversationOf(*conv)}
	state, err := a.conversations.State(ctx, conv.WorkflowID)
	if err != nil {
		detail.StateError = err.Error()
		a.logger.Warn("conversation state query failed", "workflowId", conv.WorkflowID, "error", err)
	} else {
		detail.State = state
	}
	return c.JSON(http.StatusOK, detail)
}
