package workflows

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/chatrabridge/chatrabridge"
)

// Phase is where a conversation's current episode (one chat, one task) stands. Every
// change of phase goes through conversation.setPhase, which keeps State.Status (the
// ConversationStatus search attribute) in step:
//
//	waiting ──chat event──▶ setting-up ──task known──▶ open ──chat closed or idle──▶ closing
//	   │                        ▲                        (closing at once if the chat      │
//	   │                        │                         closed during the setup)         │
//	   │                        └──────new chat in the late-reply window──── closed ◀──────┘
//	   └──no chat event within the late-reply window──▶ ended ◀──window over── closed
//
// and cancelled from any phase (an admin's cancel). A run that continues as new after it
// ended (work came at the last moment) resumes as closed, or as waiting or setting-up
// when it never had a chat.
type Phase string

// The phases, in the order of an episode's life.
const (
	// PhaseWaiting: no chat event yet (a run started by a reply, or not yet signalled).
	PhaseWaiting Phase = "waiting"
	// PhaseSettingUp: a chat event came; the contact and the task are being found or
	// created. A chat that closes meanwhile is noted (State.CloseReason) and the episode
	// goes straight to closing once its task is known.
	PhaseSettingUp Phase = "setting-up"
	// PhaseOpen: the task is known; messages go into it, replies into the chat.
	PhaseOpen Phase = "open"
	// PhaseClosing: the chat closed, or was idle for the idle timeout: its last
	// messages go into the task, then the task is completed.
	PhaseClosing Phase = "closing"
	// PhaseClosed: the task is completed; late replies are still sent (the late-reply
	// window), and a new chat begins the next episode.
	PhaseClosed Phase = "closed"
	// PhaseEnded: the late-reply window passed; the workflow completes.
	PhaseEnded Phase = "ended"
	// PhaseCancelled: an admin cancelled the workflow.
	PhaseCancelled Phase = "cancelled"
)

// status is the ConversationStatus of a phase.
func (p Phase) status() chatrabridge.ConversationStatus {
	switch p {
	case PhaseClosed:
		return StatusClosed
	case PhaseEnded:
		return StatusEnded
	case PhaseCancelled:
		return StatusCancelled
	default:
		return StatusOpen
	}
}

// Carried is the conversation's whole durable state: the workflow keeps it in one field
// and continue-as-new passes that field to the next run as it is, so nothing can be
// forgotten at the switch. What the workflow keeps beside it (timers of the reorder
// window, activities in flight, what was last published) belongs to one run.
type Carried struct {
	Phase   Phase       `json:"phase"`
	State   State       `json:"state"`
	Visitor VisitorInfo `json:"visitor"`
	// SeenKeys de-duplicates deliveries, messages and replies, and knows the comments
	// the bridge wrote (bounded: MaxSeenKeys, the oldest forgotten first).
	SeenKeys       keySet        `json:"seenKeys"`
	Pending        []Message     `json:"pending,omitempty"` // for the current episode's task
	Replies        []ReplySignal `json:"replies,omitempty"` // to send into the chat, in order
	NextChat                     // a chat begun after the current one closed
	ContactChanges               // what the visitor told to write onto the contact card
	// TaskJoined says the current task was not created by this conversation: it is the
	// active task of the contact the visitor's email (or Chatra visitor) belongs to.
	TaskJoined bool `json:"taskJoined,omitempty"`
	// ClaimUnverified says the task was joined on an email the visitor typed, which the
	// store did not verify (SaveConversationResult.RepliesElsewhere): the task's replies
	// go to another chat, and the contact's card is not this visitor's to change.
	ClaimUnverified bool `json:"claimUnverified,omitempty"`
	// ContactClaimed says the conversation's contact was found only by the email the
	// visitor typed (EnsureContactResult.Claimed): the card is not this visitor's to
	// change, and the task says the claim is not verified.
	ContactClaimed bool    `json:"contactClaimed,omitempty"`
	Waiting        Waiting `json:"waiting,omitzero"` // the customer's wait for an answer
}

// NextChat is a chat that began while the current episode was closing or closed: it
// becomes the next episode once the current one is closed.
type NextChat struct {
	Begun    bool      `json:"newEpisode,omitempty"`
	Messages []Message `json:"nextPending,omitempty"`
	Closed   bool      `json:"closeNext,omitempty"` // it has closed too
}

