// Package chatra talks to Chatra, the website live chat: it parses the webhook deliveries
// Chatra sends (ParseWebhook), extracts the visitor details a task needs (Visitor), and calls
// Chatra's REST API (Client).
//
// Chatra publishes no machine-readable spec and several payload field names are unverified
// (see docs/CHATRA.md), so everything that reads Chatra's JSON here is lenient: unknown keys
// are ignored or kept, numbers are accepted where strings were expected, and no shape of
// input makes this package panic. It is strict only where the bridge cannot work without a
// value: the event name, the chat and visitor ids, and the message ids.
package chatra

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Message types, the values of Message.Type that Chatra is known to send.
const (
	// MessageTypeClient marks a message the visitor wrote.
	MessageTypeClient = "client"
	// MessageTypeAgent marks a message an agent wrote, in the Chatra app or through the API.
	MessageTypeAgent = "agent"
)

// MaxMessageLength is the longest text, in UTF-16 code units (what JavaScript's
// String.length counts, and so what Chatra counts), that one message may carry.
// Longer texts are split by the caller, see SplitText.
const MaxMessageLength = 5000

// InputError reports input this package refuses: a webhook body that cannot be routed, or
// the arguments of a REST call that Chatra would refuse. It is permanent: the same input
// fails the same way again. An HTTP edge answers it with 400 and
// {"error":{"code":"invalid","message":Message,"field":Field}}.
type InputError struct {
	// Field is the JSON path of the offending value, such as "client.chatId" or
	// "messages[2].id"; empty when the input as a whole is at fault.
	Field string
	// Message explains the problem in a sentence that names the field; it never contains
	// credentials and quotes at most a short excerpt of the input.
	Message string
}

// Error implements error.
func (e *InputError) Error() string {
	return "chatra: invalid input: " + e.Message
}

// Message is one chat message, as Chatra's webhooks deliver it and as POST /api/messages/
// and GET /api/messages/{id} return it.
//
// Its JSON form is Chatra's wire form: createdAt in milliseconds since the Unix epoch (left
// out when CreatedAt is zero) and the text under "text". Decoding is lenient: the text may
// come under "text" or "message" (the non-empty one wins, "text" when both are set),
// createdAt may be milliseconds as a number or a numeric string, or an RFC 3339 string,
// ids may be numbers, and the id may come as "_id". A value that cannot be read is left
// zero rather than failing the message.
type Message struct {
	ID           string
	Type         string // MessageTypeClient, MessageTypeAgent, or whatever else Chatra sends
	Text         string
	ClientID     string // set on REST responses; webhooks carry it on the client instead
	AgentID      string
	AgentName    string
	ReceivedFrom string    // the integration tag the message was sent with, if any
	CreatedAt    time.Time // UTC, millisecond precision; zero when unknown
	// Attachments says what the message carries besides its text (a file, an image, a
	// link: see attachments); empty when nothing. Not written by MarshalJSON.
	Attachments string
}

// wireMessage is Message as Chatra writes it.
type wireMessage struct {
	ID           string `json:"id"`
	Type         string `json:"type,omitempty"`
	Text         string `json:"text"`
	ClientID     string `json:"clientId,omitempty"`
	AgentID      string `json:"agentId,omitempty"`
	AgentName    string `json:"agentName,omitempty"`
	ReceivedFrom string `json:"receivedFrom,omitempty"`
	CreatedAt    *int64 `json:"createdAt,omitempty"`
}

