package workflows

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/activities"
)

// Signals in: the receive coroutine, the handlers (they only record: the lanes and the
// lifecycle act), and de-duplication by key.

// receive takes signals in as they come. It waits on the channels' lengths rather than
// in a Selector: a Selector blocked on a channel takes a value sent to it into its own
// pending branch, where the root's drain (before continue-as-new) could not see it; the
// value would then be handled after the root had already decided, and be lost to the
// next run. Waiting this way leaves every value in its channel until it is received.
func (c *conversation) receive(ctx workflow.Context) {
	channels := c.signalChannels(ctx)
	for {
		if err := workflow.Await(ctx, func() bool {
			if c.stopping {
				return false
			}
			for _, ch := range channels {
				if ch.Len() > 0 {
					return true
				}
			}
			return false
		}); err != nil {
			return
		}
		c.drain(ctx)
	}
}

func (c *conversation) signalChannels(ctx workflow.Context) []workflow.ReceiveChannel {
	return []workflow.ReceiveChannel{
		workflow.GetSignalChannel(ctx, SignalVisitorInfo),
		workflow.GetSignalChannel(ctx, SignalMessage),
		workflow.GetSignalChannel(ctx, SignalChatClosed),
		workflow.GetSignalChannel(ctx, SignalReply),
	}
}

// drain takes in every signal delivered and not yet received, in a fixed order of the
// signal names (a chat's card before its messages, its messages before its close).
// A payload that does not decode is logged by the SDK and dropped.
func (c *conversation) drain(ctx workflow.Context) {
	ch := c.signalChannels(ctx)
	for {
		n := 0
		var v VisitorInfoSignal
		for ch[0].ReceiveAsync(&v) {
			c.onVisitorInfo(ctx, v)
			v, n = VisitorInfoSignal{}, n+1
		}
		var m MessageSignal
		for ch[1].ReceiveAsync(&m) {
			c.onMessage(ctx, m)
			m, n = MessageSignal{}, n+1
		}
		var cl ChatClosedSignal
		for ch[2].ReceiveAsync(&cl) {
			c.onChatClosed(ctx, cl)
			cl, n = ChatClosedSignal{}, n+1
		}
		var r ReplySignal
		for ch[3].ReceiveAsync(&r) {
			c.onReply(ctx, r)
			r, n = ReplySignal{}, n+1
		}
		if n == 0 {
			return
		}
	}
}

// firstDelivery records a delivery key and reports whether it is new; an empty key is
// always new.
func (c *conversation) firstDelivery(key string) bool {
	return key == "" || c.st.SeenKeys.add("signal:"+key)
}

// touch notes activity: it restarts the idle timer.
func (c *conversation) touch(ctx workflow.Context, clientID string) {
	c.seq++
	c.st.State.LastActivity = workflow.Now(ctx)
	if c.st.State.ClientID == "" && clientID != "" {
		c.st.State.ClientID = clientID
	}
}

// chatEvent notes that a chat event came (a message, the visitor's card, the chat's
// close): a conversation waiting for its first chat sets it up. One that ended without
// a chat remembers it, in case it continues as new (resumePhase).
func (c *conversation) chatEvent() {
	switch {
	case c.st.Phase == PhaseWaiting:
		c.setPhase(PhaseSettingUp)
	case c.st.Phase == PhaseEnded && c.st.State.Episode == 0:
		c.chatAfterEnd = true
	}
}

func (c *conversation) onMessage(ctx workflow.Context, s MessageSignal) {
	if !c.firstDelivery(s.Key) {
		return
	}
	c.touch(ctx, s.ClientID)
	if s.Visitor != nil {
		c.mergeVisitor(*s.Visitor)
	}
	for _, m := range s.Messages {
		c.addMessage(ctx, m, false)
	}
	c.chatEvent()
	c.publish(ctx)
}

func (c *conversation) onVisitorInfo(ctx workflow.Context, s VisitorInfoSignal) {
	if !c.firstDelivery(s.Key) {
		return
	}
	c.touch(ctx, s.ClientID)
	c.mergeVisitor(s.Visitor)
	if s.Started && c.st.closing() {
		c.st.NextChat.Begun = true
	}
	c.chatEvent()
	c.publish(ctx)
}

