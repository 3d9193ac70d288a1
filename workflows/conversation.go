package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// ConversationWorkflow is one Chatra chat, synchronised with its Planfix task.
//
// This first version receives the contract's signals, de-duplicates them by key, keeps
// the State the "state" query returns and the search attributes current; the Planfix
// and Chatra side effects arrive with the conversation workflow issue.
func ConversationWorkflow(ctx workflow.Context, in ConversationInput) error {
	c := &conversation{
		state: State{IntegrationID: in.IntegrationID, ChatID: in.ChatID, ClientID: in.ClientID, Status: StatusOpen},
		seen:  map[string]bool{},
	}
	if err := c.setup(ctx); err != nil {
		return err
	}
	return c.run(ctx)
}

type conversation struct {
	state State
	seen  map[string]bool
}

func (c *conversation) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) { return c.state, nil }); err != nil {
		return err
	}
	return workflow.UpsertTypedSearchAttributes(ctx,
		SAIntegration.ValueSet(c.state.IntegrationID),
		SAChatID.ValueSet(c.state.ChatID),
		SAStatus.ValueSet(c.state.Status),
	)
}

// firstSeen records key and reports whether it is new. An empty key is always new.
func (c *conversation) firstSeen(key string) bool {
	if key == "" {
		return true
	}
	if c.seen[key] {
		return false
	}
	c.seen[key] = true
	return true
}

func (c *conversation) run(ctx workflow.Context) error {
	msgCh := workflow.GetSignalChannel(ctx, SignalMessage)
	infoCh := workflow.GetSignalChannel(ctx, SignalVisitorInfo)
	closedCh := workflow.GetSignalChannel(ctx, SignalChatClosed)
	replyCh := workflow.GetSignalChannel(ctx, SignalReply)
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(msgCh, func(ch workflow.ReceiveChannel, _ bool) {
		var s MessageSignal
		ch.Receive(ctx, &s)
		for _, m := range s.Messages {
			if c.firstSeen("message:" + m.ID) {
				c.state.MessagesReceived++
			}
		}
		c.state.LastActivity = workflow.Now(ctx)
	})
	sel.AddReceive(infoCh, func(ch workflow.ReceiveChannel, _ bool) {
		var s VisitorInfoSignal
		ch.Receive(ctx, &s)
		if c.firstSeen(s.Key) {
			c.state.CustomerName, c.state.CustomerEmail = s.Visitor.Name, s.Visitor.Email
		}
	})
	sel.AddReceive(closedCh, func(ch workflow.ReceiveChannel, _ bool) {
		var s ChatClosedSignal
		ch.Receive(ctx, &s)
		if c.firstSeen(s.Key) {
			c.state.Status = StatusClosed
		}
	})
	sel.AddReceive(replyCh, func(ch workflow.ReceiveChannel, _ bool) {
		var s ReplySignal
		ch.Receive(ctx, &s)
		if c.firstSeen(s.Key) {
			c.state.PendingReplies++
		}
	})
	for {
		sel.Select(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
