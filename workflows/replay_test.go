package workflows

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge/internal/codec"
)

// Every history recorded in testdata replays against the current ConversationWorkflow:
// testdata/<release>/*.json were recorded by `make histories RELEASE=<release>` from
// real runs on the embedded Temporal server, with the code of that release (the
// e2e tests; testdata/releases.txt names each release's commit), and the three at the
// top of testdata before releases had names. Conversations live for days, so a deploy
// must replay what the previous releases left running. A change that makes one of these
// histories fail is not deterministic for running conversations: version it with
// workflow.GetVersion. The histories are append-only (TestHistoryManifest): never
// record one again to make it pass.
//
// They replay through the encrypting converters of the bridge's workers (internal/codec)
// with the test key of testdata/PAYLOAD_KEY, which the e2e tests encrypt with: the
// histories recorded before encryption hold clear payloads, which the codec passes
// through (so conversations that started before encryption go on under it); those
// recorded since hold encrypted ones.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := histories("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata: record them with make histories RELEASE=...")
	}
	dc := RecordedDataConverter(t)
	encrypted, clear := 0, 0
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			file := filepath.Join("testdata", filepath.FromSlash(rel))
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, encryptedEncoding) {
				encrypted++
			} else {
				clear++
			}
			r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: dc, FailureConverter: codec.FailureConverter(dc),
			})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflowWithOptions(ConversationWorkflow, workflow.RegisterOptions{Name: ConversationWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), file); err != nil {
				t.Fatalf("replay %s: %v", file, err)
			}
		})
	}
	// Both kinds of conversation are running somewhere: those that started before
	// encryption was on (clear payloads) and those since (encrypted).
	t.Logf("replayed %d histories with encrypted payloads and %d in clear", encrypted, clear)
	if encrypted == 0 || clear == 0 {
		t.Errorf("the recorded histories hold %d with encrypted payloads and %d in clear: the replay test must cover both", encrypted, clear)
	}
}

// encryptedEncoding is how an encrypted payload's metadata reads in a history's JSON:
// the value of its "encoding" key, codec.EncodingEncrypted, in base64.
var encryptedEncoding = []byte(base64.StdEncoding.EncodeToString([]byte(codec.EncodingEncrypted)))

// RecordedDataConverter is the data converter of the recorded histories: the codec with
// the test key of testdata/PAYLOAD_KEY (never a real installation's key).
func RecordedDataConverter(t *testing.T) converter.DataConverter {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "PAYLOAD_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := codec.ParseKeys(strings.TrimSpace(string(b)), "")
	if err != nil {
		t.Fatal(err)
	}
	return codec.DataConverter(codec.New(keys, true))
}
