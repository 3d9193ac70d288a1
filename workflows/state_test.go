package workflows

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"

	"github.com/chatrabridge/chatrabridge/internal/codec"
)

// Every phase written by this release reads back as itself, and the v0.1.0 flags written
// beside it describe the same phase to a worker of v0.1.0 (a rolling deploy).
func TestCarriedPhaseRoundTripsThroughV0Flags(t *testing.T) {
	for _, tc := range []struct {
		phase  Phase
		reason string
		ep     int
		want   v0Lifecycle
	}{
		{PhaseWaiting, "", 0, v0Lifecycle{}},
		{PhaseSettingUp, "", 1, v0Lifecycle{Started: true}},
		{PhaseSettingUp, CloseReasonChatClosed, 1, v0Lifecycle{Started: true, CloseRequested: true}},
		{PhaseOpen, "", 1, v0Lifecycle{Started: true, EpisodeReady: true}},
		{PhaseClosing, CloseReasonIdle, 1, v0Lifecycle{Started: true, EpisodeReady: true, CloseRequested: true}},
		{PhaseClosed, CloseReasonChatClosed, 1, v0Lifecycle{Started: true, EpisodeReady: true}},
	} {
		in := Carried{Phase: tc.phase, State: State{Status: tc.phase.status(), CloseReason: tc.reason, Episode: tc.ep}}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var flags v0Lifecycle
		if err := json.Unmarshal(b, &flags); err != nil {
			t.Fatal(err)
		}
		if flags != tc.want {
			t.Errorf("%s (%q): v0 flags %+v, want %+v", tc.phase, tc.reason, flags, tc.want)
		}
		var out Carried
		if err := json.Unmarshal(b, &out); err != nil || out.Phase != tc.phase {
			t.Errorf("%s: read back as %s (%v)", tc.phase, out.Phase, err)
		}
		// What a run of v0.1.0 would carry (no phase) reads as the same phase.
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delete(m, "phase")
		b, _ = json.Marshal(m)
		out = Carried{}
		if err := json.Unmarshal(b, &out); err != nil || out.Phase != tc.phase {
			t.Errorf("%s without its phase: read as %s (%v)", tc.phase, out.Phase, err)
		}
	}
}

// Nothing the conversation keeps is lost at continue-as-new: every field of Carried,
// set, survives a trip through JSON.
func TestCarriedKeepsEveryField(t *testing.T) {
	in := Carried{Phase: PhaseClosing}
	fill(t, reflect.ValueOf(&in).Elem(), "Carried")
	in.Phase = PhaseClosing
	in.State.Status = StatusOpen
	for _, k := range []string{"signal:a", "message:b"} {
		in.SeenKeys.add(k)
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Carried
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip lost something:\n in  %+v\n out %+v", in, out)
	}
}

// fill sets every settable field under v to a non-zero value, failing on a kind it does
// not know (so that a new kind of field is looked at).
func fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)))
			return
		}
		if v.Type() == reflect.TypeFor[keySet]() {
			return // filled by the caller through add
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s: an unexported field would not be carried", path, f.Name)
			}
			fill(t, v.Field(i), path+"."+f.Name)
		}
	case reflect.String:
		v.SetString("x-" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(t, s.Index(0), path+"[0]")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v-"+path))
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), path)
		v.Set(p)
	default:
		t.Fatalf("%s: fill does not know %s", path, v.Kind())
	}
}

// The carried states in the recorded histories (written by earlier releases) read with a
// phase that agrees with their status, and keep their keys and queued work.
func TestRecordedCarriedStatesRead(t *testing.T) {
	dc := RecordedDataConverter(t)
	n, encrypted := 0, 0
	err := filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, e := range h.Events {
			for _, in := range []*commonpb.Payloads{
				e.GetWorkflowExecutionStartedEventAttributes().GetInput(),
				e.GetWorkflowExecutionContinuedAsNewEventAttributes().GetInput(),
			} {
				if len(in.GetPayloads()) == 0 {
					continue
				}
				// Through the codec: the histories recorded with encryption on hold the
				// input encrypted.
				var ci ConversationInput
				if err := dc.FromPayload(in.GetPayloads()[0], &ci); err != nil {
					t.Errorf("%s: input does not decode: %v", path, err)
					continue
				}
				if ci.Carried == nil {
					continue
				}
				n++
				if string(in.GetPayloads()[0].GetMetadata()[codec.MetadataEncoding]) == codec.EncodingEncrypted {
					encrypted++
				}
				cr := ci.Carried
				if cr.Phase == "" || cr.Phase.status() != cr.State.Status {
					t.Errorf("%s: carried phase %q, status %q", path, cr.Phase, cr.State.Status)
				}
				if len(cr.SeenKeys.keys()) == 0 {
					t.Errorf("%s: carried no seen keys", path)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no recorded history carries a state: the continue-as-new history is missing")
	}
	if encrypted == 0 || encrypted == n {
		t.Errorf("%d of the %d carried states were recorded encrypted: want states both in clear and encrypted", encrypted, n)
	}
}

// jsonStringBytes counts a string's bytes exactly as encoding/json writes them, whatever
// the string holds.
func TestJSONStringBytes(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "line\nbreak\r\ttab", "\x00\x01\x1f\x7f", "<b>&amp;</b>",
		"Привет 👋", "\u2028\u2029", "\xff\xfe bad \xc3", strings.Repeat("é<", 1000)} {
		b, _ := json.Marshal(s)
		if got := jsonStringBytes(s); got != len(b) {
			t.Errorf("jsonStringBytes(%q) = %d, encoding/json writes %d", s, got, len(b))
		}
	}
}

// carriedBytes never counts less than the payload continue-as-new would carry, and not
// much more: the workflow waits on it to bound that payload.
func TestCarriedBytesBoundsThePayload(t *testing.T) {
	hostile := strings.Repeat("<\x00\xff\u2028\"", 300)
	st := Carried{Phase: PhaseOpen, State: State{TaskID: 7, ChatID: "c"}, Visitor: VisitorInfo{Name: "Ivan <b>", Email: "i@example.com"}}
	for i := range 300 {
		st.SeenKeys.add(fmt.Sprintf("m:%d", i))
		m := Message{ID: fmt.Sprintf("M%d", i), Type: MessageTypeClient, Text: hostile, Time: time.Unix(int64(i), 5), AgentName: "Anna & co"}
		if i%3 == 0 {
			m.Text = strings.Repeat("plain text ", 40)
		}
		st.Pending = append(st.Pending, m)
		st.NextChat.Messages = append(st.NextChat.Messages, m)
		st.Replies = append(st.Replies, ReplySignal{Key: fmt.Sprintf("r:%d", i), CommentID: int64(i), TaskID: 7, Text: hostile, AuthorName: "A", AuthorEmail: "a@b"})
	}
	in := ConversationInput{IntegrationID: "i", ChatID: "c", Carried: &st}
	exact, counted := payloadSize(in), carriedBytes(in)
	if counted < exact || counted > exact+exact/10 {
		t.Errorf("carriedBytes = %d, the payload is %d bytes: want at least that, at most 10%% more", counted, exact)
	}
	if len(st.Pending) != 300 || len(st.SeenKeys.order) != 300 {
		t.Error("carriedBytes changed the state it measured")
	}
}
