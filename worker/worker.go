// Package worker builds the Temporal worker that runs conversation workflows and their
// activities on the bridge's task queue.
package worker

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/activities"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// Module runs the worker for the app's lifetime: started on start, stopped (letting
// running activities finish) on stop; a fatal worker error stops the whole app.
var Module = fx.Module("worker",
	fx.Provide(newActivities),
	fx.Invoke(run),
)

type activitiesParams struct {
	fx.In
	DB           *postgres.DB
	Integrations chatrabridge.IntegrationService
	Limiter      planfix.Limiter
	Logger       *slog.Logger
	Registry     *metrics.Registry
	// Config gives CUSTOMER_SEARCH; absent (tests), the search attributes are in clear.
	Config config.Config `optional:"true"`
}

// newActivities builds the activities with the Planfix metrics (requests by outcome, the
// remaining daily quota) reported on the process's registry.
func newActivities(p activitiesParams) (*activities.Activities, error) {
	m, err := planfix.NewMetrics(p.Registry)
	if err != nil {
		return nil, fmt.Errorf("planfix metrics: %w", err)
	}
	a := activities.New(p.DB, p.Integrations, p.Limiter, p.Logger)
	a.PlanfixObserver = m
	a.CustomerSearch = p.Config.CustomerSearch
	return a, nil
}

// TaskQueue is the task queue name, a distinct type so fx can provide it.
type TaskQueue string

// New returns a worker on taskQueue with every workflow and activity registered. A
// workflow task that fails (a non-determinism error, say, while a worker of the
// previous release takes a task of a run this one patched: workflows/versions.go) is
// retried until a worker can complete it, never turned into a failed conversation:
// New sets the panic policy to BlockWorkflow whatever opts say.
func New(c client.Client, taskQueue TaskQueue, acts *activities.Activities, opts worker.Options) worker.Worker {
	opts.WorkflowPanicPolicy = worker.BlockWorkflow
	w := worker.New(c, string(taskQueue), opts)
	w.RegisterWorkflowWithOptions(workflows.ConversationWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	w.RegisterActivity(acts)
	return w
}

// Options are the worker's options: pollers that scale with the task queue's backlog
// (the server tells the worker when more would help), for workflow and activity tasks
// alike. The SDK's default of two pollers of each kind caps how many tasks reach the
// worker per poll round trip: a conversation's first episode takes about ten workflow
// tasks and seven activities, and at 20 new chats a second they queued on the server
// (docs/BENCHMARKS.md, "task").
func Options() worker.Options {
	return worker.Options{
		WorkflowTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
		ActivityTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
	}
}

// Tuning, when the graph provides one, changes the worker's Options before the worker is
// made (the benchmark compares poller settings with it).
type Tuning func(*worker.Options)

type runParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Client     client.Client
	TaskQueue  TaskQueue
	Activities *activities.Activities
	Logger     *slog.Logger
	Tuning     Tuning `optional:"true"`
}

func run(p runParams) {
	lc, sd, logger := p.Lifecycle, p.Shutdowner, p.Logger
	opts := Options()
	opts.OnFatalError = func(err error) {
		logger.Error("temporal worker stopped", "error", err)
		_ = sd.Shutdown(fx.ExitCode(1))
	}
	if p.Tuning != nil {
		p.Tuning(&opts)
	}
	w := New(p.Client, p.TaskQueue, p.Activities, opts)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error { return w.Start() },
		OnStop:  func(context.Context) error { w.Stop(); return nil },
	})
}
