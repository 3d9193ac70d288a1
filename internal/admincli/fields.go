package admincli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatrabridge/chatrabridge"
)

type fieldKind int

const (
	kindString fieldKind = iota
	kindInt
	kindIntList
	kindBool
	kindDuration
	kindWorkingHours
)

// field is one flag of create/update and the JSON path it sets in the request body.
type field struct {
	flag, path, usage string
	kind              fieldKind
	createOnly        bool
}

// fields are the flags for every field of an integration (the API's JSON names in usage).
var fields = []field{
	{flag: "id", path: "id", usage: "the integration's `id` (letters, digits, - and _; default: generated)", createOnly: true},
	{flag: "name", path: "name", usage: "`name`, such as the site's (required)"},
	{flag: "chatra-api-url", path: "chatra.apiUrl", usage: "Chatra API origin `url` (default https://app.chatra.io)"},
	{flag: "chatra-public-key", path: "chatra.publicKey", usage: "Chatra public API `key` (required)"},
	{flag: "chatra-secret-key", path: "chatra.secretKey", usage: "Chatra secret API `key` (required; see --chatra-secret-key-file)"},
	{flag: "chatra-agent-id", path: "chatra.agentId", usage: "`id` of the Chatra agent the bridge writes as (else --chatra-agent-email and --chatra-agent-name)"},
	{flag: "chatra-agent-email", path: "chatra.agentEmail", usage: "`email` of the Chatra user the bridge writes as"},
	{flag: "chatra-agent-name", path: "chatra.agentName", usage: "`name` the bridge writes under in Chatra (default: --name)"},
	{flag: "planfix-account-url", path: "planfix.accountUrl", usage: "Planfix account `url`, such as https://example.planfix.com (required)"},
	{flag: "planfix-token", path: "planfix.token", usage: "Planfix REST API `token` (required; see --planfix-token-file)"},
	{flag: "task-template-id", path: "planfix.taskTemplateId", kind: kindInt, usage: "`id` of the Planfix task template for new chats (required)"},
	{flag: "contact-template-id", path: "planfix.contactTemplateId", kind: kindInt, usage: "`id` of the Planfix contact template for new customers (required)"},
	{flag: "completed-status-id", path: "planfix.completedStatusId", kind: kindInt, usage: "`id` of the task status when a chat ends (default: resolved from Planfix)"},
	{flag: "assignee-user-ids", path: "planfix.assigneeUserIds", kind: kindIntList, usage: "Planfix user `ids` added as assignees to each task, such as 5,6"},
	{flag: "employee-user-ids", path: "planfix.employeeUserIds", kind: kindIntList, usage: "Planfix user `ids` allowed to reply in chats, such as 5,6 (empty: everyone)"},
	{flag: "new-task-only-if-no-active-task", path: "options.newTaskOnlyIfNoActiveTask", kind: kindBool, usage: "attach a new chat to the contact's active task instead of creating one"},
	{flag: "send-as-employee", path: "options.sendAsEmployee", kind: kindBool, usage: "send replies to the chat under the employee's own name"},
	{flag: "late-reply-window", path: "options.lateReplyWindow", kind: kindDuration, usage: "how long replies still reach a closed chat, a `duration` such as 72h (default 72h)"},
	{flag: "idle-timeout", path: "options.idleTimeout", kind: kindDuration, usage: "a silent chat closes itself after this `duration`, such as 24h (default 24h)"},
	{flag: "trust-email-claims", path: "options.trustEmailClaims", kind: kindBool, usage: "take an email typed into the chat as proof: a chat that joins a contact's task by it receives the task's replies"},
	{flag: "new-conversations-per-minute", path: "options.newConversationsPerMinute", kind: kindInt, usage: "new chats the Chatra webhook takes a minute, a `number` (default 30; beyond it 429)"},
	{flag: "max-held-replies", path: "options.maxHeldReplies", kind: kindInt, usage: "Planfix replies held for tasks without a conversation, a `number` (default 500)"},
	// The first-response target (firstresponse.go in the root package).
	{flag: "first-response-target", path: "options.firstResponse.target", kind: kindDuration, usage: "remind the task's assignees when a customer's message has waited this `duration` for an answer, such as 5m (0: no reminders)"},
	{flag: "reminder-interval", path: "options.firstResponse.reminderInterval", kind: kindDuration, usage: "remind again after this `duration`, such as 15m (0: remind once)"},
	{flag: "max-reminders", path: "options.firstResponse.maxReminders", kind: kindInt, usage: "at most this `number` of reminders per wait (0: 3 with --reminder-interval, else 1)"},
	{flag: "working-hours", path: "options.firstResponse.workingHours", kind: kindWorkingHours, usage: "the clock of the first-response target runs only in these `hours`, such as \"mon-fri 09:00-18:00 Europe/Riga\" (\"\": always)"},
}

