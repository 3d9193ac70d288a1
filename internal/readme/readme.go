// Package readme reads the command examples README.md marks for the tests, so that the
// commands and JSON payloads the README shows are exactly what the tests run.
//
// A marked example is a fenced code block right after a line
//
//	<!-- readme-test: NAME -->
//
// (blank lines may come between). Its commands are shell commands in a small subset of
// sh: words, 'single-quoted' and "double-quoted" strings, backslash-newline
// continuations, and # comments. Anything else (variables, pipes, redirections, ;) is
// refused, so a marked command always means what it says.
package readme

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Block is one marked example.
type Block struct {
	Name string
	Line int    // of the opening fence, 1-based
	Text string // between the fences
}

var markRE = regexp.MustCompile(`^<!--\s*readme-test:\s*([A-Za-z0-9_.-]+)\s*-->\s*$`)

// Blocks returns the marked examples of the Markdown file at path, in order. It fails
// when a marker is not followed by a fenced block, or a name is used twice.
func Blocks(path string) ([]Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseBlocks(path, string(data))
}

func parseBlocks(path, doc string) ([]Block, error) {
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	var out []Block
	seen := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		m := markRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		name := m[1]
		if seen[name] {
			return nil, fmt.Errorf("%s:%d: readme-test %q is marked twice", path, i+1, name)
		}
		seen[name] = true
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[j]), "```") {
			return nil, fmt.Errorf("%s:%d: readme-test %q is not followed by a fenced code block", path, i+1, name)
		}
		open := strings.TrimSpace(lines[j])
		fence := open[:len(open)-len(strings.TrimLeft(open, "`"))]
		k := j + 1
		for k < len(lines) && strings.TrimSpace(lines[k]) != fence {
			k++
		}
		if k >= len(lines) {
			return nil, fmt.Errorf("%s:%d: the code block of readme-test %q is not closed", path, j+1, name)
		}
		out = append(out, Block{Name: name, Line: j + 1, Text: strings.Join(lines[j+1:k], "\n")})
		i = k
	}
	return out, nil
}

// Find returns the block named name.
func Find(blocks []Block, name string) (Block, bool) {
	for _, b := range blocks {
		if b.Name == name {
			return b, true
		}
	}
	return Block{}, false
}

// Command is one shell command of a block: its words, as the shell would pass them.
type Command struct {
	Line int // within the block, 1-based
	Args []string
}

func (c Command) String() string { return strings.Join(c.Args, " ") }

// Flag returns the value of --name (or --name=value) and whether it is there.
func (c Command) Flag(name string) (string, bool) {
	for i, a := range c.Args {
		if a == "--"+name && i+1 < len(c.Args) {
			return c.Args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// Commands splits a block into commands, in order. It fails, naming the line, on shell
// syntax outside the subset the package describes.
func Commands(text string) ([]Command, error) {
	var (
		out   []Command
		words []string
		word  strings.Builder
		in    bool // a word has started (possibly empty: '')
		start int
	)
	flushWord := func() {
		if in {
			words = append(words, word.String())
			word.Reset()
			in = false
		}
	}
	flushCommand := func() {
		flushWord()
		if len(words) > 0 {
			out = append(out, Command{Line: start, Args: words})
			words = nil
		}
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	continued := false
	for sc.Scan() {
		line++
		s := sc.Text()
		if !continued {
			start = line
		}
		continued = false
		for i := 0; i < len(s); i++ {
			ch := s[i]
			switch {
			case ch == ' ' || ch == '\t':
				flushWord()
			case ch == '#' && !in:
				i = len(s) // a comment to the end of the line
			case ch == '\\' && i == len(s)-1:
				continued = true
			case ch == '\\':
				if i+1 < len(s) {
					i++
					word.WriteByte(s[i])
					in = true
				}
			case ch == '\'':
				end := strings.IndexByte(s[i+1:], '\'')
				if end < 0 {
					return nil, fmt.Errorf("line %d: unclosed single quote", line)
				}
				word.WriteString(s[i+1 : i+1+end])
				in = true
				i += end + 1
			case ch == '"':
				j := i + 1
				for ; j < len(s) && s[j] != '"'; j++ {
					switch s[j] {
					case '\\':
						if j+1 < len(s) && strings.IndexByte(`"\$`+"`", s[j+1]) >= 0 {
							j++
						}
					case '$', '`':
						return nil, fmt.Errorf("line %d: %q in a double-quoted string: examples must not depend on the shell", line, s[j])
					}
					word.WriteByte(s[j])
				}
				if j >= len(s) {
					return nil, fmt.Errorf("line %d: unclosed double quote", line)
				}
				in = true
				i = j
			case strings.IndexByte("$`|&;<>(){}*?[", ch) >= 0:
				return nil, fmt.Errorf("line %d: %q: examples must be plain commands, not shell syntax", line, ch)
			default:
				word.WriteByte(ch)
				in = true
			}
		}
		if !continued {
			flushCommand()
		} // else: backslash-newline vanishes; the next line's leading blanks end the word
	}
	if continued {
		return nil, fmt.Errorf("line %d: the last line ends with a continuation", line)
	}
	flushCommand()
	return out, sc.Err()
}
