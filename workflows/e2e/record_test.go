package e2e_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/workflows"
)

var (
	record = flag.Bool("record", false,
		"write each test's workflow histories to ../testdata/<release>/ (never over an existing file) and list them in ../testdata/MANIFEST")
	release = flag.String("release", "",
		"with -record: the release whose code records the histories, as listed in ../testdata/releases.txt")
)

// testdata is where the replay test in package workflows finds the histories.
const testdata = "../testdata"

// releasePaths are the code a recorded history depends on: the workflow, the activities
// and what they call, the worker, the module's dependencies (the Temporal SDK). The
// histories of a release are recorded with exactly that release's, or they would not be
// the histories its conversations have.
var releasePaths = []string{
	"workflows", "activities", "worker", "internal/planfix", "internal/chatra", "internal/postgres", "internal/secrets", "internal/codec",
	":(glob)*.go", "go.mod", "go.sum",
	":(exclude,glob)**/*_test.go", ":(exclude)workflows/testdata", ":(exclude)workflows/e2e",
}

// checkRelease makes sure -record can record the histories of -release: the release is
// listed in releases.txt, and the code the histories depend on is that of its commit.
func checkRelease() error {
	if *release == "" {
		return errors.New("-record needs -release, the release the histories are recorded with (make histories RELEASE=v0.1.0)")
	}
	commit, err := releaseCommit(filepath.Join(testdata, "releases.txt"), *release)
	if err != nil {
		return err
	}
	args := append([]string{"-C", "../..", "diff", "--stat", "--exit-code", commit, "--"}, releasePaths...)
	out, err := exec.Command("git", args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return fmt.Errorf("the code differs from release %s (commit %s), so its histories cannot be recorded with it: check out that commit\n%s",
			*release, commit, out)
	case err != nil:
		return fmt.Errorf("compare the code with release %s (commit %s): %v\n%s", *release, commit, err, out)
	}
	return nil
}

var releaseLine = regexp.MustCompile(`^(v[0-9]+\.[0-9]+\.[0-9]+\S*) ([0-9a-f]{40})$`)

// releaseCommit returns the commit of version in the releases file: lines
// "<version> <40-hex commit>", # comments and blank lines.
func releaseCommit(file, version string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := releaseLine.FindStringSubmatch(line)
		if m == nil {
			return "", fmt.Errorf("%s line %d: want `<version> <40-hex commit>`, got %q", file, n, line)
		}
		if m[1] == version {
			return m[2], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("release %s is not in %s: add its line `%s <commit>` first", version, file, version)
}

// saveHistories records the histories of every run of workflowID (the runs continue as
// new one from another) when recording: to testdata/<release>/<name>.json, or
// <name>.run1.json, <name>.run2.json, ... when there are several, each added to the
// MANIFEST. It fails the test, writing nothing, when one of the files exists: recorded
// histories are append-only. Call it once the workflow has finished.
//
// Recording or not, each run's history, encrypted as the workers wrote it, must replay
// through the codec against the current code (what the replay test will do with it).
// What replays is the JSON that is written: replaying a history alters it (the SDK merges
// the search attributes the workflow upserts into its start event's), so a history
// written after its replay would hold, in its start event, the search attributes of the
// run's end, and would no longer replay.
func (s *stack) saveHistories(name, workflowID string) {
	s.t.Helper()
	runs, err := s.histories(workflowID)
	if err != nil {
		s.t.Fatal(err)
	}
	data := make([][]byte, len(runs))
	for i, h := range runs {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
		if err != nil {
			s.t.Fatal(err)
		}
		data[i] = append(b, '\n')
	}
	s.replayEncrypted(name, data)
	if !*record {
		return
	}
	dir := filepath.Join(testdata, *release)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	files := make([]string, len(runs))
	for i := range runs {
		files[i] = name + ".json"
		if len(runs) > 1 {
			files[i] = fmt.Sprintf("%s.run%d.json", name, i+1)
		}
		if _, err := os.Stat(filepath.Join(dir, files[i])); !errors.Is(err, fs.ErrNotExist) {
			s.t.Fatalf("%s/%s exists: recorded histories are append-only (never recorded again); record a new release's with make histories RELEASE=...",
				*release, files[i])
		}
	}
	for i, b := range data {
		rel := *release + "/" + files[i]
		if err := writeNew(filepath.Join(testdata, filepath.FromSlash(rel)), b); err != nil {
			s.t.Fatal(err)
		}
		if err := addToManifest(rel, b); err != nil {
			s.t.Fatal(err)
		}
		s.t.Logf("recorded %s (%d events)", rel, len(runs[i].Events))
	}
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: recorded histories are append-only", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var manifestMu sync.Mutex

// addToManifest adds the line of the history rel (its path under testdata) to the
// MANIFEST, sha256sum's format, keeping the lines sorted by path.
func addToManifest(rel string, b []byte) error {
	manifestMu.Lock()
	defer manifestMu.Unlock()
	path := filepath.Join(testdata, "MANIFEST")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var lines []string
	for l := range strings.Lines(string(old)) {
		if l = strings.TrimRight(l, "\r\n"); l == "" {
			continue
		}
		if _, p, _ := strings.Cut(l, "  "); p == rel {
			return fmt.Errorf("MANIFEST lists %s already: recorded histories are append-only", rel)
		}
		lines = append(lines, l)
	}
	lines = append(lines, fmt.Sprintf("%x  %s", sha256.Sum256(b), rel))
	slices.SortStableFunc(lines, func(x, y string) int {
		_, px, _ := strings.Cut(x, "  ")
		_, py, _ := strings.Cut(y, "  ")
		return strings.Compare(px, py)
	})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// histories returns the history of every run of workflowID, from its first run through
// each continue-as-new to the last.
func (s *stack) histories(workflowID string) ([]*historypb.History, error) {
	d, err := s.temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
	if err != nil {
		return nil, err
	}
	var out []*historypb.History
	for run := d.GetWorkflowExecutionInfo().GetFirstRunId(); run != ""; {
		it := s.temporal.GetWorkflowHistory(context.Background(), workflowID, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		h := &historypb.History{}
		next := ""
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return out, fmt.Errorf("history of %s run %s: %w", workflowID, run, err)
			}
			h.Events = append(h.Events, e)
			if a := e.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		out = append(out, h)
		run = next
	}
	return out, nil
}

// replayEncrypted replays each run, as the JSON of its history, through the converters
// of the recorded histories' replay test, after checking that its start input is
// encrypted.
func (s *stack) replayEncrypted(name string, runs [][]byte) {
	s.t.Helper()
	for i, b := range runs {
		h := &historypb.History{}
		if err := protojson.Unmarshal(b, h); err != nil {
			s.t.Fatalf("%s run %d: %v", name, i+1, err)
		}
		in := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
		if len(in) == 0 || string(in[0].GetMetadata()[codec.MetadataEncoding]) != codec.EncodingEncrypted {
			s.t.Errorf("%s run %d: the workflow's input is not encrypted", name, i+1)
		}
		r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
			DataConverter: s.payloads, FailureConverter: codec.FailureConverter(s.payloads),
		})
		if err != nil {
			s.t.Fatal(err)
		}
		r.RegisterWorkflowWithOptions(workflows.ConversationWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
		if err := r.ReplayWorkflowHistory(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), h); err != nil {
			s.t.Errorf("%s run %d, encrypted, does not replay: %v", name, i+1, err)
		}
	}
}
