package chatrabridge

// ConversationStatus is where a conversation stands. It is one value for the whole bridge:
// the workflow's State.Status, its ConversationStatus search attribute, the store's
// conversations.status and the admin API's status filter.
type ConversationStatus string

// The conversation statuses.
const (
	StatusOpen      ConversationStatus = "open"      // the chat is going on
	StatusClosed    ConversationStatus = "closed"    // the chat ended, the task is completed, late replies still flow
	StatusEnded     ConversationStatus = "ended"     // the workflow finished
	StatusCancelled ConversationStatus = "cancelled" // an admin stopped the sync
)

// ConversationStatuses are the statuses, in a conversation's order.
var ConversationStatuses = []ConversationStatus{StatusOpen, StatusClosed, StatusEnded, StatusCancelled}
