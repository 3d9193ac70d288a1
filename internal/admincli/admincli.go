// Package admincli is `chatrabridge integrations`: the admin API (api/admin.go) from the
// command line. It only speaks HTTP to a running API, so it works against any deployment
// the admin token opens.
package admincli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatrabridge/chatrabridge/api"
)

// DefaultURL is the admin API's address when neither --url nor CHATRABRIDGE_URL is set.
const DefaultURL = "http://localhost:8080"

// Timeout bounds one call to the admin API (a verify makes several rate-limited Planfix
// calls, so it is generous).
const Timeout = 2 * time.Minute

// Command returns the `integrations` command and its subcommands. getenv supplies the
// defaults of --url (CHATRABRIDGE_URL) and --token (ADMIN_TOKEN, or the file named by
// ADMIN_TOKEN_FILE); os.Getenv in production. Output goes to the command's
// OutOrStdout. Every failure is returned as an error of one line; an error answer of the
// API reads "<code>: <message> (field <field>)".
func Command(getenv func(string) string) *cobra.Command {
	o := &options{getenv: getenv}
	cmd := &cobra.Command{
		Use:   "integrations",
		Short: "Create, list, show, update, delete, verify integrations, rotate their webhook tokens, list their waiting chats",
		Long: `Manages integrations through the admin API of a running chatrabridge (api, serve or dev).

The API is reached at --url (default $CHATRABRIDGE_URL, else ` + DefaultURL + `) with the bearer
token --token (default $ADMIN_TOKEN, else the content of $ADMIN_TOKEN_FILE; ` + "`chatrabridge dev`" + `
prints it and keeps it in .chatrabridge/admin-token).

Secrets (the Chatra secret key, the Planfix token) are write-only: the API never shows them,
only whether they are set. Prefer --chatra-secret-key-file, --planfix-token-file or
--from-file to keep them out of your shell history.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.url, "url", "", "admin API base `url` (default $CHATRABRIDGE_URL or "+DefaultURL+")")
	pf.StringVar(&o.token, "token", "", "admin `token` (default $ADMIN_TOKEN or the file $ADMIN_TOKEN_FILE)")
	pf.BoolVar(&o.json, "json", false, "print the API's JSON answer instead of a table")
	cmd.AddCommand(createCmd(o), listCmd(o), showCmd(o), updateCmd(o), deleteCmd(o), rotateCmd(o), verifyCmd(o))
	cmd.AddCommand(waitingCmd(o))
	return cmd
}

type options struct {
	getenv func(string) string
	url    string
	token  string
	json   bool
	// lastBody is the last successful answer, for commands that judge it after printing.
	lastBody []byte
}

// client resolves --url and --token.
func (o *options) client() (*client, error) {
	base := o.url
	if base == "" {
		base = strings.TrimSpace(o.getenv("CHATRABRIDGE_URL"))
	}
	if base == "" {
		base = DefaultURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not an http(s) URL such as %s", base, DefaultURL)
	}
	token := o.token
	if token == "" {
		token = strings.TrimSpace(o.getenv("ADMIN_TOKEN"))
	}
	if file := strings.TrimSpace(o.getenv("ADMIN_TOKEN_FILE")); token == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("ADMIN_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, errors.New("no admin token: set --token or ADMIN_TOKEN (`chatrabridge dev` prints it and keeps it in .chatrabridge/admin-token)")
	}
	return &client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: Timeout}}, nil
}

// client calls the admin API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *APIError) Error() string {
	s := e.Code + ": " + oneLine(e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.Status == http.StatusUnauthorized {
		s += "; check --token or ADMIN_TOKEN"
	}
	return s
}

// do sends a request and returns the answer's body; an error answer becomes *APIError.
func (c *client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the admin API at %s: %v (is chatrabridge running there? set --url or CHATRABRIDGE_URL)", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return b, nil
	}
	var eb api.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		return nil, &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field}
	}
	return nil, fmt.Errorf("%s %s answered %s, not the admin API's JSON (is --url right?): %s",
		method, c.base+path, resp.Status, excerpt(b))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func excerpt(b []byte) string {
	s := oneLine(string(b))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// printJSON writes an answer indented.
func printJSON(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		_, err = w.Write(b)
		return err
	}
	out.WriteByte('\n')
	_, err := out.WriteTo(w)
	return err
}

func idPath(id string, suffix ...string) string {
	return "/api/v1/integrations/" + url.PathEscape(id) + strings.Join(suffix, "")
}

func createCmd(o *options) *cobra.Command {
	var f fieldFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an integration and print its webhook URLs",
		Long: `Creates an integration from the field flags and/or --from-file (a JSON object as the API
takes it; flags override the file). Required: --name, --chatra-public-key, --chatra-secret-key,
--planfix-account-url, --planfix-token, --task-template-id, --contact-template-id.
--completed-status-id may be left out: it is then resolved from Planfix.

The answer holds the webhook URLs with their tokens: they are shown only now (and by
rotate-tokens). Put the Chatra URL into Chatra (Settings, Integrations, Webhooks) and the
Planfix URL into the Planfix scenario.`,
		Example: `  chatrabridge integrations create --name "Example shop" \
    --chatra-public-key PUB --chatra-secret-key-file chatra.key \
    --planfix-account-url https://example.planfix.com --planfix-token-file planfix.token \
    --task-template-id 101 --contact-template-id 7 --assignee-user-ids 5 --employee-user-ids 5,6
  chatrabridge integrations create --from-file shop.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := f.body(cmd, true)
			if err != nil {
				return err
			}
			if body == nil {
				body = map[string]any{} // the API then names the first required field
			}
			return o.run(cmd, http.MethodPost, "/api/v1/integrations", body, printIntegration)
		},
	}
	f.register(cmd, true)
	return cmd
}

