package demo

import (
	"html"
	"regexp"
	"strconv"
	"strings"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

// findTask returns the task numbered id in the snapshot, or nil.
func findTask(st *sandbox.State, id int64) *sandbox.PlanfixTaskState {
	if st == nil {
		return nil
	}
	for i := range st.Planfix.Tasks {
		if st.Planfix.Tasks[i].ID == id {
			return &st.Planfix.Tasks[i]
		}
	}
	return nil
}

// findContact returns the contact a "contact:N" reference names, or nil.
func findContact(st *sandbox.State, ref string) *sandbox.PlanfixContactState {
	n, ok := strings.CutPrefix(ref, "contact:")
	if !ok {
		return nil
	}
	id, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return nil
	}
	for i := range st.Planfix.Contacts {
		if st.Planfix.Contacts[i].ID == id {
			return &st.Planfix.Contacts[i]
		}
	}
	return nil
}

// sandboxUsers are the employees the sandbox Planfix is seeded with.
var sandboxUsers = map[string]string{
	"user:" + strconv.Itoa(sandbox.PlanfixRobotUserID): "Bridge Robot (the bridge)",
	"user:5": "Anna Petrova (employee)",
	"user:6": "Boris Ivanov (employee)",
}

// ownerName names a Planfix person reference ("contact:3", "user:5").
func ownerName(st *sandbox.State, ref string) string {
	if c := findContact(st, ref); c != nil {
		return strings.TrimSpace(c.Name+" "+c.Lastname) + " (contact #" + strconv.FormatInt(c.ID, 10) + ")"
	}
	if n, ok := sandboxUsers[ref]; ok {
		return n
	}
	return ref
}

func messageTexts(msgs []chatra.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Text
	}
	return out
}

// missingTexts returns the texts that no comment of the task contains (as text, HTML
// and line breaks undone); all of them when task is nil.
func missingTexts(task *sandbox.PlanfixTaskState, texts []string) []string {
	if task == nil {
		return texts
	}
	var all strings.Builder
	for _, c := range task.Comments {
		all.WriteString(normalizeSpace(htmlToText(c.Description)))
		all.WriteString("\n")
	}
	var missing []string
	for _, t := range texts {
		if !strings.Contains(all.String(), normalizeSpace(t)) {
			missing = append(missing, t)
		}
	}
	return missing
}

var (
	reBreak = regexp.MustCompile(`(?i)<br\s*/?>|</p>|</li>|</div>`)
	reTag   = regexp.MustCompile(`<[^>]*>`)
)

// htmlToText turns Planfix's comment HTML into text: line breaks for <br>, paragraphs
// and list items, tags dropped, entities decoded.
func htmlToText(s string) string {
	s = reBreak.ReplaceAllString(s, "\n")
	s = reTag.ReplaceAllString(s, "")
	return strings.TrimSpace(html.UnescapeString(s))
}

// normalizeSpace collapses every run of white space to one space.
func normalizeSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// oneLine is s on one line, cut to 300 characters.
func oneLine(s string) string {
	s = normalizeSpace(s)
	if r := []rune(s); len(r) > 300 {
		return string(r[:299]) + "…"
	}
	return s
}

// indent prefixes every line of s, and ends it with a line break.
func indent(s, prefix string) string {
	if s == "" {
		return prefix + "(empty)\n"
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
