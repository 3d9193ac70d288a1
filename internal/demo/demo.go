// Package demo plays a scripted chat against a running `chatrabridge dev` stack, through
// the same doors Chatra and Planfix use: the bridge's webhook endpoints, with the sandbox
// standing in for both services. It backs `chatrabridge demo`, and `make demo-check` runs
// it in CI: Run returns nil only when the chat became a Planfix task with the visitor's
// messages as comments, an employee's reply reached the visitor in Chatra, and the task
// was completed when the chat ended.
//
// Every run uses new chat, visitor and message ids (and a new e-mail address), so it can
// run any number of times against the same stack.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/temporalclient"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// DefaultTimeout bounds a whole run when Options.Timeout is zero. The sandbox keeps
// Planfix's limit of one request a second, so a chat takes a few seconds per step.
const DefaultTimeout = 2 * time.Minute

// DefaultUIURL is the Temporal Web UI's address when DemoWebhooksFile does not name one.
const DefaultUIURL = "http://127.0.0.1:8233"

// ResultFile is the file, in the data directory, where Run writes the Result of its last
// run as JSON (for `make ui-check`, which looks the conversation up in the Web UI).
const ResultFile = "demo-last.json"

// Options configure Run.
type Options struct {
	// DataDir is the data directory of the dev stack: Run reads app.DemoWebhooksFile
	// there and writes ResultFile.
	DataDir string
	// Timeout bounds the whole run; 0 means DefaultTimeout.
	Timeout time.Duration
	// Out receives the progress and the report; nil means os.Stdout.
	Out io.Writer
}

// Result is what one run produced, as ResultFile holds it.
type Result struct {
	WorkflowID    string `json:"workflowId"`
	RunID         string `json:"runId,omitempty"`
	ChatID        string `json:"chatId"`
	ClientID      string `json:"clientId"`
	CustomerName  string `json:"customerName"`
	CustomerEmail string `json:"customerEmail"`
	// CustomerMessage is the customer's first message as they typed it: in Temporal it
	// is encrypted, and the Web UI shows it only through the codec server.
	CustomerMessage string `json:"customerMessage"`
	Summary         string `json:"summary,omitempty"` // the conversation's static summary in the Web UI
	TaskID          int64  `json:"taskId,omitempty"`
	UIURL           string `json:"uiUrl"`         // the Web UI's base URL
	WorkflowURL     string `json:"workflowUrl"`   // the conversation in the Web UI
	ReplyReceived   string `json:"replyReceived"` // what the customer read in the chat
	Passed          bool   `json:"passed"`
}

// StepError is how a run fails: the step that did not happen, and why.
type StepError struct {
	Step string // as the progress lines name it
	Err  error
}

func (e *StepError) Error() string {
	return "demo failed at step " + strconv.Quote(e.Step) + ": " + e.Err.Error()
}

func (e *StepError) Unwrap() error { return e.Err }

// Step names, in the order a run takes them. The four that the demo exists to show are
// StepTask, StepComments, StepReply and StepCompleted.
const (
	StepReady      = "the dev stack is ready"
	StepCard       = "visitor card seeded in the sandbox Chatra"
	StepStarted    = "chatStarted webhook"
	StepFragment1  = "chatFragment webhook: first message"
	StepFragment2  = "chatFragment webhook: second message"
	StepIntroduce  = "chatFragment webhook: the visitor introduces themselves"
	StepTask       = "the task was created in the sandbox Planfix"
	StepComments   = "the visitor's messages are comments in the task"
	StepEmployee   = "an employee answered in the task; Planfix webhook called"
	StepReply      = "the reply reached the visitor in the sandbox Chatra"
	StepTranscript = "chatTranscript webhook"
	StepCompleted  = "the task was completed"
)

