// Package inbox delivers webhooks to Temporal, now or later: Send is what a webhook
// handler sends (the signals of one conversation, starting it when needed), and the
// Forwarder sends what the handlers kept in PostgreSQL while Temporal could not take it,
// exactly as the handler would have, in arrival order per conversation.
package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge/workflows"
)

// maxKeywordBytes is the most a Keyword search attribute holds.
const maxKeywordBytes = 255

// Delivery is what one webhook sends to a conversation's workflow: its signals, in
// order, each with a SignalWithStart (the conversation starts when no run is open), or,
// with SignalFirst, signalled to the open run and started only when there is none (a
// Planfix reply to a conversation that has ended). It is stored in the inbox as JSON.
type Delivery struct {
	WorkflowID string                      `json:"workflowId"`
	TaskQueue  string                      `json:"taskQueue"`
	Input      workflows.ConversationInput `json:"input"`
	// Customer and Email are the visitor's name and email as far as known (search
	// attributes); Summary is the run's static summary in the Web UI.
	Customer    string   `json:"customer,omitempty"`
	Email       string   `json:"email,omitempty"`
	Summary     string   `json:"summary,omitempty"`
	SignalFirst bool     `json:"signalFirst,omitempty"`
	Signals     []Signal `json:"signals"`
}

// Signal is one signal of a Delivery. Arg is the signal's struct when the handler builds
// it, its JSON (json.RawMessage) once read back from the inbox: Temporal's JSON payload
// of either is the same.
type Signal struct {
	Name string `json:"name"`
	Arg  any    `json:"arg"`
}

// UnmarshalJSON keeps Arg as the JSON it was, so that it is sent again byte for byte.
func (s *Signal) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name string          `json:"name"`
		Arg  json.RawMessage `json:"arg"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Name, s.Arg = raw.Name, raw.Arg
	return nil
}

// StartOptions are the options of a SignalWithStart of d: start the conversation if no
// run is open (also after a previous run closed), else signal the open one. The search
// attributes known already are set at the start, so that the workflow need not upsert
// them (each upsert costs a visibility write before the task is made).
func (d Delivery) StartOptions() client.StartWorkflowOptions {
	attrs := []temporal.SearchAttributeUpdate{
		workflows.SAIntegration.ValueSet(workflows.TruncateBytes(d.Input.IntegrationID, maxKeywordBytes)),
		workflows.SAChatID.ValueSet(workflows.TruncateBytes(d.Input.ChatID, maxKeywordBytes)),
		workflows.SAStatus.ValueSet(string(workflows.StatusOpen)),
	}
	for _, kv := range []struct {
		key temporal.SearchAttributeKeyKeyword
		v   string
	}{{workflows.SAClientID, d.Input.ClientID}, {workflows.SAName, d.Customer}, {workflows.SAEmail, d.Email}} {
		if v := strings.TrimSpace(kv.v); v != "" {
			attrs = append(attrs, kv.key.ValueSet(workflows.TruncateBytes(v, maxKeywordBytes)))
		}
	}
	return client.StartWorkflowOptions{
		ID:                       d.WorkflowID,
		TaskQueue:                d.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
		StaticSummary:            d.Summary,
	}
}

// SendError is a failed Send: which signal Temporal did not take, and how many before it
// it took.
type SendError struct {
	Signal   string
	Accepted int
	Err      error
}

func (e *SendError) Error() string { return fmt.Sprintf("signal %s: %v", e.Signal, e.Err) }
func (e *SendError) Unwrap() error { return e.Err }

// Send sends d's signals to Temporal in order. restarted reports that a SignalFirst
// delivery found no open run and started one. The error is a *SendError wrapping
// Temporal's. Sending a delivery again sends the same signals with the same keys,
// which the workflow ignores.
func Send(ctx context.Context, c client.Client, d Delivery) (restarted bool, err error) {
	start := d.StartOptions()
	for i, sig := range d.Signals {
		if d.SignalFirst {
			err = c.SignalWorkflow(ctx, d.WorkflowID, "", sig.Name, sig.Arg)
			var notFound *serviceerror.NotFound
			if !errors.As(err, &notFound) {
				if err != nil {
					return restarted, &SendError{Signal: sig.Name, Accepted: i, Err: err}
				}
				continue
			}
		}
		if _, err = c.SignalWithStartWorkflow(ctx, d.WorkflowID, sig.Name, sig.Arg, start, workflows.ConversationWorkflowName, d.Input); err != nil {
			return restarted, &SendError{Signal: sig.Name, Accepted: i, Err: err}
		}
		restarted = restarted || d.SignalFirst
	}
	return restarted, nil
}
