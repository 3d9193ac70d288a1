package planfix_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
)

// metricValue returns the value of the gauge or counter name with the given labels, and
// whether it exists.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := planfix.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planfix.NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}

	f := newFixture(t, planfix.Config{Observer: m})
	f.sb.SetDailyQuota(1000)
	for range 3 {
		if err := f.client.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.sb.FailNext(1, 503, 0)
	_ = f.client.Ping(ctx)
	f.sb.FailNext(1, 404, 1000)
	_, _ = f.client.GetTask(ctx, 9, "")

	acct := f.host()
	if v, ok := metricValue(t, reg, "planfix_ratelimit_remaining", map[string]string{"account": acct}); !ok || v != 995 {
		t.Errorf("planfix_ratelimit_remaining = %v (present %v), want 995 (1000 minus 5 requests)", v, ok)
	}
	for outcome, want := range map[string]float64{"ok": 3, "unavailable": 1, "not_found": 1} {
		if v, ok := metricValue(t, reg, "planfix_requests_total", map[string]string{"account": acct, "outcome": outcome}); !ok || v != want {
			t.Errorf("planfix_requests_total{outcome=%q} = %v (present %v), want %v", outcome, v, ok, want)
		}
	}

	// An answer without the header leaves the gauge as it was. (A POST: net/http retries
	// a GET whose reused connection closes without an answer.)
	f.sb.InjectFaults(sandbox.PlanfixFault{Drop: true})
	_, _ = f.client.UpdateTask(ctx, 1, planfix.TaskUpdate{Name: "x"})
	if v, _ := metricValue(t, reg, "planfix_ratelimit_remaining", map[string]string{"account": acct}); v != 995 {
		t.Errorf("gauge after a dropped connection = %v, want 995", v)
	}
	if v, _ := metricValue(t, reg, "planfix_requests_total", map[string]string{"account": acct, "outcome": "network"}); v != 1 {
		t.Errorf("network outcome count = %v, want 1", v)
	}
}