// Run plays the chat and prints, to o.Out, each step as it happens, then the resulting
// task with its comments, the message the visitor received, and the conversation's link
// in the Web UI. It returns nil only when every step happened; otherwise a *StepError
// naming the first step that did not, after printing what the workflow reports about
// itself (its "state" query, pending activities, last failure) to help find out why. It
// also writes the Result to ResultFile in o.DataDir. A missing or unreadable
// app.DemoWebhooksFile is an error saying to start `chatrabridge dev` first.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	dev, err := readDevFile(o.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	tc, dc, err := dialTemporal(ctx, dev, o.DataDir)
	if err != nil {
		return nil, err
	}
	defer tc.Close()

	r := newRun(dev, tc, o)
	r.dc = dc
	res, err := r.play(ctx)
	if err != nil {
		r.diagnose()
	}
	if res != nil && o.DataDir != "" {
		data, _ := json.MarshalIndent(res, "", "  ") // plain values: cannot fail
		if werr := os.WriteFile(filepath.Join(o.DataDir, ResultFile), append(data, '\n'), 0o644); werr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", ResultFile, werr)
		}
	}
	return res, err
}

// readDevFile reads what `dev` wrote about the demo integration.
func readDevFile(dataDir string) (*app.DevDemo, error) {
	file := filepath.Join(dataDir, app.DemoWebhooksFile)
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: start `chatrabridge dev` (with the sandbox) first, or point --data-dir at its data directory", file)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var d app.DevDemo
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s is not what `chatrabridge dev` writes: %w", file, err)
	}
	if d.ChatraWebhookURL == "" || d.PlanfixWebhookURL == "" || d.SandboxURL == "" {
		return nil, fmt.Errorf("%s lacks the webhook or sandbox URLs: restart `chatrabridge dev`", file)
	}
	if d.ID == "" {
		d.ID = app.DemoIntegrationID
	}
	if d.UIURL == "" {
		d.UIURL = DefaultUIURL
	}
	return &d, nil
}

// dialTemporal connects to the Temporal server the file names, else to the one the
// environment names (TEMPORAL_ADDRESS, as the temporal CLI reads it).
// It decodes what the workflows encrypted with the dev stack's payload keys.
func dialTemporal(ctx context.Context, dev *app.DevDemo, dataDir string) (client.Client, converter.DataConverter, error) {
	opts, err := temporalclient.Options()
	if err != nil {
		return nil, nil, err
	}
	keys, err := devPayloadKeys(dataDir)
	if err != nil {
		return nil, nil, err
	}
	codec.Apply(&opts, codec.New(keys, false))
	if dev.TemporalAddress != "" {
		opts.HostPort, opts.Namespace = dev.TemporalAddress, dev.Namespace
	}
	if opts.HostPort == "" {
		opts.HostPort = client.DefaultHostPort
	}
	opts.Logger = sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)) // the demo reports problems itself
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach Temporal at %s: is `chatrabridge dev` running? (%w)", opts.HostPort, err)
	}
	return c, opts.DataConverter, nil
}

// devPayloadKeys are the payload keys of the dev stack: PAYLOAD_KEY or SECRETS_KEY as
// `dev` reads them, else the secrets key `dev` generated in its data directory.
func devPayloadKeys(dataDir string) (*codec.Keys, error) {
	payloadKey, secretsKey := os.Getenv("PAYLOAD_KEY"), os.Getenv("SECRETS_KEY")
	if payloadKey == "" && secretsKey == "" {
		b, err := os.ReadFile(filepath.Join(dataDir, "secrets.key"))
		if err != nil {
			return nil, fmt.Errorf("the dev stack's payload keys: set PAYLOAD_KEY or SECRETS_KEY as `chatrabridge dev` has them (%w)", err)
		}
		secretsKey = strings.TrimSpace(string(b))
	}
	return codec.ParseKeys(payloadKey, secretsKey)
}

// newRunID returns a short id unique to this run: the time in base 36 and 4 random hex
// digits.
func newRunID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}

// workflowURL is the conversation's page in the Web UI.
func workflowURL(uiURL, namespace, workflowID string) string {
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	return strings.TrimRight(uiURL, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
}

// apiBase is the bridge's base URL, taken from a webhook URL (".../webhooks/...").
func apiBase(webhookURL string) string {
	if i := strings.Index(webhookURL, "/webhooks/"); i >= 0 {
		return webhookURL[:i]
	}
	return webhookURL
}

// conversationID is the workflow id of the chat on the demo integration.
func conversationID(dev *app.DevDemo, chatID string) string {
	return workflows.ConversationWorkflowID(dev.ID, chatID)
}