func updateCmd(o *options) *cobra.Command {
	var f fieldFlags
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change the given fields of an integration (the others stay as they are)",
		Long: `Changes only the fields given by flags and/or --from-file (a JSON object of the fields to
change). A secret changes only when given. --employee-user-ids "" allows every employee;
--assignee-user-ids "" removes the extra assignees. --completed-status-id 0 resolves the
completed status from Planfix again (as does a new --task-template-id without it).`,
		Example: `  chatrabridge integrations update shop --send-as-employee --late-reply-window 48h
  chatrabridge integrations update shop --planfix-token-file new.token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := f.body(cmd, false)
			if err != nil {
				return err
			}
			if len(body) == 0 {
				return errors.New("nothing to update: give at least one field flag or --from-file (see --help)")
			}
			return o.run(cmd, http.MethodPatch, idPath(args[0]), body, printIntegration)
		},
	}
	f.register(cmd, false)
	return cmd
}

func listCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the integrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, http.MethodGet, "/api/v1/integrations", nil, printList)
		},
	}
}

func showCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an integration's settings (secrets only as set or not set)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, http.MethodGet, idPath(args[0]), nil, printIntegration)
		},
	}
}

func deleteCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an integration (its webhooks stop working; running conversation workflows are left alone)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), http.MethodDelete, idPath(args[0]), nil); err != nil {
				return err
			}
			if o.json {
				b, _ := json.Marshal(map[string]any{"id": args[0], "deleted": true})
				return printJSON(cmd.OutOrStdout(), b)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted integration %s.\n", args[0])
			return nil
		},
	}
}

func rotateCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-tokens ID",
		Short: "Replace both webhook tokens; the old URLs stop working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, http.MethodPost, idPath(args[0], "/rotate-tokens"), nil, printRotated)
		},
	}
}

func verifyCmd(o *options) *cobra.Command {
	var deep bool
	cmd := &cobra.Command{
		Use:   "verify ID",
		Short: "Check the stored credentials against Chatra and Planfix, and list the templates; --deep tries every call the bridge makes",
		Long: `Calls Chatra and Planfix with the integration's stored credentials and reports each check:
the Chatra API keys, the Planfix token, the task and contact templates and the completed
status. Lists the templates and statuses to choose from. It only reads.

With --deep it then tries, on the customer's own Planfix, every call the bridge makes: it
finds or creates a test contact (` + api.SelfCheckEmail + `), creates a test task
("Chatrabridge self-check ...") with the contact as assigner and reads it back, adds a
comment as the contact and reads it, completes the task, and checks that sourceObjectId
comes back; and it names the Chatra agent replies go as. It prints what each finding
means for the bridge and stores the findings on the integration (the workflow uses
them). Planfix's API deletes neither tasks nor contacts: the test task is left completed,
and later runs use the same test contact again.

Exits non-zero when a check fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res api.VerifyResult
			path := idPath(args[0], "/verify")
			if deep {
				path += "?deep=true"
			}
			err := o.run(cmd, http.MethodPost, path, nil, func(w io.Writer, b []byte) error {
				if err := json.Unmarshal(b, &res); err != nil {
					return err
				}
				return printVerify(w, res)
			})
			if err != nil {
				return err
			}
			if o.json {
				_ = json.Unmarshal(o.lastBody, &res)
			}
			if !res.OK {
				failed := 0
				for _, c := range res.Checks {
					if !c.OK {
						failed++
					}
				}
				return fmt.Errorf("verify: %d of %d checks failed", failed, len(res.Checks))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&deep, "deep", false, "also try every call the bridge makes, on a test contact and a test task in Planfix, and store what was found")
	return cmd
}

// run calls the API and prints the answer, as JSON with --json.
func (o *options) run(cmd *cobra.Command, method, path string, body any, print func(io.Writer, []byte) error) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	if body != nil {
		if m, ok := body.(map[string]any); ok && m == nil {
			body = nil
		}
	}
	b, err := c.do(cmd.Context(), method, path, body)
	if err != nil {
		return err
	}
	o.lastBody = b
	if o.json {
		return printJSON(cmd.OutOrStdout(), b)
	}
	return print(cmd.OutOrStdout(), b)
}

// intList parses "5,6" (spaces allowed); "" is the empty list.
func intList(flag, s string) ([]int64, error) {
	out := []int64{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a whole number (give ids like 5,6)", flag, part)
		}
		out = append(out, n)
	}
	return out, nil
}
