package workflows

import (
	"encoding/base64"
	"log/slog"
	"path/filepath"
	"testing"

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
func TestReplayRecordedHistories(t *testing.T) {
	files, err := histories("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata: record them with make histories RELEASE=...")
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			file := filepath.Join("testdata", filepath.FromSlash(rel))
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(ConversationWorkflow, workflow.RegisterOptions{Name: ConversationWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), file); err != nil {
				t.Fatalf("replay %s: %v", file, err)
			}
		})
	}
}

// The histories written in clear, before payload encryption, replay through the
// encrypting data and failure converters of the bridge's workers (internal/codec): the
// codec passes clear payloads through, so conversations that started before encryption
// was turned on go on under it.
func TestReplayClearHistoriesThroughTheCodec(t *testing.T) {
	files, err := histories("testdata")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := codec.ParseKeys("k1:"+base64.StdEncoding.EncodeToString(make([]byte, codec.KeySize)), "")
	if err != nil {
		t.Fatal(err)
	}
	dc := codec.DataConverter(codec.New(keys, true))
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			file := filepath.Join("testdata", filepath.FromSlash(rel))
			r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: dc, FailureConverter: codec.FailureConverter(dc),
			})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflowWithOptions(ConversationWorkflow, workflow.RegisterOptions{Name: ConversationWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), file); err != nil {
				t.Fatalf("replay %s through the codec: %v", file, err)
			}
		})
	}
}
