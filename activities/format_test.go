package activities

import (
	"strings"
	"testing"
	"time"
)

func TestHTMLToText(t *testing.T) {
	for in, want := range map[string]string{
		"<p>Hello&nbsp;<b>Ivan</b>,</p><p>line 2</p>":          "Hello Ivan,\nline 2",
		"one<br>two<br/>three<BR />four":                       "one\ntwo\nthree\nfour",
		"<ul><li>a</li><li>b</li></ul>":                        "- a\n- b",
		"plain\ntext with a < b and &amp;":                     "plain\ntext with a < b and &",
		"<div>x</div>\n\n\n<div></div><div></div><div>y</div>": "x\n\ny",
		"<!-- note -->only":                                    "only",
		"   ":                                                  "",
	} {
		if got := HTMLToText(in); got != want {
			t.Errorf("HTMLToText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTaskCommentsGrouping(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 9, 5, 0, 0, time.UTC)
	msgs := []ChatMessage{
		{ID: "A1", Type: "agent", Text: "Hello!", Time: t0, AgentName: "Julia"},
		{ID: "A2", Type: "agent", Text: "One moment.", Time: t0.Add(time.Minute), AgentName: "Oleg"},
		{ID: "M1", Type: "client", Text: "ok", Time: t0.Add(2 * time.Minute)},
		{ID: "A3", Type: "agent", Text: "Found it.", Time: t0.Add(3 * time.Minute)},
	}
	for i := range MaxMessagesPerComment + 1 {
		msgs = append(msgs, ChatMessage{ID: "B" + strings.Repeat("x", i+1), Type: "client", Text: "m", Time: t0.Add(time.Hour)})
	}
	got := taskComments(AddCommentsInput{IntegrationID: "shop", ChatID: "C", TaskID: 1, ContactID: 9, Messages: msgs})
	if len(got) != 5 {
		t.Fatalf("%d comments, want 5 (agents, visitor, agent, %d visitor, 1 visitor)", len(got), MaxMessagesPerComment)
	}
	want0 := "Agents in Chatra:<br>[09:05 UTC] Julia: Hello!<br>[09:06 UTC] Oleg: One moment."
	if got[0].Description != want0 || got[0].Owner != "" {
		t.Errorf("comment 0 = %q by %q, want %q by the bridge", got[0].Description, got[0].Owner, want0)
	}
	if got[1].Description != "ok" || got[1].Owner != "contact:9" {
		t.Errorf("comment 1 = %q by %q", got[1].Description, got[1].Owner)
	}
	if got[2].Description != "An agent in Chatra: Found it." {
		t.Errorf("comment 2 = %q", got[2].Description)
	}
	if n := strings.Count(got[3].Description, "<br>") + 1; n != MaxMessagesPerComment {
		t.Errorf("comment 3 has %d lines, want %d", n, MaxMessagesPerComment)
	}
	ids := map[string]bool{}
	for _, c := range got {
		ids[c.SourceObjectID] = true
	}
	if len(ids) != len(got) {
		t.Error("two comments share a sourceObjectId")
	}
	again := taskComments(AddCommentsInput{IntegrationID: "shop", ChatID: "C", TaskID: 1, ContactID: 9, Messages: msgs})
	for i := range got {
		if got[i].SourceObjectID != again[i].SourceObjectID {
			t.Error("sourceObjectIds are not deterministic")
		}
	}
}

func TestCustomerNameAndTaskName(t *testing.T) {
	if got := customerName(Visitor{Name: "  Ivan \n Petrov "}, "V1"); got != "Ivan Petrov" {
		t.Errorf("name = %q", got)
	}
	if got := customerName(Visitor{Email: "a@b.c"}, "V1"); got != "a@b.c" {
		t.Errorf("email = %q", got)
	}
	if got := customerName(Visitor{}, "vfg1y4h4ioapl1cx"); got != "Chatra visitor vfg1y4h4" {
		t.Errorf("anonymous = %q", got)
	}
	if got := TaskName("Ivan", "Example shop"); got != "Chat with Ivan on Example shop" {
		t.Errorf("task name = %q", got)
	}
}