// MarshalJSON writes m in Chatra's wire form.
func (m Message) MarshalJSON() ([]byte, error) {
	w := wireMessage{
		ID: m.ID, Type: m.Type, Text: m.Text, ClientID: m.ClientID,
		AgentID: m.AgentID, AgentName: m.AgentName, ReceivedFrom: m.ReceivedFrom,
	}
	if !m.CreatedAt.IsZero() {
		ms := m.CreatedAt.UnixMilli()
		w.CreatedAt = &ms
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a message leniently, as described on Message. It fails only when data
// is not a JSON object.
func (m *Message) UnmarshalJSON(data []byte) error {
	obj, err := decodeObject(data)
	if err != nil {
		return fmt.Errorf("chatra message: %w", err)
	}
	*m = messageFromMap(obj, "message", nil)
	return nil
}

// messageKnownKeys are the message keys messageFromMap reads.
var messageKnownKeys = map[string]bool{
	"id": true, "_id": true, "type": true, "text": true, "message": true, "clientId": true,
	"agentId": true, "agentName": true, "receivedFrom": true, "createdAt": true,
}

// messageFromMap reads a message from a decoded JSON object. Values it cannot read are
// left zero and reported to warn (which may be nil); path names the message in warnings.
func messageFromMap(obj map[string]any, path string, warn *warnings) Message {
	var m Message
	m.ID = firstString(obj, "id", "_id")
	m.Type, _ = scalarString(obj["type"])
	m.ClientID, _ = scalarString(obj["clientId"])
	m.AgentID, _ = scalarString(obj["agentId"])
	m.AgentName, _ = scalarString(obj["agentName"])
	m.ReceivedFrom, _ = scalarString(obj["receivedFrom"])

	text, textOK := messageText(obj["text"])
	alt, altOK := messageText(obj["message"])
	switch {
	case text != "":
		m.Text = text
		if alt != "" && alt != text {
			warn.add("%s has both text and message and they differ; using text", path)
		}
	case alt != "":
		m.Text = alt
	}
	if !textOK {
		warn.add("%s.text has an unexpected shape; ignored", path)
	}
	if !altOK {
		warn.add("%s.message has an unexpected shape; ignored", path)
	}

	if v, ok := obj["createdAt"]; ok && v != nil {
		if t, ok := parseTime(v); ok {
			m.CreatedAt = t
		} else {
			warn.add("%s.createdAt is not a time (%s); left unknown", path, excerpt(v))
		}
	}
	for _, k := range sortedKeys(obj) {
		if !messageKnownKeys[k] {
			warn.add("unknown message key %q", k)
		}
	}
	m.Attachments = attachments(obj)
	return m
}

// contentKey matches the names of keys that carry what a visitor sent rather than facts
// about the message.
var contentKey = regexp.MustCompile(`(?i)file|image|img|photo|picture|attach|url|link|media|document|audio|video|voice|sticker|location|geo|contact`)

// maxAttachmentLines and maxAttachmentBytes bound Message.Attachments.
const (
	maxAttachmentLines = 40
	maxAttachmentBytes = 4000
)

// attachments describes what a message object carries besides the keys messageFromMap
// reads: each key whose name says it is content (contentKey) or whose value holds a URL,
// as "key: value" lines, nested values as "key.name: value" and "key[0]: value", in key
// order, bounded. Chatra's shape for files and images is not documented: whatever it is,
// what the visitor sent reaches the task instead of being dropped.
func attachments(obj map[string]any) string {
	var lines []string
	var walk func(path string, v any, depth int)
	walk = func(path string, v any, depth int) {
		if len(lines) >= maxAttachmentLines || depth > 4 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(path+"."+k, x[k], depth+1)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e, depth+1)
			}
		default:
			if s, ok := scalarString(v); ok && strings.TrimSpace(s) != "" {
				lines = append(lines, path+": "+strings.Join(strings.Fields(s), " "))
			}
		}
	}
	for _, k := range sortedKeys(obj) {
		if messageKnownKeys[k] {
			continue
		}
		if b, _ := json.Marshal(obj[k]); contentKey.MatchString(k) || strings.Contains(string(b), "://") {
			walk(k, obj[k], 0)
		}
	}
	out := strings.Join(lines, "\n")
	if len(out) > maxAttachmentBytes {
		out = strings.ToValidUTF8(out[:maxAttachmentBytes], "") + " …"
	}
	return out
}

// messageText reads a text value: a scalar, or an object carrying "text" (one level).
// ok is false for a shape it cannot read; null and absence are fine.
func messageText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case map[string]any:
		s, ok := scalarString(x["text"])
		return s, ok
	}
	return scalarString(v)
}

