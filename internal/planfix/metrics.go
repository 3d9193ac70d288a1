package planfix

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports what clients observe as Prometheus metrics:
//
//	planfix_ratelimit_remaining{account}      X-RateLimit-Remaining of the latest answer
//	planfix_requests_total{account,outcome}   requests by outcome ("ok", "network", ...)
//
// Set it as Config.Observer. It is safe for concurrent use.
type Metrics struct {
	remaining *prometheus.GaugeVec
	requests  *prometheus.CounterVec
}

var _ Observer = (*Metrics)(nil)

// NewMetrics creates the metrics and registers them on reg (never on the global
// registry). It fails when reg already has metrics of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "planfix_ratelimit_remaining",
			Help: "Requests left in the Planfix account's daily quota, from X-RateLimit-Remaining of the latest answer.",
		}, []string{"account"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "planfix_requests_total",
			Help: "Requests sent to Planfix, by account and outcome (ok, or the error kind: network, unavailable, daily_limit, ...).",
		}, []string{"account", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.remaining, m.requests} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register planfix metrics: %w", err)
		}
	}
	return m, nil
}

// ObserveRemaining implements Observer.
func (m *Metrics) ObserveRemaining(account string, remaining int) {
	m.remaining.WithLabelValues(account).Set(float64(remaining))
}

// ObserveRequest implements Observer.
func (m *Metrics) ObserveRequest(account, outcome string) {
	m.requests.WithLabelValues(account, outcome).Inc()
}
