// Package workflows holds ConversationWorkflow and its contract: the task queue default,
// the signal and query names, the input and payload types, the workflow-ID function and
// the search attributes. The API, the worker, tests and admins (through the temporal CLI)
// need nothing else to start, signal or query a conversation.
//
// Every payload is a plain JSON object; field names below are the JSON keys. An admin can
// send any of them by hand, e.g.
//
//	temporal workflow signal --workflow-id chatra/shop/CHAT1 --name reply \
//	  --input '{"key":"manual-1","text":"We shipped it today.","authorName":"Anna"}'
package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// DefaultTaskQueue is the task queue when TASK_QUEUE is unset.
const DefaultTaskQueue = "chatrabridge"

// ConversationWorkflowName is the workflow type, as the temporal CLI names it.
const ConversationWorkflowName = "ConversationWorkflow"

// Signal and query names.
const (
	SignalMessage     = "message"      // MessageSignal
	SignalVisitorInfo = "visitor-info" // VisitorInfoSignal
	SignalChatClosed  = "chat-closed"  // ChatClosedSignal
	SignalReply       = "reply"        // ReplySignal
	QueryState        = "state"        // returns State
)

// ConversationWorkflowID is the workflow ID of a Chatra chat: chatra/<integrationId>/<chatId>.
func ConversationWorkflowID(integrationID, chatID string) string {
	return "chatra/" + integrationID + "/" + chatID
}

// ConversationInput starts a conversation. Carried is set only by continue-as-new.
type ConversationInput struct {
	IntegrationID string   `json:"integrationId"`
	ChatID        string   `json:"chatId"`
	ClientID      string   `json:"clientId,omitempty"`
	Carried       *Carried `json:"carried,omitempty"`
}

// Message is one chat message.
type Message struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"` // MessageTypeClient or MessageTypeAgent
	Text         string    `json:"text"`
	Time         time.Time `json:"time"`
	AgentID      string    `json:"agentId,omitempty"`
	AgentName    string    `json:"agentName,omitempty"`
	ReceivedFrom string    `json:"receivedFrom,omitempty"`
}

// Message types, as Chatra names them.
const (
	MessageTypeClient = "client" // the visitor
	MessageTypeAgent  = "agent"  // an agent in the Chatra app (or the bridge itself)
)

// MessageSignal carries new chat messages (a Chatra chatFragment). Each message's ID is
// its idempotency key: a message already seen is ignored.
type MessageSignal struct {
	Key      string    `json:"key"`
	ClientID string    `json:"clientId,omitempty"`
	Messages []Message `json:"messages"`
}

// VisitorInfo is the client card as it now stands. Empty fields are unknown.
type VisitorInfo struct {
	Name    string            `json:"name,omitempty"`
	Email   string            `json:"email,omitempty"`
	Phone   string            `json:"phone,omitempty"`
	City    string            `json:"city,omitempty"`
	Country string            `json:"country,omitempty"`
	Pages   []string          `json:"pages,omitempty"`
	Source  string            `json:"source,omitempty"`
	Device  string            `json:"device,omitempty"`
	OS      string            `json:"os,omitempty"`
	Browser string            `json:"browser,omitempty"`
	IP      string            `json:"ip,omitempty"`
	Extra   map[string]string `json:"extra,omitempty"`
}

// VisitorInfoSignal carries the client card. Started is true for a Chatra chatStarted:
// the start of a conversation episode (a new one when the previous chat was closed).
type VisitorInfoSignal struct {
	Key      string      `json:"key"`
	ClientID string      `json:"clientId,omitempty"`
	Started  bool        `json:"started,omitempty"`
	Visitor  VisitorInfo `json:"visitor"`
}

// ChatClosedSignal says the chat ended (a Chatra chatTranscript) and carries the whole
// transcript, so messages whose fragments were lost are still added.
type ChatClosedSignal struct {
	Key        string      `json:"key"`
	ClientID   string      `json:"clientId,omitempty"`
	Transcript []Message   `json:"transcript,omitempty"`
	Visitor    VisitorInfo `json:"visitor,omitzero"`
}

// ReplySignal says an employee wrote a comment in the task. From the Planfix scenario it
// carries CommentID (and the key "planfix-comment:<id>"); an admin may instead send Text
// and AuthorName (and optionally AuthorEmail) by hand.
type ReplySignal struct {
	Key         string `json:"key"`
	CommentID   int64  `json:"commentId,omitempty"`
	TaskID      int64  `json:"taskId,omitempty"`
	Text        string `json:"text,omitempty"`
	AuthorName  string `json:"authorName,omitempty"`
	AuthorEmail string `json:"authorEmail,omitempty"`
}

// Conversation statuses (the ConversationStatus search attribute and State.Status).
const (
	StatusOpen      = "open"
	StatusClosed    = "closed" // chat ended, task completed, late replies still delivered
	StatusEnded     = "ended"
	StatusCancelled = "cancelled"
)

// State is what the "state" query returns.
type State struct {
	IntegrationID    string    `json:"integrationId"`
	ChatID           string    `json:"chatId"`
	ClientID         string    `json:"clientId,omitempty"`
	Status           string    `json:"status"`
	Episode          int       `json:"episode"`
	CustomerName     string    `json:"customerName,omitempty"`
	CustomerEmail    string    `json:"customerEmail,omitempty"`
	ContactID        int64     `json:"contactId,omitempty"`
	TaskID           int64     `json:"taskId,omitempty"`
	TaskURL          string    `json:"taskUrl,omitempty"`
	MessagesReceived int       `json:"messagesReceived"`
	CommentsAdded    int       `json:"commentsAdded"`
	RepliesSent      int       `json:"repliesSent"`
	RepliesFailed    int       `json:"repliesFailed"`
	PendingMessages  int       `json:"pendingMessages"`
	PendingReplies   int       `json:"pendingReplies"`
	LastActivity     time.Time `json:"lastActivity,omitzero"`
	LastError        string    `json:"lastError,omitempty"`
}

// Carried is what continue-as-new passes to the next run: the de-duplication state and
// what the conversation already knows.
type Carried struct {
	State    State         `json:"state"`
	Visitor  VisitorInfo   `json:"visitor"`
	SeenKeys []string      `json:"seenKeys,omitempty"`
	Pending  []Message     `json:"pending,omitempty"`
	Replies  []ReplySignal `json:"replies,omitempty"`
}

// Search attributes, for the Web UI and `temporal workflow list --query`.
var (
	SAIntegration = temporal.NewSearchAttributeKeyKeyword("ChatraIntegration")
	SAChatID      = temporal.NewSearchAttributeKeyKeyword("ChatraChatId")
	SAClientID    = temporal.NewSearchAttributeKeyKeyword("ChatraClientId")
	SAEmail       = temporal.NewSearchAttributeKeyKeyword("CustomerEmail")
	SAName        = temporal.NewSearchAttributeKeyKeyword("CustomerName")
	SATaskID      = temporal.NewSearchAttributeKeyInt64("PlanfixTaskId")
	SAStatus      = temporal.NewSearchAttributeKeyKeyword("ConversationStatus")
)

// SearchAttributes lists the custom search attributes with their types, for registering
// them on a namespace (the dev server does it; see README for a cluster).
func SearchAttributes() map[string]enumspb.IndexedValueType {
	m := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKey{SAIntegration, SAChatID, SAClientID, SAEmail, SAName, SAStatus} {
		m[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	m[SATaskID.GetName()] = enumspb.INDEXED_VALUE_TYPE_INT
	return m
}
