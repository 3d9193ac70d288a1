package activities

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// Visitor is what the conversation knows of the Chatra visitor (the same type as
// workflows.VisitorInfo). Empty fields are unknown.
type Visitor = chatrabridge.Visitor

// ChatMessage is one chat message to write into the task.
type ChatMessage struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"` // "client" (the visitor) or anything else (an agent in the Chatra app)
	Text      string    `json:"text"`
	Time      time.Time `json:"time"`
	AgentName string    `json:"agentName,omitempty"`
}

// IsVisitor reports whether the visitor wrote m.
func (m ChatMessage) IsVisitor() bool { return m.Type == "client" }

// ChatStart is the start of the chat (of its episode) whose Planfix requests an activity
// sends: within a request class the rate limiter serves the older chat first
// (planfix.WithPriority), so that the first chat of a burst is set up before the tenth
// begins. Zero (an input recorded before it existed, a call from elsewhere) is not
// known: served after the known ones of its class.
type ChatStart struct {
	ChatStartedAt time.Time `json:"chatStartedAt,omitzero"`
}

// priority returns ctx carrying the request class c and the chat's start, for the rate
// limiter.
func (s ChatStart) priority(ctx context.Context, c planfix.Class) context.Context {
	return planfix.WithPriority(ctx, c, s.ChatStartedAt)
}

// LoadSettingsInput names the integration.
type LoadSettingsInput struct {
	IntegrationID string `json:"integrationId"`
}

// Settings are the integration's settings a workflow needs to decide; never a secret.
type Settings struct {
	Name                      string        `json:"name"`
	AccountURL                string        `json:"accountUrl"` // Planfix, for task links: AccountURL + "/task/" + id
	NewTaskOnlyIfNoActiveTask bool          `json:"newTaskOnlyIfNoActiveTask"`
	SendAsEmployee            bool          `json:"sendAsEmployee"`
	LateReplyWindow           time.Duration `json:"lateReplyWindow"`
	IdleTimeout               time.Duration `json:"idleTimeout"`
	TrustEmailClaims          bool          `json:"trustEmailClaims,omitempty"`
	// FirstResponse is the first-response target and its reminders; the zero value
	// (also what settings recorded before it existed decode into) reminds nobody.
	FirstResponse chatrabridge.FirstResponse `json:"firstResponse,omitzero"`
	// CustomerSearch is what the CustomerEmail and CustomerName search attributes hold
	// (CUSTOMER_SEARCH of the worker): "" or "clear", the workflow keeps them up to date;
	// "hash" or "off", only the start sets them (hashed, or not at all) and the workflow
	// never upserts them. Settings recorded before it existed decode into "".
	CustomerSearch string `json:"customerSearch,omitempty"`
}

// EnsureContactInput asks for the Planfix contact of a visitor. ContactID is the contact
// the conversation has now (0 at its first event).
type EnsureContactInput struct {
	IntegrationID string  `json:"integrationId"`
	ChatID        string  `json:"chatId"`
	ClientID      string  `json:"clientId"`
	ContactID     int64   `json:"contactId,omitempty"`
	Visitor       Visitor `json:"visitor"`
	ChatStart
}

// How a contact was found (EnsureContactResult.How).
const (
	ContactByEmail  = "email"   // an existing contact with the visitor's email
	ContactByClient = "client"  // the contact this Chatra visitor was mapped to before
	ContactCreated  = "created" // a new contact from the contact template
	ContactKept     = "kept"    // the conversation's contact, unchanged
)

// EnsureContactResult is the visitor's contact. Switched is true when the conversation
// had another contact and the visitor's email belongs to this one (two devices). Claimed
// is true when the contact was found only by the email the visitor typed (not created
// for this visitor nor mapped to it) and the integration does not trust email claims:
// the visitor may not be that customer.
type EnsureContactResult struct {
	ContactID int64  `json:"contactId"`
	How       string `json:"how"`
	Switched  bool   `json:"switched,omitempty"`
	Claimed   bool   `json:"claimed,omitempty"`
}

// UpdateContactInput writes what a visitor told about themselves onto their contact.
// Empty fields are left as they are.
type UpdateContactInput struct {
	IntegrationID string `json:"integrationId"`
	ContactID     int64  `json:"contactId"`
	Name          string `json:"name,omitempty"`
	Email         string `json:"email,omitempty"`
	Phone         string `json:"phone,omitempty"`
	ChatStart
}

// FindActiveTaskInput asks for the contact's active chat task other than ExcludeTaskID.
type FindActiveTaskInput struct {
	IntegrationID string `json:"integrationId"`
	ContactID     int64  `json:"contactId"`
	ExcludeTaskID int64  `json:"excludeTaskId,omitempty"`
	ChatStart
}

