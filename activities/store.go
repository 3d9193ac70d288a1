package activities

import (
	"context"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// SaveConversation records what the store must know of a conversation (task, contact,
// status) so that Planfix replies find their chat and the admin API can list it.
// It is idempotent.
func (a *Activities) SaveConversation(ctx context.Context, c postgres.Conversation) error {
	return a.DB.SaveConversation(ctx, c)
}
