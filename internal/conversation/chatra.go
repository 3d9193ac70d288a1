package conversation

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// chatraSignals maps a Chatra webhook to the signals of its conversation, in the order
// they are sent (visitor-info, message, chat-closed). Each carries the client card as it
// now stands once (the workflow decides what changed):
//
//   - chatStarted: visitor-info with Started, then message when it carries messages;
//   - chatFragment: message with the messages not sent by the bridge itself and the card
//     (MessageSignal.Visitor: one signal, accepted or not as a whole), or visitor-info
//     alone when no such message is left;
//   - chatTranscript: chat-closed with the whole transcript and the card.
//
// Each key is the delivery's EventKey followed by "/" and the signal name: a repeated
// delivery yields the same keys, while the two signals of one delivery never share one
// (the workflow ignores a repeated key whatever the signal). Messages are also
// de-duplicated by their own ids.
func chatraSignals(hook *chatra.Webhook, clientID string) []signal {
	eventKey := hook.EventKey()
	visitor := visitorInfo(hook.Visitor())
	infoSignal := func(started bool) signal {
		return signal{workflows.SignalVisitorInfo, workflows.VisitorInfoSignal{
			Key: workflows.DeliveryKey(eventKey, workflows.SignalVisitorInfo), ClientID: clientID, Started: started, Visitor: visitor,
		}}
	}
	messageSignal := func(msgs []workflows.Message, card *workflows.VisitorInfo) signal {
		return signal{workflows.SignalMessage, workflows.MessageSignal{
			Key: workflows.DeliveryKey(eventKey, workflows.SignalMessage), ClientID: clientID, Messages: msgs, Visitor: card,
		}}
	}
	msgs := convertMessages(hook.Messages, true)
	switch hook.EventName {
	case chatra.EventChatStarted:
		sigs := []signal{infoSignal(true)}
		if len(msgs) > 0 {
			sigs = append(sigs, messageSignal(msgs, nil))
		}
		return sigs
	case chatra.EventChatTranscript:
		return []signal{{workflows.SignalChatClosed, workflows.ChatClosedSignal{
			Key: workflows.DeliveryKey(eventKey, workflows.SignalChatClosed), ClientID: clientID,
			Transcript: convertMessages(hook.Messages, false), Visitor: visitor,
		}}}
	default: // chatFragment: ParseWebhook accepts no other event
		if len(msgs) == 0 {
			return []signal{infoSignal(false)}
		}
		return []signal{messageSignal(msgs, &visitor)}
	}
}

func convertMessages(in []chatra.Message, skipOwn bool) []workflows.Message {
	out := make([]workflows.Message, 0, len(in))
	for _, m := range in {
		if skipOwn && workflows.SentByBridge(m.ReceivedFrom) {
			continue
		}
		t := m.CreatedAt
		if t.Year() < 0 || t.Year() > 9999 {
			t = time.Time{} // unknown: JSON, and so Temporal's payloads, cannot carry it
		}
		out = append(out, cleanMessage(workflows.Message{
			ID: m.ID, Type: m.Type, Text: withAttachments(m.Text, m.Attachments), Time: t,
			AgentID: m.AgentID, AgentName: m.AgentName, ReceivedFrom: m.ReceivedFrom,
		}))
	}
	return out
}

// withAttachments is a message's text for the task with what it carries besides (a file,
// an image, a link; chatra.Message.Attachments) after it, so that nothing the visitor
// sent is dropped.
func withAttachments(text, attachments string) string {
	switch {
	case attachments == "":
		return text
	case strings.TrimSpace(text) == "":
		return "Attached in the chat:\n" + attachments
	}
	return text + "\n\nAttached in the chat:\n" + attachments
}

// visitorInfo is the card of a webhook as the conversation takes it: storable and
// bounded (cleanVisitor).
func visitorInfo(v chatra.Visitor) workflows.VisitorInfo {
	return cleanVisitor(v.Visitor)
}

// checkPayloadSize refuses a signal whose payload Temporal would refuse (its default
// blob limit is 2 MiB): retrying such a delivery could never succeed. A body under
// 1 MiB only grows past it through JSON escaping (each '<' becomes "\u003c").
func checkPayloadSize(sig signal) error {
	b, err := json.Marshal(sig.arg)
	if err != nil {
		return fmt.Errorf("encode %s signal: %w", sig.name, err)
	}
	if len(b) > maxSignalBytes {
		return chatrabridge.Errorf(chatrabridge.ETOOLARGE, "the %s signal of this webhook would be %d bytes, over the %d a workflow accepts", sig.name, len(b), maxSignalBytes)
	}
	return nil
}