// ContactChanges says what is still to be written onto the contact card.
type ContactChanges struct {
	Dirty        bool `json:"contactDirty,omitempty"` // name, email or phone changed
	EmailChanged bool `json:"emailChanged,omitempty"` // the email may belong to another contact
}

// closeRequested reports whether the current episode is to close: it is closing, or its
// chat closed while it was being set up.
func (s *Carried) closeRequested() bool {
	return s.Phase == PhaseClosing || (s.Phase == PhaseSettingUp && s.State.CloseReason != "")
}

// over reports whether the last episode is closed (or the conversation ended).
func (s *Carried) over() bool {
	return s.Phase == PhaseClosed || s.Phase == PhaseEnded
}

// closing reports whether the current chat is over or closing: a new visitor message or
// chat start then begins a new episode.
func (s *Carried) closing() bool {
	return s.over() || s.closeRequested()
}

// taskReady reports whether the current episode's task is known: from open on, until a
// new episode begins. A conversation that ended without a chat (episode 0) has none.
func (s *Carried) taskReady() bool {
	switch s.Phase {
	case PhaseOpen, PhaseClosing, PhaseClosed:
		return true
	case PhaseEnded:
		return s.State.Episode > 0
	}
	return false
}

// v0Lifecycle is how release v0.1.0 carried the phase, as flags. It is still written, so
// that a worker of v0.1.0 that takes up a run during a rolling deploy reads where the
// conversation stands, and it is read from a run of v0.1.0 that continued as new (its
// carried state has no phase).
type v0Lifecycle struct {
	Started        bool `json:"started,omitempty"`
	EpisodeReady   bool `json:"episodeReady,omitempty"`
	CloseRequested bool `json:"closeRequested,omitempty"`
}

// carriedJSON is Carried without its JSON methods.
type carriedJSON Carried

// MarshalJSON writes the state with the v0.1.0 flags beside the phase.
func (s Carried) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		carriedJSON
		v0Lifecycle
	}{carriedJSON(s), v0Lifecycle{
		Started:        s.Phase != PhaseWaiting,
		EpisodeReady:   s.taskReady(),
		CloseRequested: s.closeRequested(),
	}})
}

// UnmarshalJSON reads the state; one without a phase (v0.1.0's) gets it from its flags.
func (s *Carried) UnmarshalJSON(b []byte) error {
	var w struct {
		carriedJSON
		v0Lifecycle
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Carried(w.carriedJSON)
	if s.Phase == "" {
		s.Phase = phaseOfV0(s.State, w.v0Lifecycle)
	}
	return nil
}

// phaseOfV0 is the phase that v0.1.0's status and flags describe.
func phaseOfV0(st State, f v0Lifecycle) Phase {
	switch st.Status {
	case StatusClosed:
		return PhaseClosed
	case StatusEnded:
		return PhaseEnded
	case StatusCancelled:
		return PhaseCancelled
	}
	switch {
	case !f.Started:
		return PhaseWaiting
	case !f.EpisodeReady:
		return PhaseSettingUp // a close requested meanwhile is in st.CloseReason
	case f.CloseRequested:
		return PhaseClosing
	}
	return PhaseOpen
}

// keySet is a set of strings that keeps at most max of them (MaxSeenKeys when zero),
// forgetting the oldest first. Its JSON is the list of its keys, oldest first. The zero
// value is an empty set bounded by MaxSeenKeys.
type keySet struct {
	order []string
	set   map[string]bool
	max   int
}

func newKeySet(max int) *keySet { return &keySet{max: max} }

func (s *keySet) has(k string) bool { return s.set[k] }

// add records k and reports whether it was new.
func (s *keySet) add(k string) bool {
	if s.set[k] {
		return false
	}
	if s.set == nil {
		s.set = map[string]bool{}
	}
	s.set[k] = true
	s.order = append(s.order, k)
	if max := cmp.Or(s.max, MaxSeenKeys); len(s.order) > max {
		delete(s.set, s.order[0])
		s.order = slices.Delete(s.order, 0, 1)
	}
	return true
}

func (s *keySet) keys() []string { return slices.Clone(s.order) }

func (s keySet) MarshalJSON() ([]byte, error) { return json.Marshal(s.order) }

func (s *keySet) UnmarshalJSON(b []byte) error {
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	*s = keySet{}
	for _, k := range keys {
		s.add(k)
	}
	return nil
}
