package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// LoadSettings returns the integration's settings a workflow decides with, defaults
// filled in. It reads no credential into the result. ErrIntegrationNotFound when the
// integration was deleted.
func (a *Activities) LoadSettings(ctx context.Context, in LoadSettingsInput) (Settings, error) {
	i, err := a.integration(ctx, in.IntegrationID)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{
		Name:                      i.Name,
		AccountURL:                i.Planfix.AccountURL,
		NewTaskOnlyIfNoActiveTask: i.Options.NewTaskOnlyIfNoActiveTask,
		SendAsEmployee:            i.Options.SendAsEmployee,
		LateReplyWindow:           time.Duration(i.Options.LateReplyWindow),
		IdleTimeout:               time.Duration(i.Options.IdleTimeout),
	}
	if s.LateReplyWindow <= 0 {
		s.LateReplyWindow = chatrabridge.DefaultLateReplyWindow
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = chatrabridge.DefaultIdleTimeout
	}
	return s, nil
}

// SaveConversation records what the store must know of a conversation (task, contact,
// status) so that Planfix replies find their chat and the admin API can list it.
// It is idempotent.
func (a *Activities) SaveConversation(ctx context.Context, in SaveConversationInput) error {
	if in.IntegrationID == "" || in.ChatID == "" || in.WorkflowID == "" {
		return invalidInput("save conversation: integrationId, chatId and workflowId are required")
	}
	switch in.Status {
	case postgres.StatusOpen, postgres.StatusClosed, postgres.StatusEnded, postgres.StatusCancelled:
	default:
		return invalidInput("save conversation: status %q is not open, closed, ended or cancelled", in.Status)
	}
	c := postgres.Conversation{
		IntegrationID: in.IntegrationID, ChatID: in.ChatID, WorkflowID: in.WorkflowID, ClientID: in.ClientID,
		CustomerName: in.CustomerName, CustomerEmail: in.CustomerEmail, Status: in.Status,
	}
	if in.TaskID > 0 {
		c.PlanfixTaskID = &in.TaskID
	}
	if in.ContactID > 0 {
		c.PlanfixContactID = &in.ContactID
	}
	if err := a.DB.SaveConversation(ctx, c); err != nil {
		return fail(fmt.Errorf("save conversation %s: %w", in.ChatID, err))
	}
	return nil
}
