package workflows

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Publishing to the Web UI: the search attributes operators find a conversation by, the
// current details (status, task link, counts, the last error), and the summaries that
// make the history read like the conversation.

// published is what was last upserted as search attributes and current details.
type published struct {
	integration, chat, client, email, name, status string
	task                                           int64
	details                                        string
	waiting                                        time.Time
}

// readPublished takes in the search attributes the start (or the run before) set, so
// that they are not upserted again.
func (c *conversation) readPublished(ctx workflow.Context) {
	sa, p := workflow.GetTypedSearchAttributes(ctx), &c.published
	p.integration, _ = sa.GetKeyword(SAIntegration)
	p.chat, _ = sa.GetKeyword(SAChatID)
	p.client, _ = sa.GetKeyword(SAClientID)
	p.email, _ = sa.GetKeyword(SAEmail)
	p.name, _ = sa.GetKeyword(SAName)
	p.status, _ = sa.GetKeyword(SAStatus)
	p.task, _ = sa.GetInt64(SATaskID)
	p.waiting, _ = sa.GetTime(SAWaitingSince)
}

// publish upserts the search attributes that changed and the current details.
func (c *conversation) publish(ctx workflow.Context) {
	p, s := &c.published, &c.st.State
	var up []temporal.SearchAttributeUpdate
	keyword := func(key temporal.SearchAttributeKeyKeyword, last *string, v string) {
		v = TruncateBytes(v, 255)
		if v != "" && v != *last {
			up = append(up, key.ValueSet(v))
			*last = v
		}
	}
	keyword(SAIntegration, &p.integration, s.IntegrationID)
	keyword(SAChatID, &p.chat, s.ChatID)
	keyword(SAClientID, &p.client, s.ClientID)
	// Hashed or off (CUSTOMER_SEARCH), the customer's email and name are set by the
	// start alone. Settings recorded before CustomerSearch existed are "": clear, as
	// then, so recorded histories upsert what they did.
	if cs := c.settings.CustomerSearch; cs == "" || cs == "clear" {
		keyword(SAEmail, &p.email, s.CustomerEmail)
		keyword(SAName, &p.name, s.CustomerName)
	}
	keyword(SAStatus, &p.status, string(s.Status))
	if t := s.TaskID; t != 0 && t != p.task {
		up = append(up, SATaskID.ValueSet(t))
		p.task = t
	}
	up = append(up, c.publishWaiting(ctx)...)
	if len(up) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, up...); err != nil {
			workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		}
	}
	if d := c.details(); d != p.details {
		workflow.SetCurrentDetails(ctx, d)
		p.details = d
	}
}

// details is the conversation's current details for the Web UI (markdown).
func (c *conversation) details() string {
	s := c.st.State
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**", s.Status)
	if s.Episode > 0 {
		fmt.Fprintf(&b, " · episode %d", s.Episode)
	}
	switch {
	case s.TaskID != 0 && s.TaskURL != "":
		fmt.Fprintf(&b, " · [task #%d](%s)", s.TaskID, s.TaskURL)
	case s.TaskID != 0:
		fmt.Fprintf(&b, " · task #%d", s.TaskID)
	}
	// Markdown: what a visitor typed (a name, an email) is escaped, never markup or a link.
	if who := strings.Trim(EscapeMarkdown(s.CustomerName)+" · "+EscapeMarkdown(s.CustomerEmail), " ·"); who != "" {
		fmt.Fprintf(&b, "\n\n%s", who)
	}
	fmt.Fprintf(&b, "\n\n%d message(s) received, %d added to the task; %d reply(ies) sent", s.MessagesReceived, s.MessagesAdded, s.RepliesSent)
	if s.RepliesFailed > 0 {
		fmt.Fprintf(&b, ", %d not sent", s.RepliesFailed)
	}
	if n := len(c.st.Pending) + len(c.st.NextChat.Messages); n > 0 {
		fmt.Fprintf(&b, "; %d message(s) waiting", n)
	}
	if w := c.waitingDetails(); w != "" {
		fmt.Fprintf(&b, "\n\n%s", w)
	}
	if s.LastError != "" {
		fmt.Fprintf(&b, "\n\nLast error: %s", EscapeMarkdown(oneLine(s.LastError, 300)))
	}
	return b.String()
}

// markdownEscaper escapes what makes Markdown markup: emphasis, code, links, images,
// HTML, tables, strike-through, and the backslash itself.
var markdownEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`,
	`<`, `\<`, `>`, `\>`, `~`, `\~`, `|`, `\|`,
)

// MaxSummaryBytes bounds a summary (the static summary of a conversation, an activity's
// summary): Temporal documents summaries as at most 200 bytes, and a server may refuse
// a longer one.
const MaxSummaryBytes = 200

// CutSummary cuts an escaped (EscapeMarkdown) summary to MaxSummaryBytes without
// splitting a character or leaving an escape without what it escapes.
func CutSummary(s string) string {
	if len(s) <= MaxSummaryBytes {
		return s
	}
	s = TruncateBytes(s, MaxSummaryBytes-len("…"))
	if n := len(s) - len(strings.TrimRight(s, `\`)); n%2 == 1 {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// EscapeMarkdown returns s with every character that Markdown would read as markup
// escaped (and a heading or list mark at its start): the Temporal Web UI renders
// summaries and current details as Markdown, and a customer's name or message must
// show as typed, never as a link, an image or a heading.
func EscapeMarkdown(s string) string {
	s = markdownEscaper.Replace(s)
	if s != "" && strings.ContainsRune("#-+=", rune(s[0])) {
		s = `\` + s
	}
	return s
}

// commentsSummary is the Web UI's summary of an AddComments call: its first message,
// and how many more it carries.
func commentsSummary(batch []Message) string {
	m := batch[0]
	summary := "comment: " + m.Text
	if m.Type != MessageTypeClient {
		summary = "comment: " + agentLabel(m) + " in Chatra: " + m.Text
	}
	if len(batch) > 1 {
		summary = oneLine(summary, 80) + fmt.Sprintf(" (+%d more)", len(batch)-1)
	}
	return summary
}

func agentLabel(m Message) string {
	if n := strings.TrimSpace(m.AgentName); n != "" {
		return "Agent " + n
	}
	return "an agent"
}

// oneLine collapses white space and cuts s to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// truncateBytes cuts s to at most n bytes without splitting a UTF-8 sequence.
func TruncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
