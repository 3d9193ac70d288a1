package metrics_test

import (
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/chatrabridge/chatrabridge/internal/metrics"
)

// The workflows' own metrics are exact and keep the integration id as it is; every
// other metric still goes to the SDK's tally.
func TestWorkflowMetrics(t *testing.T) {
	reg := metrics.New(slog.New(slog.DiscardHandler))
	h := reg.Temporal.WithTags(map[string]string{"namespace": "default"}).WithTags(map[string]string{"integration": "shop-a"})
	h.Timer(metrics.FirstResponseSeconds).Record(90 * time.Second)
	h.Timer(metrics.FirstResponseSeconds).Record(10 * time.Minute)
	h.Counter(metrics.FirstResponseReminders).Inc(2)
	h.Counter("sdk_other").Inc(1)
	if err := reg.Close(); err != nil { // flushes tally
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	label := func(m *dto.Metric) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == "integration" {
				return l.GetValue()
			}
		}
		return ""
	}
	hist := byName[metrics.FirstResponseSeconds]
	if hist == nil || len(hist.GetMetric()) != 1 {
		t.Fatalf("%s = %v", metrics.FirstResponseSeconds, hist)
	}
	m := hist.GetMetric()[0]
	if label(m) != "shop-a" || len(m.GetLabel()) != 1 || m.GetHistogram().GetSampleCount() != 2 || m.GetHistogram().GetSampleSum() != 690 {
		t.Errorf("first-response histogram = %v", m)
	}
	for _, b := range m.GetHistogram().GetBucket() {
		if b.GetUpperBound() == 120 && b.GetCumulativeCount() != 1 {
			t.Errorf("bucket le=120 counts %d, want 1", b.GetCumulativeCount())
		}
	}
	c := byName[metrics.FirstResponseReminders]
	if c == nil || label(c.GetMetric()[0]) != "shop-a" || c.GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Errorf("%s = %v", metrics.FirstResponseReminders, c)
	}
	if byName["sdk_other_total"] == nil {
		t.Error("a metric of the SDK's did not reach tally")
	}
}