// Agent is a Chatra agent (an operator of the chat) as webhooks list it.
type Agent struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// ClientCard is Chatra's visitor card: the client object of a webhook and the answer of
// GET /api/clients/{id}.
//
// The named fields are the keys whose meaning is known; Fields holds the whole object as
// decoded (numbers as json.Number), including keys this package does not know, so nothing
// Chatra sends is lost. Visitor turns a card into the details a task needs.
//
// Its JSON form is Fields with the named fields written over it; decoding is lenient (ids
// may be numbers) and fails only when the data is not a JSON object.
type ClientCard struct {
	ID            string // the visitor id: Chatra's, or the site's own when the widget is bound to its accounts
	ChatID        string // the chat with this visitor; set on webhooks
	Name          string
	DisplayedName string // Chatra's generated display name when the visitor gave none
	Email         string
	Phone         string
	Notes         string
	Fields        map[string]any
}

// CurrentNotes is what the card's notes say now, wherever the card keeps them: its notes,
// else its basic info's notes (Chatra's documentation has both shapes). Whoever writes
// the notes appends to this, so that what agents wrote stays.
func (c ClientCard) CurrentNotes() string {
	if c.Notes != "" {
		return c.Notes
	}
	if info, ok := c.Fields["basicInfo"].(map[string]any); ok {
		if notes, ok := scalarString(info["notes"]); ok {
			return notes
		}
	}
	return ""
}

// clientKnownKeys maps the JSON keys of ClientCard's named fields to accessors.
var clientKnownKeys = []struct {
	key string
	get func(*ClientCard) *string
}{
	{"id", func(c *ClientCard) *string { return &c.ID }},
	{"chatId", func(c *ClientCard) *string { return &c.ChatID }},
	{"name", func(c *ClientCard) *string { return &c.Name }},
	{"displayedName", func(c *ClientCard) *string { return &c.DisplayedName }},
	{"email", func(c *ClientCard) *string { return &c.Email }},
	{"phone", func(c *ClientCard) *string { return &c.Phone }},
	{"notes", func(c *ClientCard) *string { return &c.Notes }},
}

// clientFromMap reads a card from a decoded JSON object; obj becomes its Fields.
func clientFromMap(obj map[string]any) ClientCard {
	c := ClientCard{Fields: obj}
	for _, k := range clientKnownKeys {
		*k.get(&c), _ = scalarString(obj[k.key])
	}
	if c.ID == "" {
		c.ID, _ = scalarString(obj["_id"])
	}
	return c
}

// MarshalJSON writes Fields with the named fields over it; empty named fields are left out.
func (c ClientCard) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(c.Fields)+len(clientKnownKeys))
	for k, v := range c.Fields {
		out[k] = v
	}
	for _, k := range clientKnownKeys {
		delete(out, k.key)
		if v := *k.get(&c); v != "" {
			out[k.key] = v
		}
	}
	if c.ID != "" {
		delete(out, "_id")
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a card leniently, as described on ClientCard.
func (c *ClientCard) UnmarshalJSON(data []byte) error {
	obj, err := decodeObject(data)
	if err != nil {
		return fmt.Errorf("chatra client: %w", err)
	}
	*c = clientFromMap(obj)
	return nil
}

// warnings collects notes about shapes the parser did not expect, de-duplicated and
// bounded. A nil *warnings discards them.
type warnings struct {
	list []string
	seen map[string]bool
}

// maxWarnings bounds how many notes one parse keeps.
const maxWarnings = 20

func (w *warnings) add(format string, args ...any) {
	if w == nil || len(w.list) >= maxWarnings {
		return
	}
	s := fmt.Sprintf(format, args...)
	if w.seen[s] {
		return
	}
	if w.seen == nil {
		w.seen = make(map[string]bool)
	}
	w.seen[s] = true
	w.list = append(w.list, s)
}

// errNotObject is wrapped by decodeObject's errors when the input is valid JSON but not an
// object.
var errNotObject = errors.New("not a JSON object")

// decodeObject decodes data as exactly one JSON object, numbers as json.Number.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the body is empty", errNotObject)
		}
		return nil, fmt.Errorf("%w: invalid JSON: %v", errNotObject, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: unexpected data after the first JSON value", errNotObject)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: got %s", errNotObject, jsonKind(v))
	}
	return obj, nil
}

