package metrics

import (
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// The metrics the workflows record of their own, through the SDK's handler
// (workflow.GetMetricsHandler(ctx), which records nothing while a history replays):
//
//	chatrabridge_first_response_seconds{integration}          histogram: how long a customer's message waited for an employee's answer
//	chatrabridge_first_response_reminders_total{integration}  counter: reminders that a customer waits, sent to the task's assignees
//
// The handler keeps them in plain Prometheus collectors rather than in the SDK's tally,
// which reports a timer as a summary and a histogram by its buckets' bounds (its sum
// would be the bounds' sum), and rewrites label values ("shop-a" as "shop_a"): these
// are exact histograms with buckets of their own, labelled with the integration id as
// it is. Their only label is the integration (the workflow's WithTags); the SDK's tags
// (namespace, task queue, workflow type) are left out.
const (
	FirstResponseSeconds   = "chatrabridge_first_response_seconds"
	FirstResponseReminders = "chatrabridge_first_response_reminders_total"
)

// FirstResponseBuckets are the buckets of chatrabridge_first_response_seconds: from
// 30 seconds to 3 days.
var FirstResponseBuckets = []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600}

var workflowLabels = []string{"integration"}

// workflowHandler is the SDK's metrics handler with the workflows' own metrics taken
// out of it (Timer and Counter by name); everything else goes to the SDK's.
type workflowHandler struct {
	client.MetricsHandler
	histograms map[string]*prometheus.HistogramVec
	counters   map[string]*prometheus.CounterVec
	tags       map[string]string
}

func newWorkflowHandler(reg prometheus.Registerer, sdk client.MetricsHandler) client.MetricsHandler {
	h := workflowHandler{MetricsHandler: sdk,
		histograms: map[string]*prometheus.HistogramVec{
			FirstResponseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    FirstResponseSeconds,
				Help:    "How long a customer's message waited for an employee's answer (a reply sent to the chat, or an agent's message in Chatra), in seconds.",
				Buckets: FirstResponseBuckets,
			}, workflowLabels),
		},
		counters: map[string]*prometheus.CounterVec{
			FirstResponseReminders: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: FirstResponseReminders,
				Help: "Reminders that a customer waits for an answer, added to the task for its assignees.",
			}, workflowLabels),
		},
	}
	for _, v := range h.histograms {
		reg.MustRegister(v)
	}
	for _, v := range h.counters {
		reg.MustRegister(v)
	}
	return h
}

// WithTags returns the handler with tags added (the workflows' own metrics keep the
// integration of them).
func (h workflowHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	h.MetricsHandler, h.tags = h.MetricsHandler.WithTags(tags), merged
	return h
}

func (h workflowHandler) labels() prometheus.Labels {
	l := prometheus.Labels{}
	for _, k := range workflowLabels {
		l[k] = h.tags[k]
	}
	return l
}

// Timer records into the workflows' histogram of that name, else the SDK's timer.
func (h workflowHandler) Timer(name string) client.MetricsTimer {
	if v, ok := h.histograms[name]; ok {
		return timer{v.With(h.labels())}
	}
	return h.MetricsHandler.Timer(name)
}

// Counter counts into the workflows' counter of that name, else the SDK's counter.
func (h workflowHandler) Counter(name string) client.MetricsCounter {
	if v, ok := h.counters[name]; ok {
		return counter{v.With(h.labels())}
	}
	return h.MetricsHandler.Counter(name)
}

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }

type counter struct{ c prometheus.Counter }

func (c counter) Inc(n int64) { c.c.Add(float64(n)) }

// Unwrap returns the SDK's handler beneath (for the tally contrib's ScopeFromHandler).
func (h workflowHandler) Unwrap() client.MetricsHandler { return h.MetricsHandler }
