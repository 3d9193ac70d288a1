package chatra

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Webhook event names, the values of Webhook.EventName.
const (
	// EventChatStarted: a visitor (or an agent) started a chat.
	EventChatStarted = "chatStarted"
	// EventChatFragment: new messages in a chat, from the visitor or an agent.
	EventChatFragment = "chatFragment"
	// EventChatTranscript: the chat ended; Messages holds the whole transcript.
	EventChatTranscript = "chatTranscript"
)

// eventNames lists the accepted event names, in the order error messages name them.
var eventNames = []string{EventChatStarted, EventChatFragment, EventChatTranscript}

// Webhook is one webhook delivery from Chatra, as ParseWebhook reads it.
//
// Deliveries may repeat and arrive out of order (a chatFragment before its chatStarted);
// EventKey identifies a delivery so that repeats can be ignored.
type Webhook struct {
	EventName string     `json:"eventName"` // EventChatStarted, EventChatFragment or EventChatTranscript
	Messages  []Message  `json:"messages"`  // in the order Chatra sent them; ids unique and non-empty
	Client    ClientCard `json:"client"`    // ID and ChatID are never empty
	Agents    []Agent    `json:"agents,omitempty"`

	// Warnings describes what the parser met and did not expect (unknown keys, values it
	// could not read and left out), for a debug log: Chatra's payload is partly
	// undocumented, and these notes are how its real shape gets discovered. Not encoded.
	Warnings []string `json:"-"`
}

// webhookKnownKeys are the top-level keys ParseWebhook reads.
var webhookKnownKeys = map[string]bool{
	"eventName": true, "messages": true, "client": true, "agents": true, "chatId": true,
}

// ParseWebhook reads a Chatra webhook body.
//
// It is lenient about everything the bridge can do without: unknown keys are ignored (and
// noted in Warnings), a message's text may come under "text" or "message", createdAt may be
// milliseconds (number or numeric string) or RFC 3339, ids may be numbers, a missing
// messages list is an empty one, and malformed agents are skipped. The client object is
// kept whole in Client.Fields for Visitor.
//
// It fails, always with an *InputError naming the offending field, when the body is not a
// JSON object; when eventName is missing or not one of the three events; when client is
// missing or not an object; when client.id or client.chatId is missing (a top-level chatId
// is accepted in place of client.chatId), since the bridge cannot route the event without
// them; when messages is not an array or holds something other than objects; and when a
// message has no id, since messages are de-duplicated by it. Messages repeated within one
// delivery (same id) are kept once.
func ParseWebhook(body []byte) (*Webhook, error) {
	root, err := decodeObject(body)
	if err != nil {
		return nil, &InputError{Message: "the webhook body is " + err.Error()}
	}
	var warn warnings
	w := &Webhook{}

	if w.EventName, err = parseEventName(root["eventName"]); err != nil {
		return nil, err
	}

	clientValue, ok := root["client"]
	if !ok || clientValue == nil {
		return nil, &InputError{Field: "client", Message: "client is missing: the bridge needs client.id and client.chatId to route the event"}
	}
	clientObj, ok := clientValue.(map[string]any)
	if !ok {
		return nil, &InputError{Field: "client", Message: "client is " + jsonKind(clientValue) + ", not an object"}
	}
	w.Client = clientFromMap(clientObj)
	if strings.TrimSpace(w.Client.ChatID) == "" {
		if id, _ := scalarString(root["chatId"]); strings.TrimSpace(id) != "" {
			w.Client.ChatID = id
		}
	}
	if strings.TrimSpace(w.Client.ChatID) == "" {
		return nil, &InputError{Field: "client.chatId", Message: "client.chatId is missing: the bridge routes each event to the conversation of its chat"}
	}
	if strings.TrimSpace(w.Client.ID) == "" {
		return nil, &InputError{Field: "client.id", Message: "client.id is missing: the bridge links each chat to its visitor by it"}
	}

	if w.Messages, err = parseMessages(root["messages"], &warn); err != nil {
		return nil, err
	}
	w.Agents = parseAgents(root["agents"], &warn)

	for _, k := range sortedKeys(root) {
		if !webhookKnownKeys[k] {
			warn.add("unknown top-level key %q", k)
		}
	}
	w.Warnings = warn.list
	return w, nil
}

