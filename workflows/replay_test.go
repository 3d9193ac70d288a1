package workflows

import (
	"log/slog"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
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
