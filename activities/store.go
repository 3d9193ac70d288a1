package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

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
		TrustEmailClaims:          i.Options.TrustEmailClaims,
		FirstResponse:             i.Options.FirstResponse,
	}
	if a.CustomerSearch != "clear" {
		s.CustomerSearch = a.CustomerSearch
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
// status) so that Planfix replies find their chat and the admin API can list it. A
// conversation that joined its task on an email claim (JoinedTask) gets the task's
// replies only when a chat of the same Chatra visitor does: RepliesElsewhere otherwise. It
// returns the replies held for the task (written before any conversation had it) that
// this activity took in the store: the workflow sends them, nobody else will. It is
// idempotent: each attempt of the activity returns the same held replies, so a retry
// after an attempt whose result was lost gets them again.
func (a *Activities) SaveConversation(ctx context.Context, in SaveConversationInput) (SaveConversationResult, error) {
	if in.IntegrationID == "" || in.ChatID == "" || in.WorkflowID == "" {
		return SaveConversationResult{}, invalidInput("save conversation: integrationId, chatId and workflowId are required")
	}
	switch in.Status {
	case postgres.StatusOpen, postgres.StatusClosed, postgres.StatusEnded, postgres.StatusCancelled:
	default:
		return SaveConversationResult{}, invalidInput("save conversation: status %q is not open, closed, ended or cancelled", in.Status)
	}
	defer heartbeat(ctx)()
	c := postgres.Conversation{
		IntegrationID: in.IntegrationID, ChatID: in.ChatID, WorkflowID: in.WorkflowID, ClientID: in.ClientID,
		CustomerName: in.CustomerName, CustomerEmail: in.CustomerEmail, Status: in.Status, JoinedTask: in.JoinedTask,
	}
	if in.TaskID > 0 {
		c.PlanfixTaskID = &in.TaskID
	}
	if in.ContactID > 0 {
		c.PlanfixContactID = &in.ContactID
	}
	if activity.IsActivity(ctx) {
		// Every attempt of this activity has the same key: a retry after an attempt whose
		// save committed but whose result was lost gets the held replies again.
		info := activity.GetInfo(ctx)
		c.HeldRepliesKey = info.WorkflowExecution.RunID + "/" + info.ActivityID
	}
	held, err := a.DB.SaveConversation(ctx, c)
	if err != nil {
		return SaveConversationResult{}, fail(fmt.Errorf("save conversation %s: %w", in.ChatID, err))
	}
	res := SaveConversationResult{HeldReplies: held}
	if in.JoinedTask {
		receives, err := a.DB.ReceivesReplies(ctx, in.IntegrationID, in.ChatID)
		if err != nil {
			return SaveConversationResult{}, fail(fmt.Errorf("save conversation %s: %w", in.ChatID, err))
		}
		res.RepliesElsewhere = !receives
	}
	return res, nil
}