func (c *conversation) onChatClosed(ctx workflow.Context, s ChatClosedSignal) {
	if !c.firstDelivery(s.Key) {
		return
	}
	c.touch(ctx, s.ClientID)
	c.mergeVisitor(s.Visitor)
	for _, m := range s.Transcript {
		if c.addMessage(ctx, m, true) {
			c.st.State.TranscriptAdded++
		}
	}
	c.stopWaiting() // the chat closed: nobody waits in it any more
	switch {
	case c.st.NextChat.Begun:
		c.st.NextChat.Closed = true // the chat that closed is the one begun after the last close
	case c.st.Phase == PhaseOpen:
		c.setPhase(PhaseClosing)
		c.st.State.CloseReason = CloseReasonChatClosed
	case (c.st.Phase == PhaseWaiting || c.st.Phase == PhaseSettingUp) && c.st.State.CloseReason == "":
		// Closed before its task is known: it closes once the task is (setupEpisode).
		c.st.State.CloseReason = CloseReasonChatClosed
	}
	c.chatEvent()
	c.publish(ctx)
}

func (c *conversation) onReply(ctx workflow.Context, s ReplySignal) {
	key := replyKey(s)
	if key != "" && !c.st.SeenKeys.add(key) {
		return
	}
	if s.CommentID > 0 && c.ownComment(s.CommentID) {
		return // the bridge's own comment: a visitor's message, an agent's, a note
	}
	if s.CommentID <= 0 && strings.TrimSpace(s.Text) == "" {
		c.st.State.LastError = "a reply signal had neither commentId nor text; ignored"
		c.publish(ctx)
		return
	}
	c.touch(ctx, "")
	c.st.Replies = append(c.st.Replies, s)
	c.publish(ctx)
}

// replyKeyStart begins the key of a reply from a Planfix comment, followed by its id.
const replyKeyStart = "planfix-comment:"

// replyKey is the de-duplication key of a reply: its Planfix comment, else its Key.
func replyKey(s ReplySignal) string {
	if s.CommentID > 0 {
		return ReplyKey(s.CommentID)
	}
	if s.Key == "" {
		return ""
	}
	return "reply:" + s.Key
}

func (c *conversation) ownComment(id int64) bool {
	return c.st.SeenKeys.has("own-comment:" + strconv.FormatInt(id, 10))
}

func (c *conversation) markOwnComment(id int64) {
	if id > 0 {
		c.st.SeenKeys.add("own-comment:" + strconv.FormatInt(id, 10))
	}
}

// ownTextKeyStart begins the key of a message the bridge sent, by its content and agent
// (activities.EchoKey), followed by that key.
const ownTextKeyStart = "own-text:"

// ownEcho reports whether m is a message the bridge sent coming back: an agent's message
// with the text of a sent reply (activities.EchoKeysOf), written as the same agent, or
// naming no agent, or sent when the bridge did not know its agent. An agent who types in
// the Chatra app the very text the bridge sent as the same agent is taken for it too: a
// note lost from the task, never a reply posted back into it.
func (c *conversation) ownEcho(m Message) bool {
	if m.Type == MessageTypeClient {
		return false
	}
	has := func(k string) bool { return c.st.SeenKeys.has(ownTextKeyStart + k) }
	textOnly := activities.EchoKey("", m.Text)
	if strings.TrimSpace(m.AgentID) == "" {
		return has(textOnly) || has(activities.EchoAnyAgent+textOnly)
	}
	return has(activities.EchoKey(m.AgentID, m.Text)) || has(textOnly)
}