// FindActiveTaskResult is the active task, when Found.
type FindActiveTaskResult struct {
	TaskID int64 `json:"taskId,omitempty"`
	Found  bool  `json:"found"`
}

// CreateTaskInput creates the task of one episode of a chat (Episode counts from 1).
// EpisodeKey identifies the episode among every run of the chat's workflow (the
// workflow's first run id and the episode: a new run after the conversation ended counts
// its episodes from 1 again); it names the task's sourceObjectId. Empty means Episode.
type CreateTaskInput struct {
	IntegrationID string  `json:"integrationId"`
	ChatID        string  `json:"chatId"`
	ClientID      string  `json:"clientId"`
	Episode       int     `json:"episode"`
	EpisodeKey    string  `json:"episodeKey,omitempty"`
	ContactID     int64   `json:"contactId"`
	Visitor       Visitor `json:"visitor"`
	ChatStart
}

// CreateTaskResult is the task. Existing is true when a retried attempt found the task an
// earlier attempt created.
type CreateTaskResult struct {
	TaskID   int64 `json:"taskId"`
	Existing bool  `json:"existing,omitempty"`
}

// AddContactActionInput adds the "reached out through chat" action to the contact's
// profile, once per chat episode (EpisodeKey as in CreateTaskInput).
type AddContactActionInput struct {
	IntegrationID string  `json:"integrationId"`
	ChatID        string  `json:"chatId"`
	Episode       int     `json:"episode"`
	EpisodeKey    string  `json:"episodeKey,omitempty"`
	ContactID     int64   `json:"contactId"`
	TaskID        int64   `json:"taskId,omitempty"`
	Visitor       Visitor `json:"visitor"`
	ChatStart
}

// AddContactActionResult is the action (comment) added; Existing when it was added
// before.
type AddContactActionResult struct {
	CommentID int64 `json:"commentId"`
	Existing  bool  `json:"existing,omitempty"`
}

// WriteVisitorNotesInput puts the task link into the Chatra visitor's notes.
type WriteVisitorNotesInput struct {
	IntegrationID string `json:"integrationId"`
	ClientID      string `json:"clientId"`
	TaskID        int64  `json:"taskId"`
	TaskURL       string `json:"taskUrl"`
}

// SaveConversationInput is the store's row of a conversation. Empty fields and zero ids
// leave the stored values as they are.
type SaveConversationInput struct {
	IntegrationID string                          `json:"integrationId"`
	ChatID        string                          `json:"chatId"`
	WorkflowID    string                          `json:"workflowId"`
	ClientID      string                          `json:"clientId,omitempty"`
	TaskID        int64                           `json:"taskId,omitempty"`
	ContactID     int64                           `json:"contactId,omitempty"`
	CustomerName  string                          `json:"customerName,omitempty"`
	CustomerEmail string                          `json:"customerEmail,omitempty"`
	Status        chatrabridge.ConversationStatus `json:"status"`
	// JoinedTask says the conversation joined a task another chat created (the
	// contact's active task, the contact found by the email the visitor gave), and the
	// integration does not trust email claims: the store lets it receive the task's
	// replies only when a chat of the same Chatra visitor in that task does.
	JoinedTask bool `json:"joinedTask,omitempty"`
}

// SaveConversationResult lists the Planfix replies that were held for the task because
// they came before any conversation had it (the webhook answered 200 and kept them):
// their comment ids, oldest first. The save took them from the store, so the workflow
// must send them; nobody else will. Histories recorded before this result existed hold
// no result, which decodes into the zero value.
type SaveConversationResult struct {
	HeldReplies []int64 `json:"heldReplies,omitempty"`
	// RepliesElsewhere says the replies written in the task do not come to this
	// conversation (JoinedTask, and no chat of the same visitor receives them): they
	// stay with the chat that created the task.
	RepliesElsewhere bool `json:"repliesElsewhere,omitempty"`
}

// AddCommentsInput writes chat messages into the task, in order: each run of consecutive
// visitor messages becomes one comment authored by the contact, each run of agent
// messages one comment marked as written in Chatra (a run holds at most
// MaxMessagesPerComment messages). Class is the request class its Planfix requests are
// spent in: empty, the messages' (planfix.ClassMessages); planfix.ClassSetup for a
// task's first messages, which its employees need to answer.
type AddCommentsInput struct {
	IntegrationID string        `json:"integrationId"`
	ChatID        string        `json:"chatId"`
	TaskID        int64         `json:"taskId"`
	ContactID     int64         `json:"contactId"`
	Messages      []ChatMessage `json:"messages"`
	Class         planfix.Class `json:"class,omitempty"`
	ChatStart
}

