package chatra

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseWebhook checks that no body makes ParseWebhook panic, that it either fails with
// an *InputError or returns a webhook that keeps its promises, that whatever parses also
// normalises (Visitor, EventKey), and that a parsed webhook survives a JSON round trip with
// the same messages, visitor and key. Its seeds live in testdata/fuzz/FuzzParseWebhook and
// run with every go test.
func FuzzParseWebhook(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := ParseWebhook(body)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not an *InputError: %v", err, err)
			}
			if ie.Message == "" {
				t.Fatalf("InputError without a message: %+v", ie)
			}
			if w != nil {
				t.Fatalf("ParseWebhook returned a webhook with an error")
			}
			return
		}
		switch w.EventName {
		case EventChatStarted, EventChatFragment, EventChatTranscript:
		default:
			t.Fatalf("EventName %q accepted", w.EventName)
		}
		if strings.TrimSpace(w.Client.ID) == "" || strings.TrimSpace(w.Client.ChatID) == "" {
			t.Fatalf("accepted a client without ids: %+v", w.Client)
		}
		seen := map[string]bool{}
		for i, m := range w.Messages {
			if strings.TrimSpace(m.ID) == "" || seen[m.ID] {
				t.Fatalf("message %d has an empty or repeated id %q", i, m.ID)
			}
			seen[m.ID] = true
		}
		if len(w.Warnings) > maxWarnings {
			t.Fatalf("%d warnings, over the bound of %d", len(w.Warnings), maxWarnings)
		}

		v := w.Visitor()
		if v.ClientID != strings.TrimSpace(w.Client.ID) {
			t.Fatalf("Visitor.ClientID = %q, card id %q", v.ClientID, w.Client.ID)
		}
		if len(v.Pages) > maxPages || len(v.Extra) > maxExtra {
			t.Fatalf("Visitor over its limits: %d pages, %d extras", len(v.Pages), len(v.Extra))
		}
		key := w.EventKey()
		if !eventKeyRE.MatchString(key) {
			t.Fatalf("EventKey = %q", key)
		}

		again := roundTrip(t, w)
		if got := again.EventKey(); got != key {
			t.Fatalf("EventKey changed by a JSON round trip: %q, then %q", key, got)
		}
		if got := again.Visitor(); !reflect.DeepEqual(got, v) {
			t.Fatalf("Visitor changed by a JSON round trip:\n%+v\n%+v", v, got)
		}
		if len(again.Messages) != len(w.Messages) {
			t.Fatalf("%d messages after a JSON round trip, %d before", len(again.Messages), len(w.Messages))
		}
		for i, m := range w.Messages {
			a := again.Messages[i]
			if a.ID != m.ID || a.Text != m.Text || a.Type != m.Type || !a.CreatedAt.Equal(m.CreatedAt) ||
				a.AgentID != m.AgentID || a.AgentName != m.AgentName || a.ReceivedFrom != m.ReceivedFrom {
				t.Fatalf("message %d changed by a JSON round trip:\n%#v\n%#v", i, m, a)
			}
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("Visitor does not encode: %v", err)
		}
	})
}