// markSent records the messages a reply put into the chat (their ids and EchoKeys), so
// that their echoes are not taken for new messages, and drops the echoes that came in
// before the reply's result and still wait for the task.
func (c *conversation) markSent(ctx workflow.Context, r activities.SendReplyResult) {
	ids := map[string]bool{}
	for _, id := range r.MessageIDs {
		if id != "" {
			c.st.SeenKeys.add("message:" + id) // its echo in a webhook is not a new message
			ids[id] = true
		}
	}
	for _, k := range r.EchoKeys {
		c.st.SeenKeys.add(ownTextKeyStart + k)
	}
	echo := func(m Message) bool { return m.Type != MessageTypeClient && (ids[m.ID] || c.ownEcho(m)) }
	if !slices.ContainsFunc(c.st.Pending, echo) && !slices.ContainsFunc(c.st.NextChat.Messages, echo) {
		return
	}
	if !patched(ctx, patchEchoByContent) {
		return
	}
	n := len(c.st.Pending) + len(c.st.NextChat.Messages)
	c.st.Pending = slices.DeleteFunc(c.st.Pending, echo)
	c.st.NextChat.Messages = slices.DeleteFunc(c.st.NextChat.Messages, echo)
	c.st.State.MessagesSkipped += n - len(c.st.Pending) - len(c.st.NextChat.Messages)
}

// addMessage queues a chat message for the task unless it was seen before or the bridge
// sent it, and reports whether it queued it. A visitor's new message after the chat
// closed begins a new episode (so does a transcript's, once the episode is closed).
func (c *conversation) addMessage(ctx workflow.Context, m Message, fromTranscript bool) bool {
	if m.ID == "" {
		m.ID = derivedMessageID(m)
	}
	if !c.st.SeenKeys.add("message:" + m.ID) {
		return false
	}
	c.st.State.MessagesReceived++
	if SentByBridge(m.ReceivedFrom) || (c.ownEcho(m) && patched(ctx, patchEchoByContent)) {
		c.st.State.MessagesSkipped++
		return false
	}
	if strings.TrimSpace(m.Text) == "" {
		m.Text = textWithoutText
	}
	if m.Time.IsZero() {
		m.Time = workflow.Now(ctx)
	}
	c.noteChatMessage(ctx, m, fromTranscript)
	next := &c.st.NextChat
	if m.Type == MessageTypeClient && !next.Begun {
		if c.st.over() || (c.st.closeRequested() && !fromTranscript) {
			next.Begun = true
		}
	}
	now := workflow.Now(ctx)
	c.lastMessageAt = now
	if next.Begun {
		if len(next.Messages) == 0 {
			c.nextSince = now
		}
		next.Messages = append(next.Messages, m)
	} else {
		if len(c.st.Pending) == 0 {
			c.pendingSince = now
		}
		c.st.Pending = append(c.st.Pending, m)
	}
	return true
}

// derivedMessageID identifies a message that came without an id by its content.
func derivedMessageID(m Message) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%s", m.Type, m.Time.UnixMilli(), m.Text)
	return fmt.Sprintf("derived-%016x", h.Sum64())
}

// mergeVisitor takes in what the card now says. A changed name, email or phone marks the
// contact card for an update once the conversation has a contact (before, the contact is
// found or created with them).
func (c *conversation) mergeVisitor(v VisitorInfo) {
	old := c.st.Visitor
	set := func(dst *string, src string) {
		if s := strings.TrimSpace(src); s != "" {
			*dst = s
		}
	}
	n := &c.st.Visitor
	set(&n.Name, v.Name)
	set(&n.Email, v.Email)
	set(&n.Phone, v.Phone)
	set(&n.City, v.City)
	set(&n.Country, v.Country)
	set(&n.Source, v.Source)
	set(&n.Device, v.Device)
	set(&n.OS, v.OS)
	set(&n.Browser, v.Browser)
	set(&n.IP, v.IP)
	if len(v.Pages) > 0 {
		n.Pages = slices.Clone(v.Pages)
	}
	for _, k := range slices.Sorted(maps.Keys(v.Extra)) {
		if n.Extra == nil {
			n.Extra = map[string]string{}
		}
		n.Extra[k] = v.Extra[k]
	}
	emailChanged := !strings.EqualFold(old.Email, n.Email)
	if c.st.State.ContactID != 0 && (old.Name != n.Name || emailChanged || old.Phone != n.Phone) {
		c.st.ContactChanges.Dirty = true
		c.st.ContactChanges.EmailChanged = c.st.ContactChanges.EmailChanged || emailChanged
	}
	c.st.State.CustomerName, c.st.State.CustomerEmail = n.Name, n.Email
}