// AddCommentsResult lists the comments added (or found, on a retry), in order.
type AddCommentsResult struct {
	CommentIDs []int64 `json:"commentIds"`
}

// AddNoteInput adds a comment from the bridge itself to a task (a reply that was not
// sent, the sync stopped, the chat moved to another task, a customer waiting for an
// answer). Key identifies the note: the same key never adds a second one.
// NotifyAssignees addresses the comment to the task's assignees, so that Planfix
// notifies them. Class is the request class its Planfix requests are spent in (empty:
// the default class; planfix.ClassLow for reminders).
type AddNoteInput struct {
	IntegrationID   string        `json:"integrationId"`
	TaskID          int64         `json:"taskId"`
	Key             string        `json:"key"`
	Text            string        `json:"text"`
	NotifyAssignees bool          `json:"notifyAssignees,omitempty"`
	Class           planfix.Class `json:"class,omitempty"`
	ChatStart
}

// AddNoteResult is the note's comment.
type AddNoteResult struct {
	CommentID int64 `json:"commentId"`
}

// CompleteTaskInput completes a task with the integration's completed status.
type CompleteTaskInput struct {
	IntegrationID string `json:"integrationId"`
	TaskID        int64  `json:"taskId"`
	ChatStart
}

// CompleteTaskResult says what was done: StatusID set, or AlreadyInactive when an
// employee had already moved the task to an inactive status (left as it is).
type CompleteTaskResult struct {
	StatusID        int64 `json:"statusId,omitempty"`
	AlreadyInactive bool  `json:"alreadyInactive,omitempty"`
}

// SendReplyInput sends an employee's reply into the chat: the Planfix comment CommentID,
// or (by hand) Text written by AuthorName. Key identifies the reply; ReceivedFrom is the
// tag the bridge's own messages carry.
type SendReplyInput struct {
	IntegrationID string `json:"integrationId"`
	ChatID        string `json:"chatId"`
	ClientID      string `json:"clientId"`
	TaskID        int64  `json:"taskId,omitempty"`
	Key           string `json:"key"`
	CommentID     int64  `json:"commentId,omitempty"`
	Text          string `json:"text,omitempty"`
	AuthorName    string `json:"authorName,omitempty"`
	AuthorEmail   string `json:"authorEmail,omitempty"`
	ReceivedFrom  string `json:"receivedFrom"`
	ChatStart
}

// Outcomes of a reply (SendReplyResult.Outcome).
const (
	ReplySent    = "sent"    // delivered into the chat
	ReplyRefused = "refused" // not sent, for Reason; the task should say so
	ReplySkipped = "skipped" // not a reply at all (a customer's comment, a deleted one): nothing to say
)

// SendReplyResult says what happened to a reply.
type SendReplyResult struct {
	Outcome    string   `json:"outcome"`
	Reason     string   `json:"reason,omitempty"`
	Author     string   `json:"author,omitempty"`
	SentAs     string   `json:"sentAs,omitempty"` // "employee" or "integration"
	MessageIDs []string `json:"messageIds,omitempty"`
	// EchoKeys identify each sent message by its content and its Chatra agent
	// (EchoKeysOf), so that it is recognised when Chatra delivers it back in a webhook
	// without the receivedFrom tag and under an id the answer did not give.
	EchoKeys []string `json:"echoKeys,omitempty"`
}

// EchoKeysOf are the EchoKeys of a message the bridge sent with text as Chatra agent
// agentID ("" when not known): EchoKey(agentID, text), and, when the agent is known,
// EchoAnyAgent plus EchoKey("", text), which an echo that does not name its agent
// matches.
func EchoKeysOf(agentID, text string) []string {
	k := EchoKey(agentID, text)
	if strings.TrimSpace(agentID) == "" {
		return []string{k}
	}
	return []string{k, EchoAnyAgent + EchoKey("", text)}
}

// EchoAnyAgent begins an EchoKey that an echo naming no agent matches (EchoKeysOf).
const EchoAnyAgent = "any:"

// EchoKey identifies a chat message by its text (whitespace collapsed) and, when known,
// the Chatra agent id it was written as: a short hash, so that neither a reply's text nor
// the agent appears in it. EchoKey("", text) is the key of a message whose agent is not
// known.
func EchoKey(agentID, text string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s", strings.TrimSpace(agentID), strings.Join(strings.Fields(text), " "))
	return fmt.Sprintf("%016x", h.Sum64())
}

// episodeKey is key, or the episode number when key is empty.
func episodeKey(key string, episode int) string {
	if key != "" {
		return key
	}
	return strconv.Itoa(episode)
}
