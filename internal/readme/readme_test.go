package readme

import (
	"slices"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	block := `# a comment
temporal workflow start --task-queue q \
  --workflow-id chatra/shop/CHAT1 --static-summary "Chat with \"Ivan\"" \
  --input '{"a":"b c","d":[1,2]}'   # trailing comment

temporal workflow list --query 'CustomerEmail="ivan@example.com"'
echo a\ b ''`
	cmds, err := Commands(block)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"temporal", "workflow", "start", "--task-queue", "q", "--workflow-id", "chatra/shop/CHAT1", "--static-summary", `Chat with "Ivan"`, "--input", `{"a":"b c","d":[1,2]}`},
		{"temporal", "workflow", "list", "--query", `CustomerEmail="ivan@example.com"`},
		{"echo", "a b", ""},
	}
	if len(cmds) != len(want) {
		t.Fatalf("%d commands: %q", len(cmds), cmds)
	}
	for i := range want {
		if !slices.Equal(cmds[i].Args, want[i]) {
			t.Errorf("command %d = %q, want %q", i, cmds[i].Args, want[i])
		}
	}
	if cmds[0].Line != 2 || cmds[1].Line != 6 {
		t.Errorf("lines %d, %d, want 2, 6", cmds[0].Line, cmds[1].Line)
	}
	if v, ok := cmds[0].Flag("static-summary"); !ok || v != `Chat with "Ivan"` {
		t.Errorf("Flag(static-summary) = %q %v", v, ok)
	}
	if _, ok := cmds[1].Flag("input"); ok {
		t.Error("Flag(input) found on a command without it")
	}
}

// Anything whose meaning depends on the shell is refused, so that a marked example
// means what it says.
func TestCommandsRefuseShellSyntax(t *testing.T) {
	for _, bad := range []string{
		`temporal workflow list --query "$QUERY"`,
		`temporal workflow list | head`,
		`temporal workflow list; rm -rf x`,
		`temporal workflow signal --input {"a":1}`,
		"temporal workflow list --query 'unclosed",
		`temporal workflow list \`,
		"echo `date`",
	} {
		if cmds, err := Commands(bad); err == nil {
			t.Errorf("Commands(%q) = %q, want an error", bad, cmds)
		}
	}
}

func TestParseBlocks(t *testing.T) {
	doc := "# T\n\n<!-- readme-test: one -->\n\n```sh\na 1\n```\n\ntext\n<!-- readme-test: two -->\n````\nb '```'\n````\n"
	blocks, err := parseBlocks("doc.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[0].Name != "one" || blocks[0].Text != "a 1" || blocks[0].Line != 5 ||
		blocks[1].Name != "two" || blocks[1].Text != "b '```'" {
		t.Fatalf("blocks = %+v", blocks)
	}
	if _, ok := Find(blocks, "two"); !ok {
		t.Error("Find(two) failed")
	}
	for _, bad := range []string{
		"<!-- readme-test: x -->\ntext\n```\na\n```\n",
		"<!-- readme-test: x -->\n```\na\n",
		"<!-- readme-test: x -->\n```\na\n```\n<!-- readme-test: x -->\n```\nb\n```\n",
	} {
		if _, err := parseBlocks("doc.md", bad); err == nil || !strings.Contains(err.Error(), "doc.md:") {
			t.Errorf("parseBlocks(%q) = %v, want an error naming the line", bad, err)
		}
	}
}
