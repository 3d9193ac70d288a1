package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	bworker "github.com/chatrabridge/chatrabridge/worker"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The chat-to-task baseline: a plain SDK workflow, started the way the API starts a
// conversation (SignalWithStart of one signal), that runs as many activities as a
// conversation's first episode does (LoadSettings, EnsureContact, CreateTask, then
// AddContactAction, WriteVisitorNotes, SaveConversation and AddComments), one after the
// other, each doing nothing, and then waits on a timer as an open conversation does. Its
// latency is from the start to the third activity (the "task"), on the same embedded
// server, with a worker of the bridge's worker options (and -worker-pollers) on a task queue of
// its own.

const (
	baselineWorkflowName = "BenchBaselineWorkflow"
	baselineBeforeTask   = 2 // activities before the one that stands for CreateTask
	baselineAfterTask    = 4
)

type baseline struct {
	mu   sync.Mutex
	task map[string]time.Time // workflow id -> when its "task" activity ran
}

func (b *baseline) Step(ctx context.Context, workflowID string, isTask bool) error {
	if isTask {
		b.mu.Lock()
		if _, ok := b.task[workflowID]; !ok {
			b.task[workflowID] = time.Now()
		}
		b.mu.Unlock()
	}
	return nil
}

func (b *baseline) taskAt(id string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.task[id]
	return t, ok
}

// baselineWorkflow runs the baseline's activities. With like, it also does what a
// conversation does besides its activities (-task-baseline-like): it takes two signals
// (the API sends a chatStarted as visitor-info and message) and upserts search attributes
// three times, as a conversation's first episode does (the attributes of the start and the
// name, the name again, the task number).
func baselineWorkflow(ctx workflow.Context, like bool) error {
	var b *baseline
	var v any
	workflow.GetSignalChannel(ctx, "message").ReceiveAsync(&v)
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	if like {
		workflow.GetSignalChannel(ctx, "visitor-info").ReceiveAsync(&v)
		_ = workflow.UpsertTypedSearchAttributes(ctx, workflows.SAIntegration.ValueSet("baseline"), workflows.SAStatus.ValueSet("open"))
		_ = workflow.UpsertTypedSearchAttributes(ctx, workflows.SAName.ValueSet("C"+id))
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second},
	})
	for i := 0; i < baselineBeforeTask+1+baselineAfterTask; i++ {
		if err := workflow.ExecuteActivity(ctx, b.Step, id, i == baselineBeforeTask).Get(ctx, nil); err != nil {
			return err
		}
		if like && i == baselineBeforeTask {
			_ = workflow.UpsertTypedSearchAttributes(ctx, workflows.SATaskID.ValueSet(int64(i)))
		}
	}
	_, err := workflow.AwaitWithTimeout(ctx, 24*time.Hour, func() bool { return false })
	return err
}

// taskBaseline starts rate × duration baseline workflows at rate a second and returns
// their start-to-task latencies (and how many never got there within two minutes).
func (e *env) taskBaseline(ctx context.Context, rate int, d time.Duration) ([]time.Duration, int, error) {
	b := &baseline{task: map[string]time.Time{}}
	tq := e.taskQueue + "-baseline"
	opts := bworker.Options() // the bridge's worker's options
	setPollers(&opts)
	w := worker.New(e.tc, tq, opts)
	w.RegisterWorkflowWithOptions(baselineWorkflow, workflow.RegisterOptions{Name: baselineWorkflowName})
	w.RegisterActivity(b)
	if err := w.Start(); err != nil {
		return nil, 0, err
	}
	defer w.Stop()

	n := int(float64(rate) * d.Seconds())
	sent := make([]time.Time, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	var failed sync.Map
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for i := 0; i < n; i++ {
		<-tick.C
		ids[i] = fmt.Sprintf("bench-baseline/%s-t%d", e.run, i)
		sent[i] = time.Now()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o := client.StartWorkflowOptions{
				ID: ids[i], TaskQueue: tq,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			}
			if *baseLike {
				o.TypedSearchAttributes = temporal.NewSearchAttributes(workflows.SAChatID.ValueSet(ids[i]), workflows.SAStatus.ValueSet("open"))
				if _, err := e.tc.SignalWithStartWorkflow(ctx, ids[i], "visitor-info", map[string]string{"name": "C" + ids[i]}, o, baselineWorkflowName, true); err != nil {
					failed.Store(i, err)
				}
			}
			if _, err := e.tc.SignalWithStartWorkflow(ctx, ids[i], "message", map[string]string{"text": "hello"}, o, baselineWorkflowName, *baseLike); err != nil {
				failed.Store(i, err)
			}
		}(i)
	}
	tick.Stop()
	wg.Wait()
	if err := waitFor(2*time.Minute, func() bool {
		for _, id := range ids {
			if _, ok := b.taskAt(id); !ok {
				return false
			}
		}
		return true
	}); err != nil {
		fmt.Fprintf(os.Stderr, "  task baseline: %v\n", err)
	}
	var lat []time.Duration
	missing := 0
	for i, id := range ids {
		if t, ok := b.taskAt(id); ok {
			lat = append(lat, t.Sub(sent[i]))
		} else {
			missing++
		}
	}
	return lat, missing, nil
}

// historyCounts counts the events of a workflow's current run by type (and the
// search-attribute upserts), to compare a conversation's work with the baseline's.
func (e *env) historyCounts(ctx context.Context, workflowID string) map[string]int {
	out := map[string]int{}
	it := e.tc.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			out["error"]++
			break
		}
		out[ev.GetEventType().String()]++
		out["total"]++
	}
	return out
}
