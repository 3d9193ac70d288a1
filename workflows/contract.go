package workflows

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge"
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

// ConversationInput starts a conversation. IntegrationID and ChatID are required.
// Carried is set only by continue-as-new: the whole state of the run before (state.go). ContinueAsNewAfterEvents, when positive, makes
// the workflow continue as new once its history holds that many events, besides when
// Temporal suggests it (tests and admins; it is carried to the next run).
type ConversationInput struct {
	IntegrationID            string   `json:"integrationId"`
	ChatID                   string   `json:"chatId"`
	ClientID                 string   `json:"clientId,omitempty"`
	ContinueAsNewAfterEvents int      `json:"continueAsNewAfterEvents,omitempty"`
	Carried                  *Carried `json:"carried,omitempty"`
}

// Message is one chat message. ID is its idempotency key (an empty one is derived from
// the type, time and text); Time zero means "when the workflow received it".
type Message struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"` // MessageTypeClient or MessageTypeAgent
	Text         string    `json:"text"`
	Time         time.Time `json:"time,omitzero"`
	AgentID      string    `json:"agentId,omitempty"`
	AgentName    string    `json:"agentName,omitempty"`
	ReceivedFrom string    `json:"receivedFrom,omitempty"`
}

// Message types, as Chatra names them.
const (
	MessageTypeClient = "client" // the visitor
	MessageTypeAgent  = "agent"  // an agent in the Chatra app (or the bridge itself)
)

// ReceivedFromTag is the receivedFrom tag the bridge puts on every message it sends to
// Chatra. A webhook message carrying it is the bridge's own reply coming back: the API
// sends no message signal for it (else: task comment, chat message, webhook, task comment,
// ...). Transcripts keep such messages, with the tag, in ChatClosedSignal.Transcript;
// the workflow skips them there (and any message signal carrying the tag).
const ReceivedFromTag = "chatrabridge"

// SentByBridge reports whether a message's receivedFrom is ReceivedFromTag: the bridge's
// own message coming back.
func SentByBridge(receivedFrom string) bool {
	return strings.EqualFold(strings.TrimSpace(receivedFrom), ReceivedFromTag)
}

// DeliveryKey is the key of the signal named signal that a webhook delivery with the
// event key maps to: a repeated delivery yields the same keys, while two signals of one
// delivery never share one (the workflow ignores a repeated key whatever the signal).
func DeliveryKey(eventKey, signal string) string {
	return eventKey + "/" + signal
}

// ReplyKey is the key of the reply signal for the Planfix comment: the scenario's
// webhook and a hand-made reply naming the comment share it, so the comment is sent once.
func ReplyKey(commentID int64) string {
	return replyKeyStart + strconv.FormatInt(commentID, 10)
}

// MessageSignal carries new chat messages (a Chatra chatFragment). Each message's ID is
// its idempotency key: a message already seen is ignored. Key identifies the delivery: a
// repeated key is ignored as a whole. Visitor, when set, is the client card as it now
// stands, as if a visitor-info signal had come first.
type MessageSignal struct {
	Key      string       `json:"key"`
	ClientID string       `json:"clientId,omitempty"`
	Messages []Message    `json:"messages"`
	Visitor  *VisitorInfo `json:"visitor,omitempty"`
}

// VisitorInfo is the client card as it now stands (chatrabridge.Visitor, shared with the
// activities). Empty fields are unknown (they do not erase what the conversation knows).
type VisitorInfo = chatrabridge.Visitor

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
// and AuthorName (and optionally AuthorEmail) by hand. A reply with a CommentID is
// de-duplicated by that id whatever its Key; a hand-made one by its Key (an empty Key is
// never a repeat). TaskID names the task it was written in, for the note when it cannot
// be sent (default: the conversation's task).
type ReplySignal struct {
	Key         string `json:"key"`
	CommentID   int64  `json:"commentId,omitempty"`
	TaskID      int64  `json:"taskId,omitempty"`
	Text        string `json:"text,omitempty"`
	AuthorName  string `json:"authorName,omitempty"`
	AuthorEmail string `json:"authorEmail,omitempty"`
}

// Conversation statuses (the ConversationStatus search attribute and State.Status):
// chatrabridge.ConversationStatus.
const (
	StatusOpen      = chatrabridge.StatusOpen
	StatusClosed    = chatrabridge.StatusClosed // chat ended, task completed, late replies still delivered
	StatusEnded     = chatrabridge.StatusEnded
	StatusCancelled = chatrabridge.StatusCancelled
)

// Reasons a conversation closed (State.CloseReason).
const (
	CloseReasonChatClosed = "chat closed"
	CloseReasonIdle       = "idle"
)

