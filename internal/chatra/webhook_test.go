package chatra

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// docExample is the payload of docs/CHATRA.md.
const docExample = `{
  "eventName": "chatFragment",
  "messages": [
    {
      "id": "dkmyYPxJyh5rKDhRT",
      "type": "client",
      "text": "Hi there! Did you receive my order?",
      "createdAt": 1665578322700,
      "agentId": "bnRzp4CioKudG4aHm",
      "agentName": "Julia",
      "receivedFrom": "some-integration-tag"
    }
  ],
  "client": {
    "id": "vfg1y4h4ioapl1cx0trw1mujk6den021zs9b2q8",
    "chatId": "aC4krWMZWLYzz9sKZ",
    "name": "Ivan",
    "displayedName": "Ivan",
    "email": "ivan@example.com",
    "phone": "+1 555 0100",
    "basicInfo": {},
    "integrationData": {},
    "info": {}
  },
  "agents": [{ "id": "bnRzp4CioKudG4aHm", "name": "Julia" }]
}`

// hook builds a webhook body from an event name, a messages JSON array (or "" to leave
// the key out) and extra top-level JSON members.
func hook(event, messages string, extra ...string) string {
	parts := []string{fmt.Sprintf(`"eventName":%q`, event), `"client":{"id":"c1","chatId":"chat1"}`}
	if messages != "" {
		parts = append(parts, `"messages":`+messages)
	}
	parts = append(parts, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestParseWebhookDocExample(t *testing.T) {
	w, err := ParseWebhook([]byte(docExample))
	if err != nil {
		t.Fatalf("ParseWebhook: %v", err)
	}
	want := Message{
		ID: "dkmyYPxJyh5rKDhRT", Type: MessageTypeClient, Text: "Hi there! Did you receive my order?",
		AgentID: "bnRzp4CioKudG4aHm", AgentName: "Julia", ReceivedFrom: "some-integration-tag",
		CreatedAt: ms(1665578322700),
	}
	if w.EventName != EventChatFragment {
		t.Errorf("EventName = %q", w.EventName)
	}
	if len(w.Messages) != 1 || !reflect.DeepEqual(w.Messages[0], want) {
		t.Errorf("Messages = %#v, want [%#v]", w.Messages, want)
	}
	c := w.Client
	if c.ID != "vfg1y4h4ioapl1cx0trw1mujk6den021zs9b2q8" || c.ChatID != "aC4krWMZWLYzz9sKZ" ||
		c.Name != "Ivan" || c.DisplayedName != "Ivan" || c.Email != "ivan@example.com" || c.Phone != "+1 555 0100" {
		t.Errorf("Client = %+v", c)
	}
	if _, ok := c.Fields["basicInfo"]; !ok {
		t.Errorf("Client.Fields lost basicInfo: %v", c.Fields)
	}
	if !reflect.DeepEqual(w.Agents, []Agent{{ID: "bnRzp4CioKudG4aHm", Name: "Julia"}}) {
		t.Errorf("Agents = %+v", w.Agents)
	}
	if len(w.Warnings) != 0 {
		t.Errorf("Warnings = %q, want none for the documented shape", w.Warnings)
	}
}

func TestParseWebhookVariants(t *testing.T) {
	long := strings.Repeat("я", 5000)
	tests := []struct {
		name     string
		body     string
		event    string
		messages []Message
		warn     string // a substring one warning must contain; "" for no warnings
	}{
		{
			name:     "chatStarted without messages",
			body:     hook("chatStarted", ""),
			event:    EventChatStarted,
			messages: []Message{},
		},
		{
			name:     "chatStarted with a first message",
			body:     hook("chatStarted", `[{"id":"m1","type":"client","text":"hello","createdAt":1700000000000}]`),
			event:    EventChatStarted,
			messages: []Message{{ID: "m1", Type: "client", Text: "hello", CreatedAt: ms(1700000000000)}},
		},
		{
			name:     "fragment with no start before it is still valid",
			body:     hook("chatFragment", `[{"id":"m2","type":"agent","text":"reply","agentId":"a1","agentName":"Julia"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m2", Type: "agent", Text: "reply", AgentID: "a1", AgentName: "Julia"}},
		},
		{
			name:     "text under message",
			body:     hook("chatFragment", `[{"id":"m1","type":"client","message":"from message key"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Type: "client", Text: "from message key"}},
		},
		{
			name:     "empty text, message set",
			body:     hook("chatFragment", `[{"id":"m1","text":"","message":"the non-empty one"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "the non-empty one"}},
		},
		{
			name:     "null text, message set",
			body:     hook("chatFragment", `[{"id":"m1","text":null,"message":"fallback"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "fallback"}},
		},
		{
			name:     "text and message both set and different: text wins",
			body:     hook("chatFragment", `[{"id":"m1","text":"T","message":"M"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "T"}},
			warn:     "both text and message",
		},
		{
			name:     "message as an object with text",
			body:     hook("chatFragment", `[{"id":"m1","message":{"text":"nested"}}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "nested"}},
		},
		{
			name:     "text as an array is ignored with a warning",
			body:     hook("chatFragment", `[{"id":"m1","text":["a"],"message":"ok"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "ok"}},
			warn:     "messages[0].text has an unexpected shape",
		},
		{
			name:     "createdAt as a numeric string",
			body:     hook("chatFragment", `[{"id":"m1","text":"x","createdAt":"1665578322700"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "x", CreatedAt: ms(1665578322700)}},
		},
		{
			name:     "createdAt as RFC 3339, sub-millisecond dropped",
			body:     hook("chatFragment", `[{"id":"m1","text":"x","createdAt":"2022-10-12T12:38:42.700999+02:00"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "x", CreatedAt: time.Date(2022, 10, 12, 10, 38, 42, 700_000_000, time.UTC)}},
		},
		{
			name:     "createdAt as a fractional or exponent number",
			body:     hook("chatFragment", `[{"id":"m1","text":"x","createdAt":1.6655783227e12},{"id":"m2","createdAt":1665578322700.9}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "x", CreatedAt: ms(1665578322700)}, {ID: "m2", CreatedAt: ms(1665578322700)}},
		},
		{
			name:     "createdAt unreadable is left zero with a warning",
			body:     hook("chatFragment", `[{"id":"m1","text":"x","createdAt":"yesterday"},{"id":"m2","createdAt":{"$date":1}}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "x"}, {ID: "m2"}},
			warn:     `messages[0].createdAt is not a time ("yesterday")`,
		},
		{
			name:     "ids as numbers and _id",
			body:     hook("chatFragment", `[{"id":42,"text":"x"},{"_id":"meteor","text":"y"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "42", Text: "x"}, {ID: "meteor", Text: "y"}},
		},
		{
			name:     "unknown keys everywhere are noted; what a message carries is kept as its attachments",
			body:     hook("chatFragment", `[{"id":"m1","text":"x","file":{"url":"u"},"seen":true},{"id":"m2","text":"","extra":{"href":"https://a/b"}}]`, `"site":{"id":1}`, `"version":2`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "x", Attachments: "file.url: u"}, {ID: "m2", Attachments: "extra.href: https://a/b"}},
			warn:     `unknown top-level key "site"`,
		},
		{
			name:     "unicode text is kept byte for byte",
			body:     hook("chatFragment", `[{"id":"m1","text":"Привет 👋🏽 مرحبا \u00e9\n\ttab"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "Привет 👋🏽 مرحبا é\n\ttab"}},
		},
		{
			name:     "a 5000-character text",
			body:     hook("chatFragment", `[{"id":"m1","text":"`+long+`"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: long}},
		},
		{
			name:     "empty message list",
			body:     hook("chatTranscript", `[]`),
			event:    EventChatTranscript,
			messages: []Message{},
		},
		{
			name:     "null message list",
			body:     hook("chatTranscript", `null`),
			event:    EventChatTranscript,
			messages: []Message{},
		},
		{
			name: "transcript with both sides, order kept",
			body: hook("chatTranscript", `[
				{"id":"m3","type":"client","text":"c","createdAt":3},
				{"id":"m1","type":"agent","message":"a","createdAt":1},
				{"id":"m2","type":"client","text":"b","createdAt":2}]`),
			event: EventChatTranscript,
			messages: []Message{
				{ID: "m3", Type: "client", Text: "c", CreatedAt: ms(3)},
				{ID: "m1", Type: "agent", Text: "a", CreatedAt: ms(1)},
				{ID: "m2", Type: "client", Text: "b", CreatedAt: ms(2)},
			},
		},
		{
			name:     "a message repeated in one delivery is kept once",
			body:     hook("chatFragment", `[{"id":"m1","text":"first"},{"id":"m1","text":"again"}]`),
			event:    EventChatFragment,
			messages: []Message{{ID: "m1", Text: "first"}},
			warn:     "repeats within the delivery",
		},
		{
			name:     "event name in another case",
			body:     hook("CHATFRAGMENT", `[]`),
			event:    EventChatFragment,
			messages: []Message{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWebhook([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if w.EventName != tt.event {
				t.Errorf("EventName = %q, want %q", w.EventName, tt.event)
			}
			if !reflect.DeepEqual(w.Messages, tt.messages) {
				t.Errorf("Messages:\n got %#v\nwant %#v", w.Messages, tt.messages)
			}
			if w.Client.ID != "c1" || w.Client.ChatID != "chat1" {
				t.Errorf("Client ids = %q, %q", w.Client.ID, w.Client.ChatID)
			}
			if tt.warn == "" && len(w.Warnings) > 0 {
				t.Errorf("Warnings = %q, want none", w.Warnings)
			}
			if tt.warn != "" && !containsAny(w.Warnings, tt.warn) {
				t.Errorf("Warnings = %q, want one containing %q", w.Warnings, tt.warn)
			}
		})
	}
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestParseWebhookClientVariants(t *testing.T) {
	tests := []struct {
		name, client, extra string
		id, chatID          string
	}{
		{name: "numeric ids", client: `{"id":12345,"chatId":678}`, id: "12345", chatID: "678"},
		{name: "chatId at the top level", client: `{"id":"c"}`, extra: `,"chatId":"top"`, id: "c", chatID: "top"},
		{name: "client chatId wins over top level", client: `{"id":"c","chatId":"inner"}`, extra: `,"chatId":"top"`, id: "c", chatID: "inner"},
		{name: "_id instead of id", client: `{"_id":"meteor","chatId":"x"}`, id: "meteor", chatID: "x"},
		{name: "extra client fields kept", client: `{"id":"c","chatId":"x","tags":["a"],"info":[1,2]}`, id: "c", chatID: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"eventName":"chatStarted","client":` + tt.client + tt.extra + `}`
			w, err := ParseWebhook([]byte(body))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if w.Client.ID != tt.id || w.Client.ChatID != tt.chatID {
				t.Errorf("ids = %q, %q; want %q, %q", w.Client.ID, w.Client.ChatID, tt.id, tt.chatID)
			}
		})
	}
}

func TestParseWebhookErrors(t *testing.T) {
	tests := []struct {
		name, body string
		field      string
		message    []string // substrings the message must contain
	}{
		{"empty body", ``, "", []string{"not a JSON object", "empty"}},
		{"not JSON", `hello`, "", []string{"not a JSON object", "invalid JSON"}},
		{"truncated JSON", `{"eventName":"chatStarted"`, "", []string{"not a JSON object"}},
		{"array", `[{"eventName":"chatStarted"}]`, "", []string{"not a JSON object", "an array"}},
		{"null", `null`, "", []string{"not a JSON object", "null"}},
		{"string", `"chatStarted"`, "", []string{"not a JSON object", "a string"}},
		{"two objects", `{} {}`, "", []string{"not a JSON object", "after the first JSON value"}},
		{"missing eventName", `{"client":{"id":"c","chatId":"x"}}`, "eventName", []string{"eventName is missing", "chatStarted, chatFragment, chatTranscript"}},
		{"unknown eventName", `{"eventName":"chatRated","client":{"id":"c","chatId":"x"}}`, "eventName", []string{`unknown eventName "chatRated"`}},
		{"numeric eventName", `{"eventName":7,"client":{"id":"c","chatId":"x"}}`, "eventName", []string{"eventName is a number"}},
		{"huge eventName is cut", `{"eventName":"` + strings.Repeat("x", 10000) + `"}`, "eventName", []string{"unknown eventName", "…"}},
		{"missing client", `{"eventName":"chatFragment","messages":[]}`, "client", []string{"client is missing"}},
		{"null client", `{"eventName":"chatFragment","client":null}`, "client", []string{"client is missing"}},
		{"client is an array", `{"eventName":"chatFragment","client":[]}`, "client", []string{"client is an array"}},
		{"missing client.chatId", `{"eventName":"chatFragment","client":{"id":"c"}}`, "client.chatId", []string{"client.chatId is missing"}},
		{"blank client.chatId", `{"eventName":"chatFragment","client":{"id":"c","chatId":"  "}}`, "client.chatId", []string{"client.chatId"}},
		{"object client.chatId", `{"eventName":"chatFragment","client":{"id":"c","chatId":{"a":1}}}`, "client.chatId", []string{"client.chatId"}},
		{"missing client.id", `{"eventName":"chatFragment","client":{"chatId":"x"}}`, "client.id", []string{"client.id is missing"}},
		{"messages is an object", hook("chatFragment", `{"id":"m1"}`), "messages", []string{"messages is an object"}},
		{"a message is a string", hook("chatFragment", `[{"id":"m1"},"m2"]`), "messages[1]", []string{"messages[1] is a string"}},
		{"a message without id", hook("chatFragment", `[{"id":"m1"},{"text":"no id"}]`), "messages[1].id", []string{"messages[1].id is missing"}},
		{"a message with empty id", hook("chatFragment", `[{"id":"","text":"x"}]`), "messages[0].id", []string{"messages[0].id"}},
		{"a message with an array id", hook("chatFragment", `[{"id":["m"],"text":"x"}]`), "messages[0].id", []string{"messages[0].id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWebhook([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseWebhook succeeded: %+v", w)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not an *InputError", err, err)
			}
			if ie.Field != tt.field {
				t.Errorf("Field = %q, want %q", ie.Field, tt.field)
			}
			for _, sub := range tt.message {
				if !strings.Contains(ie.Message, sub) {
					t.Errorf("Message %q does not contain %q", ie.Message, sub)
				}
			}
			if len(ie.Message) > 400 {
				t.Errorf("Message is %d bytes long; it must quote only an excerpt", len(ie.Message))
			}
			if !strings.HasPrefix(err.Error(), "chatra: invalid input: ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

var eventKeyRE = regexp.MustCompile(`^(chatStarted|chatFragment|chatTranscript):[0-9a-f]{64}$`)

func mustParse(t *testing.T, body string) *Webhook {
	t.Helper()
	w, err := ParseWebhook([]byte(body))
	if err != nil {
		t.Fatalf("ParseWebhook(%s): %v", body, err)
	}
	return w
}

func TestEventKey(t *testing.T) {
	const (
		m12  = `[{"id":"m1","text":"a"},{"id":"m2","text":"b"}]`
		m21  = `[{"id":"m2","message":"b","createdAt":5},{"id":"m1","text":"a"}]`
		m123 = `[{"id":"m1","text":"a"},{"id":"m2","text":"b"},{"id":"m3","text":"c"}]`
	)
	key := func(body string) string { return mustParse(t, body).EventKey() }

	base := key(hook("chatFragment", m12))
	if !eventKeyRE.MatchString(base) {
		t.Fatalf("EventKey = %q, want event:64 hex digits", base)
	}
	if got := key(hook("chatFragment", m12)); got != base {
		t.Errorf("same body, different key: %q vs %q", got, base)
	}
	if got := key(hook("chatFragment", m21)); got != base {
		t.Errorf("same message ids in another order (and other text keys) changed the key")
	}
	reRendered := `{"client":{"chatId":"chat1","id":"c1","name":"Ivan","info":{"city":"Berlin"}},"messages":` + m12 + `,"eventName":"chatFragment"}`
	if got := key(reRendered); got != base {
		t.Errorf("a re-rendered client card changed the key of an event with messages")
	}
	for name, body := range map[string]string{
		"more messages":  hook("chatFragment", m123),
		"other event":    hook("chatTranscript", m12),
		"other chat":     `{"eventName":"chatFragment","client":{"id":"c1","chatId":"chat2"},"messages":` + m12 + `}`,
		"other visitor":  `{"eventName":"chatFragment","client":{"id":"c2","chatId":"chat1"},"messages":` + m12 + `}`,
		"no messages":    hook("chatFragment", `[]`),
		"concat attempt": `{"eventName":"chatFragment","client":{"id":"c1","chatId":"chat1"},"messages":[{"id":"m1m2"}]}`,
	} {
		if got := key(body); got == base {
			t.Errorf("%s: key did not change", name)
		}
	}

	started := key(hook("chatStarted", ""))
	if got := key(hook("chatStarted", `[]`)); got != started {
		t.Errorf("absent and empty messages differ: %q vs %q", got, started)
	}
	if got := key(`{"eventName":"chatStarted","client":{"chatId":"chat1","id":"c1","city":"Paris"}}`); got == started {
		t.Errorf("a chatStarted with another card got the same key")
	}
	reordered := `{"client":{"city":"Paris","id":"c1","chatId":"chat1"},"eventName":"chatStarted"}`
	if key(reordered) != key(`{"eventName":"chatStarted","client":{"chatId":"chat1","id":"c1","city":"Paris"}}`) {
		t.Errorf("key order in the card changed the key of an event without messages")
	}
}

// roundTrip encodes w as JSON and parses it again.
func roundTrip(t testing.TB, w *Webhook) *Webhook {
	t.Helper()
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatalf("json.Marshal(webhook): %v", err)
	}
	again, err := ParseWebhook(data)
	if err != nil {
		t.Fatalf("re-parse of the encoded webhook failed: %v\n%s", err, data)
	}
	return again
}

func TestWebhookJSONRoundTrip(t *testing.T) {
	for _, body := range []string{
		docExample,
		hook("chatStarted", "", `"chatId":"ignored"`),
		`{"eventName":"chatStarted","chatId":"top","client":{"_id":7,"name":{"x":1},"info":{"location":{"city":"Berlin"}}}}`,
		hook("chatTranscript", `[{"id":1,"message":"m","createdAt":"2024-01-02T03:04:05.678901Z"},{"id":"2","text":"t","createdAt":-1}]`),
	} {
		w := mustParse(t, body)
		again := roundTrip(t, w)
		if again.EventKey() != w.EventKey() {
			t.Errorf("EventKey changed by a JSON round trip of %s", body)
		}
		if !reflect.DeepEqual(again.Visitor(), w.Visitor()) {
			t.Errorf("Visitor changed by a JSON round trip:\n got %+v\nwant %+v", again.Visitor(), w.Visitor())
		}
		if !reflect.DeepEqual(again.Messages, w.Messages) {
			t.Errorf("Messages changed by a JSON round trip:\n got %#v\nwant %#v", again.Messages, w.Messages)
		}
	}
}

func TestMessageJSON(t *testing.T) {
	m := Message{ID: "m1", Type: "agent", Text: "hi", ClientID: "c1", AgentID: "a1", ReceivedFrom: "tag", CreatedAt: ms(1665578322700)}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"m1","type":"agent","text":"hi","clientId":"c1","agentId":"a1","receivedFrom":"tag","createdAt":1665578322700}`
	if string(data) != want {
		t.Errorf("Marshal = %s\nwant      %s", data, want)
	}
	var back Message
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Errorf("Unmarshal = %#v, %v; want %#v", back, err, m)
	}
	zero, _ := json.Marshal(Message{ID: "x"})
	if strings.Contains(string(zero), "createdAt") {
		t.Errorf("zero CreatedAt encoded: %s", zero)
	}
	if err := json.Unmarshal([]byte(`[1]`), &back); err == nil {
		t.Errorf("Unmarshal of an array succeeded")
	}
}

func TestClientCardJSON(t *testing.T) {
	var c ClientCard
	if err := json.Unmarshal([]byte(`{"id":5,"name":"Ivan","custom":{"a":[1,2]},"_id":"old"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.ID != "5" || c.Name != "Ivan" {
		t.Errorf("card = %+v", c)
	}
	c.Name = ""
	c.Email = "new@example.com"
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m["id"] != "5" || m["email"] != "new@example.com" || m["custom"] == nil {
		t.Errorf("encoded card = %s", data)
	}
	if _, ok := m["name"]; ok {
		t.Errorf("a cleared name came back from Fields: %s", data)
	}
	if _, ok := m["_id"]; ok {
		t.Errorf("_id kept next to id: %s", data)
	}
}
