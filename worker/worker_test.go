package worker

import (
	"log/slog"
	"testing"

	"github.com/chatrabridge/chatrabridge/internal/metrics"
)

// The worker's Planfix clients report into the process registry that /metrics serves.
func TestActivitiesReportPlanfixMetrics(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	reg := metrics.New(logger)
	defer reg.Close()
	a, err := newActivities(activitiesParams{Logger: logger, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if a.PlanfixObserver == nil {
		t.Fatal("activities have no Planfix observer: requests and quota would not be exported")
	}
	a.PlanfixObserver.ObserveRemaining("example.planfix.com", 4321)
	a.PlanfixObserver.ObserveRequest("example.planfix.com", "ok")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				found[f.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				found[f.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	if found["planfix_ratelimit_remaining"] != 4321 || found["planfix_requests_total"] != 1 {
		t.Fatalf("planfix metrics on the registry: %v", found)
	}
}

// The worker's pollers scale with the backlog: the SDK's fixed two of each kind held
// conversations back at some tens of new chats a second (docs/BENCHMARKS.md, "task").
func TestOptionsScalePollers(t *testing.T) {
	o := Options()
	if o.WorkflowTaskPollerBehavior == nil || o.ActivityTaskPollerBehavior == nil {
		t.Fatalf("worker options without poller behaviours: %+v", o)
	}
	if o.MaxConcurrentWorkflowTaskPollers != 0 || o.MaxConcurrentActivityTaskPollers != 0 {
		t.Fatal("fixed poller counts set alongside the poller behaviours (the SDK refuses both)")
	}
}