// State is what the "state" query returns.
type State struct {
	IntegrationID    string                          `json:"integrationId"`
	ChatID           string                          `json:"chatId"`
	ClientID         string                          `json:"clientId,omitempty"`
	Status           chatrabridge.ConversationStatus `json:"status"`
	Episode          int                             `json:"episode"`
	CustomerName     string                          `json:"customerName,omitempty"`
	CustomerEmail    string                          `json:"customerEmail,omitempty"`
	ContactID        int64                           `json:"contactId,omitempty"`
	TaskID           int64                           `json:"taskId,omitempty"`
	TaskURL          string                          `json:"taskUrl,omitempty"`
	MessagesReceived int                             `json:"messagesReceived"`          // distinct messages seen, own included
	MessagesSkipped  int                             `json:"messagesSkipped,omitempty"` // the bridge's own, come back
	MessagesAdded    int                             `json:"messagesAdded"`             // written into the task
	MessagesFailed   int                             `json:"messagesFailed,omitempty"`  // Planfix refused them for good
	TranscriptAdded  int                             `json:"transcriptAdded,omitempty"` // found only in a transcript
	CommentsAdded    int                             `json:"commentsAdded"`
	RepliesSent      int                             `json:"repliesSent"`
	RepliesFailed    int                             `json:"repliesFailed"`
	RepliesSkipped   int                             `json:"repliesSkipped,omitempty"`
	PendingMessages  int                             `json:"pendingMessages"`
	PendingReplies   int                             `json:"pendingReplies"`
	LastActivity     time.Time                       `json:"lastActivity,omitzero"`
	ClosedAt         time.Time                       `json:"closedAt,omitzero"`
	CloseReason      string                          `json:"closeReason,omitempty"`
	LastError        string                          `json:"lastError,omitempty"`
	// The customer's wait for an answer (waiting.go), filled in by the query: since
	// when the first unanswered message waits (zero: nobody waits), how many visitor
	// messages wait, the reminders sent in this wait and when the next is due.
	WaitingSince       time.Time `json:"waitingSince,omitzero"`
	UnansweredMessages int       `json:"unansweredMessages,omitempty"`
	RemindersSent      int       `json:"remindersSent,omitempty"`
	NextReminderAt     time.Time `json:"nextReminderAt,omitzero"`
}

// MaxSeenKeys bounds the de-duplication keys a conversation keeps (and carries across
// continue-as-new): message ids, delivery keys, reply keys and the ids of the comments
// the bridge wrote. A repeat of something older than the last MaxSeenKeys keys is not
// recognised.
const MaxSeenKeys = 5000

// Search attributes, for the Web UI and `temporal workflow list --query`.
var (
	SAIntegration = temporal.NewSearchAttributeKeyKeyword("ChatraIntegration")
	SAChatID      = temporal.NewSearchAttributeKeyKeyword("ChatraChatId")
	SAClientID    = temporal.NewSearchAttributeKeyKeyword("ChatraClientId")
	SAEmail       = temporal.NewSearchAttributeKeyKeyword("CustomerEmail")
	SAName        = temporal.NewSearchAttributeKeyKeyword("CustomerName")
	SATaskID      = temporal.NewSearchAttributeKeyInt64("PlanfixTaskId")
	SAStatus      = temporal.NewSearchAttributeKeyKeyword("ConversationStatus")
	// SAWaitingSince is when the customer's first unanswered message was written; it is
	// unset while nobody waits (waiting.go). A Datetime.
	SAWaitingSince = temporal.NewSearchAttributeKeyTime("CustomerWaitingSince")
)

// SearchAttributes lists the custom search attributes with their types, for registering
// them on a namespace (the dev server does it; see README for a cluster).
func SearchAttributes() map[string]enumspb.IndexedValueType {
	m := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKey{SAIntegration, SAChatID, SAClientID, SAEmail, SAName, SAStatus} {
		m[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	m[SATaskID.GetName()] = enumspb.INDEXED_VALUE_TYPE_INT
	m[SAWaitingSince.GetName()] = enumspb.INDEXED_VALUE_TYPE_DATETIME
	return m
}

// WaitingQuery is the visibility query of the running conversations of an integration
// whose customer waits for an answer, and, when before is not zero, has waited since
// before it (for more than N minutes: before = now - N minutes). The Web UI and
// `temporal workflow list --query` take it as it is.
func WaitingQuery(integrationID string, before time.Time) string {
	q := fmt.Sprintf("%s=%q AND ExecutionStatus=%q AND %s IS NOT NULL",
		SAIntegration.GetName(), integrationID, "Running", SAWaitingSince.GetName())
	if !before.IsZero() {
		q += fmt.Sprintf(" AND %s < %q", SAWaitingSince.GetName(), before.UTC().Format(time.RFC3339))
	}
	return q
}
