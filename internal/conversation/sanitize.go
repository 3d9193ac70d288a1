package conversation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// What a Chatra webhook may put into a conversation. Everything a visitor controls is
// made storable and bounded here, at the edge, before it reaches a workflow: a workflow's
// payloads go to PostgreSQL (which refuses a NUL and invalid UTF-8), to Temporal (which
// refuses a payload over 2 MiB) and to Planfix. Ids the bridge routes by are refused
// instead (400), since changing them would route elsewhere.
const (
	// MaxMessageRunes is the longest message text taken whole (Chatra's own limit on a
	// message it sends); a longer one is cut, with a note saying so.
	MaxMessageRunes = 5000
	// MaxIDBytes bounds a chat or client id.
	MaxIDBytes = 256
	// maxMessageIDBytes bounds a message id as the conversation keeps it (its
	// de-duplication keys are carried from run to run): a longer one is replaced by
	// its digest, the same for every delivery of the message.
	maxMessageIDBytes = 64

	maxNameRunes       = 200
	maxEmailRunes      = 254
	maxPhoneRunes      = 64
	maxDetailRunes     = 200 // city, country, device, OS, browser, IP, an agent's name
	maxSourceRunes     = 500
	maxPages           = 20
	maxPageRunes       = 500
	maxExtra           = 30
	maxExtraKeyRunes   = 100
	maxExtraValueRunes = 300
	maxTagRunes        = 64 // a message's type and receivedFrom
)

// cutNote ends a message text that was cut.
func cutNote(runes int) string {
	return fmt.Sprintf("\n[… cut by chatrabridge: the message has %d characters, the first %d are here; the whole message is in the chat in Chatra]", runes, MaxMessageRunes)
}

// chatIDs checks the ids the webhook routes by: the chat id names the workflow
// (chatra/<integration>/<chat>), and Temporal takes only printable ASCII there; the
// client id is stored and searched by. Each problem is EINVALID naming the field.
func chatIDs(hook *chatra.Webhook) (chatID, clientID string, err error) {
	chatID = strings.TrimSpace(hook.Client.ChatID)
	clientID = strings.TrimSpace(hook.Client.ID)
	if len(chatID) > MaxIDBytes {
		return "", "", chatrabridge.Invalid("client.chatId", "client.chatId is %d bytes long: the bridge accepts chat ids of up to %d", len(chatID), MaxIDBytes)
	}
	for i := 0; i < len(chatID); i++ {
		if chatID[i] < 0x21 || chatID[i] > 0x7e {
			return "", "", chatrabridge.Invalid("client.chatId", "client.chatId must be printable ASCII without spaces (a Chatra chat id is): the conversation's workflow is named after it")
		}
	}
	if len(clientID) > MaxIDBytes {
		return "", "", chatrabridge.Invalid("client.id", "client.id is %d bytes long: the bridge accepts visitor ids of up to %d", len(clientID), MaxIDBytes)
	}
	if !utf8.ValidString(clientID) || strings.IndexFunc(clientID, unicode.IsControl) >= 0 {
		return "", "", chatrabridge.Invalid("client.id", "client.id contains control characters or invalid UTF-8")
	}
	return chatID, clientID, nil
}

// cleanText makes a message text storable: valid UTF-8, line ends as "\n", control
// characters other than newlines and tabs removed, outer space trimmed, and at most
// MaxMessageRunes characters (a longer text is cut, and the cut is said).
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case r == '\n' || r == '\t':
			return r
		case unicode.IsControl(r) || bidiControl(r):
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n > MaxMessageRunes {
		s = strings.TrimSpace(string([]rune(s)[:MaxMessageRunes])) + cutNote(n)
	}
	return s
}

// cleanLine makes a one-line value storable: valid UTF-8, line breaks and tabs as
// spaces, other control characters (and the bidirectional overrides that would make a
// name read otherwise than it is) removed, trimmed, at most max characters.
func cleanLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r) || bidiControl(r):
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		s = strings.TrimSpace(string([]rune(s)[:max]))
	}
	return s
}

// cleanID is cleanLine for an id: at most MaxIDBytes bytes.
func cleanID(s string) string {
	return workflows.TruncateBytes(cleanLine(s, MaxIDBytes), MaxIDBytes)
}

// messageID is cleanLine for a message id: one over maxMessageIDBytes becomes its
// SHA-256 digest (distinct ids stay distinct, a repeated one stays the same).
func messageID(s string) string {
	s = cleanLine(s, MaxIDBytes*4)
	if len(s) <= maxMessageIDBytes {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])[:40]
}

// bidiControl reports whether r is a Unicode bidirectional embedding, override or
// isolate (U+202A..U+202E, U+2066..U+2069).
func bidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// cleanMessage makes a chat message storable and bounded.
func cleanMessage(m workflows.Message) workflows.Message {
	m.ID = messageID(m.ID)
	m.Type = cleanLine(m.Type, maxTagRunes)
	m.Text = cleanText(m.Text)
	m.AgentID = cleanID(m.AgentID)
	m.AgentName = cleanLine(m.AgentName, maxDetailRunes)
	m.ReceivedFrom = cleanLine(m.ReceivedFrom, maxTagRunes)
	return m
}

// cleanVisitor makes a visitor card storable and bounded: every value a line of a
// bounded length, at most maxPages pages and maxExtra other details.
func cleanVisitor(v workflows.VisitorInfo) workflows.VisitorInfo {
	out := workflows.VisitorInfo{
		Name:    cleanLine(v.Name, maxNameRunes),
		Email:   cleanLine(v.Email, maxEmailRunes),
		Phone:   cleanLine(v.Phone, maxPhoneRunes),
		City:    cleanLine(v.City, maxDetailRunes),
		Country: cleanLine(v.Country, maxDetailRunes),
		Source:  cleanLine(v.Source, maxSourceRunes),
		Device:  cleanLine(v.Device, maxDetailRunes),
		OS:      cleanLine(v.OS, maxDetailRunes),
		Browser: cleanLine(v.Browser, maxDetailRunes),
		IP:      cleanLine(v.IP, maxDetailRunes),
	}
	for _, p := range v.Pages {
		if p = cleanLine(p, maxPageRunes); p != "" && !slices.Contains(out.Pages, p) && len(out.Pages) < maxPages {
			out.Pages = append(out.Pages, p)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(v.Extra)) {
		key, val := cleanLine(k, maxExtraKeyRunes), cleanLine(v.Extra[k], maxExtraValueRunes)
		if key == "" || val == "" || len(out.Extra) >= maxExtra {
			continue
		}
		if out.Extra == nil {
			out.Extra = map[string]string{}
		}
		out.Extra[key] = val
	}
	return out
}