// jsonKind names the JSON type of a decoded value, for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// scalarString returns a JSON scalar as text: strings as they are, numbers in their literal
// form, booleans as true or false. ok is false for objects and arrays; null gives "", true.
func scalarString(v any) (s string, ok bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), true
	}
	return "", false
}

// firstString returns the first non-empty scalar among obj's keys.
func firstString(obj map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, _ := scalarString(obj[k]); s != "" {
			return s
		}
	}
	return ""
}

// parseTime reads a timestamp: milliseconds since the Unix epoch as a number or a numeric
// string, or an RFC 3339 string. The result is UTC with millisecond precision.
func parseTime(v any) (time.Time, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case float64:
		return millisFloat(x)
	case int64:
		return time.UnixMilli(x).UTC(), true
	case int:
		return time.UnixMilli(int64(x)).UTC(), true
	case string:
		s = strings.TrimSpace(x)
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return time.UnixMilli(t.UnixMilli()).UTC(), true
		}
	default:
		return time.Time{}, false
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, false
	}
	return millisFloat(f)
}

// millisFloat converts fractional milliseconds, refusing values no int64 can hold.
func millisFloat(f float64) (time.Time, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 9e18 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(f)).UTC(), true
}

// sortedKeys returns obj's keys in order, so that walks over maps are deterministic.
func sortedKeys(obj map[string]any) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// excerpt renders a decoded value for a message: short, single-line, valid UTF-8.
func excerpt(v any) string {
	s, ok := scalarString(v)
	if !ok || v == nil {
		return jsonKind(v)
	}
	if _, isString := v.(string); isString {
		return strconv.Quote(truncate(s, 64))
	}
	return truncate(s, 64)
}

// truncate shortens s to at most n runes, marking the cut with an ellipsis, and makes it
// valid UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// textLength counts s in UTF-16 code units, as Chatra (JavaScript) does.
func textLength(s string) int {
	n := 0
	for _, r := range s {
		if l := utf16.RuneLen(r); l > 0 {
			n += l
		} else {
			n++
		}
	}
	return n
}

// SplitText cuts text into pieces that each fit in one message (at most MaxMessageLength
// UTF-16 code units), for callers of SendMessage with longer texts. It prefers to cut after
// a blank line, then after a line break, then after a space, within the second half of a
// piece, and otherwise cuts between two code points. Pieces keep every character, so
// joining them gives text back, except that pieces holding only white space are dropped.
// It returns nil for a text that is empty or only white space.
func SplitText(text string) []string {
	var out []string
	for text != "" {
		piece := text
		if textLength(text) > MaxMessageLength {
			piece = text[:cutPoint(text, MaxMessageLength)]
		}
		if strings.TrimSpace(piece) != "" {
			out = append(out, piece)
		}
		text = text[len(piece):]
	}
	return out
}

// cutPoint returns the byte offset at which to end the next piece of text, whose length
// exceeds limit UTF-16 code units.
func cutPoint(text string, limit int) int {
	n, end := 0, 0 // end: the byte offset after the last rune that fits
	for end < len(text) {
		r, size := utf8.DecodeRuneInString(text[end:])
		l := utf16.RuneLen(r)
		if l < 1 {
			l = 1
		}
		if n+l > limit {
			break
		}
		n += l
		end += size
	}
	if end == 0 { // cannot happen for limit >= 2, but never loop forever
		_, size := utf8.DecodeRuneInString(text)
		return size
	}
	window := text[:end]
	floor := end / 2
	for _, sep := range []string{"\n\n", "\n", " "} {
		if i := strings.LastIndex(window, sep); i >= 0 && i+len(sep) >= floor {
			return i + len(sep)
		}
	}
	return end
}