// fieldFlags holds the values of the field flags of one command.
type fieldFlags struct {
	strings       map[string]*string
	bools         map[string]*bool
	fromFile      string
	chatraKeyFile string
	planfixFile   string
}

func (f *fieldFlags) register(cmd *cobra.Command, create bool) {
	f.strings, f.bools = map[string]*string{}, map[string]*bool{}
	fl := cmd.Flags()
	for _, fd := range fields {
		if fd.createOnly && !create {
			continue
		}
		if fd.kind == kindBool {
			f.bools[fd.flag] = fl.Bool(fd.flag, false, fd.usage+" (--"+fd.flag+"=false to turn off)")
		} else {
			f.strings[fd.flag] = fl.String(fd.flag, "", fd.usage)
		}
	}
	fl.StringVar(&f.fromFile, "from-file", "", "read the fields from a JSON `file` as the API takes it (- for stdin); flags override it")
	fl.StringVar(&f.chatraKeyFile, "chatra-secret-key-file", "", "read the Chatra secret key from this `file`")
	fl.StringVar(&f.planfixFile, "planfix-token-file", "", "read the Planfix token from this `file`")
}

// body builds the request body: the --from-file object, then every flag given. It is
// nil when nothing is given. Values the API would refuse for their form (a number, a
// list, a duration) are refused here, naming the flag.
func (f *fieldFlags) body(cmd *cobra.Command, create bool) (map[string]any, error) {
	var body map[string]any
	if f.fromFile != "" {
		var err error
		if body, err = readObject(cmd, f.fromFile); err != nil {
			return nil, err
		}
	}
	setPath := func(path string, v any) {
		if body == nil {
			body = map[string]any{}
		}
		m := body
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	changed := cmd.Flags().Changed
	for _, fd := range fields {
		if (fd.createOnly && !create) || !changed(fd.flag) {
			continue
		}
		switch fd.kind {
		case kindBool:
			setPath(fd.path, *f.bools[fd.flag])
		case kindString:
			setPath(fd.path, *f.strings[fd.flag])
		case kindInt:
			s := strings.TrimSpace(*f.strings[fd.flag])
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--%s: %q is not a whole number", fd.flag, s)
			}
			setPath(fd.path, n)
		case kindIntList:
			ids, err := intList(fd.flag, *f.strings[fd.flag])
			if err != nil {
				return nil, err
			}
			setPath(fd.path, ids)
		case kindDuration:
			s := strings.TrimSpace(*f.strings[fd.flag])
			if _, err := time.ParseDuration(s); err != nil {
				return nil, fmt.Errorf("--%s: %q is not a duration (use e.g. 72h or 30m)", fd.flag, s)
			}
			setPath(fd.path, s)
		case kindWorkingHours:
			s := strings.TrimSpace(*f.strings[fd.flag])
			if s == "" || strings.EqualFold(s, "always") {
				setPath(fd.path, map[string]any{}) // the API removes them
				break
			}
			w, err := chatrabridge.ParseWorkingHours(s)
			if err != nil {
				return nil, fmt.Errorf("--%s: %v", fd.flag, err)
			}
			setPath(fd.path, map[string]any{"timeZone": w.TimeZone, "days": w.Days, "from": w.From, "to": w.To})
		}
	}
	for _, sf := range []struct{ fileFlag, file, flag, path string }{
		{"chatra-secret-key-file", f.chatraKeyFile, "chatra-secret-key", "chatra.secretKey"},
		{"planfix-token-file", f.planfixFile, "planfix-token", "planfix.token"},
	} {
		if sf.file == "" {
			continue
		}
		if changed(sf.flag) {
			return nil, fmt.Errorf("set --%s or --%s, not both", sf.flag, sf.fileFlag)
		}
		b, err := os.ReadFile(sf.file)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", sf.fileFlag, err)
		}
		setPath(sf.path, strings.TrimSpace(string(b)))
	}
	return body, nil
}

// readObject reads a JSON object from a file, or stdin for "-". Numbers stay exact.
func readObject(cmd *cobra.Command, name string) (map[string]any, error) {
	var (
		b   []byte
		err error
	)
	if name == "-" {
		b, err = io.ReadAll(cmd.InOrStdin())
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("--from-file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("--from-file %s: not a JSON object (write it as the API takes it: {\"name\": ..., \"chatra\": {...}, \"planfix\": {...}, \"options\": {...}})", name)
	}
	if dec.More() {
		return nil, fmt.Errorf("--from-file %s: more than one JSON value", name)
	}
	return m, nil
}