// parseEventName checks eventName; names are matched case-insensitively and returned in
// their canonical spelling.
func parseEventName(v any) (string, error) {
	expected := "expected one of " + strings.Join(eventNames, ", ")
	if v == nil {
		return "", &InputError{Field: "eventName", Message: "eventName is missing: " + expected}
	}
	name, ok := v.(string)
	if !ok {
		return "", &InputError{Field: "eventName", Message: "eventName is " + jsonKind(v) + ", not a string: " + expected}
	}
	for _, e := range eventNames {
		if strings.EqualFold(strings.TrimSpace(name), e) {
			return e, nil
		}
	}
	return "", &InputError{Field: "eventName", Message: fmt.Sprintf("unknown eventName %s: %s", excerpt(name), expected)}
}

// parseMessages reads the messages array.
func parseMessages(v any, warn *warnings) ([]Message, error) {
	if v == nil {
		return []Message{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, &InputError{Field: "messages", Message: "messages is " + jsonKind(v) + ", not an array"}
	}
	out := make([]Message, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, item := range list {
		path := fmt.Sprintf("messages[%d]", i)
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, &InputError{Field: path, Message: path + " is " + jsonKind(item) + ", not an object"}
		}
		m := messageFromMap(obj, path, warn)
		if strings.TrimSpace(m.ID) == "" {
			return nil, &InputError{Field: path + ".id", Message: path + ".id is missing or empty: the bridge de-duplicates messages by their id"}
		}
		if seen[m.ID] {
			warn.add("message id %s repeats within the delivery; kept once", excerpt(m.ID))
			continue
		}
		seen[m.ID] = true
		out = append(out, m)
	}
	return out, nil
}

// parseAgents reads the agents array, skipping what it cannot read.
func parseAgents(v any, warn *warnings) []Agent {
	if v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		warn.add("agents is %s, not an array; ignored", jsonKind(v))
		return nil
	}
	var out []Agent
	for i, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			warn.add("agents[%d] is %s, not an object; skipped", i, jsonKind(item))
			continue
		}
		a := Agent{ID: firstString(obj, "id", "_id")}
		a.Name, _ = scalarString(obj["name"])
		a.Email, _ = scalarString(obj["email"])
		if a.ID == "" && a.Name == "" && a.Email == "" {
			continue
		}
		out = append(out, a)
	}
	return out
}

// Visitor returns the visitor details the delivery carries; see ClientCard.Visitor.
func (w *Webhook) Visitor() Visitor {
	return w.Client.Visitor()
}

// EventKey returns a stable idempotency key for the delivery: the event name, a colon, and
// 64 hex digits of a SHA-256 digest.
//
// For an event that carries messages, the digest covers the event name, client.chatId,
// client.id and the sorted message ids, and nothing else: a repeated delivery gets the same
// key even when Chatra re-renders the client card, and a transcript that holds more
// messages than an earlier one gets a new key. For an event without messages (a
// chatStarted, typically) the digest covers the event name, the ids and the client card
// in canonical JSON (keys sorted), so that a new chat with the same visitor, whose card
// has moved on, is not mistaken for a repeat.
//
// The key survives a JSON round trip of w.
func (w *Webhook) EventKey() string {
	h := sha256.New()
	write := func(s string) {
		fmt.Fprintf(h, "%d:%s;", len(s), s) // length-prefixed: no two inputs collide by concatenation
	}
	write("chatra-webhook/v1")
	write(w.EventName)
	write(w.Client.ChatID)
	write(w.Client.ID)
	if len(w.Messages) > 0 {
		ids := make([]string, len(w.Messages))
		for i, m := range w.Messages {
			ids[i] = m.ID
		}
		sort.Strings(ids)
		write("messages")
		for _, id := range ids {
			write(id)
		}
	} else {
		card, err := json.Marshal(w.Client)
		if err != nil { // only for Fields holding values JSON cannot encode
			card = []byte(err.Error())
		}
		write("client")
		write(string(card))
	}
	return w.EventName + ":" + hex.EncodeToString(h.Sum(nil))
}
