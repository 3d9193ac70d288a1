package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"google.golang.org/grpc/codes"

	"github.com/chatrabridge/chatrabridge/internal/background"
	"github.com/chatrabridge/chatrabridge/internal/metrics"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// Module runs a Forwarder for the process's lifetime (every api and worker process).
var Module = fx.Module("inbox",
	fx.Provide(func(db *postgres.DB, c client.Client, reg *metrics.Registry, logger *slog.Logger) *Forwarder {
		return NewForwarder(db, c, reg, logger)
	}),
	fx.Invoke(func(lc fx.Lifecycle, f *Forwarder) { background.Run(lc, f.Run) }),
)

// Defaults of a Forwarder.
const (
	DefaultInterval    = time.Second      // between rounds while they succeed
	DefaultMaxInterval = 10 * time.Second // between rounds while Temporal or the store fails
	DefaultSendTimeout = 10 * time.Second // one delivery's Temporal calls
	workflowsPerCall   = 100
)

// Forwarder sends the webhooks kept in the inbox to Temporal, exactly as their handler
// would have (Send), oldest first and in arrival order per conversation, and deletes
// each once Temporal accepted it. Any number of forwarders (one per process) may run:
// a conversation is forwarded by one at a time. A delivery sent but not deleted (a crash
// in between) is sent again with the same signal keys, which the workflow ignores.
type Forwarder struct {
	db       *postgres.DB
	temporal client.Client
	logger   *slog.Logger
	backlog  prometheus.Gauge
	outcomes *prometheus.CounterVec
	// Interval, MaxInterval and SendTimeout are DefaultInterval, DefaultMaxInterval and
	// DefaultSendTimeout unless set before Run.
	Interval, MaxInterval, SendTimeout time.Duration
}

// NewForwarder returns a forwarder of db's inbox to c, its metrics registered on reg.
func NewForwarder(db *postgres.DB, c client.Client, reg prometheus.Registerer, logger *slog.Logger) *Forwarder {
	f := &Forwarder{
		db: db, temporal: c, logger: logger,
		Interval: DefaultInterval, MaxInterval: DefaultMaxInterval, SendTimeout: DefaultSendTimeout,
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatrabridge_webhook_inbox_backlog",
			Help: "Webhook deliveries kept in PostgreSQL because Temporal could not take them, waiting to be forwarded (as last counted by this process's forwarder).",
		}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatrabridge_webhook_inbox_forwarded_total",
			Help: "Kept webhook deliveries forwarded by outcome (sent: Temporal accepted it; dropped: Temporal refuses it as it is, or it cannot be read).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(f.backlog, f.outcomes)
	return f
}

// Run forwards the inbox until ctx is done: a round every Interval, backing off up to
// MaxInterval while Temporal or the store fails.
func (f *Forwarder) Run(ctx context.Context) {
	wait := f.Interval
	for {
		_, err := f.Forward(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.logger.Warn("webhook inbox: cannot forward (retried)", "error", err, "retry_in", wait.String())
			wait = min(wait*2, f.MaxInterval)
		} else {
			wait = f.Interval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// errUnreadable marks a kept delivery that cannot be decoded: it is dropped.
var errUnreadable = errors.New("unreadable delivery")

// Forward sends what the inbox holds now and returns how many deliveries it sent (or
// dropped), with the error that stopped it (Temporal or the store unavailable). It also
// updates the backlog gauge.
func (f *Forwarder) Forward(ctx context.Context) (int, error) {
	total := 0
	var err error
	for {
		var n int
		n, err = f.db.ForwardWebhooks(ctx, workflowsPerCall, f.send, f.drop)
		total += n
		if err != nil || n == 0 {
			break
		}
	}
	if n, oldest, berr := f.db.InboxBacklog(ctx); berr == nil {
		f.backlog.Set(float64(n))
		if n > 0 && err == nil {
			f.logger.Debug("webhook inbox: backlog", "count", n, "oldest", oldest)
		}
	}
	if total > 0 {
		f.logger.Info("webhook inbox: forwarded kept webhooks to Temporal", "count", total)
	}
	return total, err
}

// send sends one kept delivery.
func (f *Forwarder) send(ctx context.Context, id int64, raw []byte) error {
	var d Delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		f.logger.Error("webhook inbox: a kept delivery cannot be read; dropped", "id", id, "error", err)
		return errUnreadable
	}
	ctx, cancel := context.WithTimeout(ctx, f.SendTimeout)
	defer cancel()
	restarted, err := Send(ctx, f.temporal, d)
	if err != nil {
		if permanent(err) {
			f.logger.Error("webhook inbox: Temporal refuses a kept delivery as it is; dropped", "id", id, "workflow_id", d.WorkflowID, "error", err)
		}
		return err
	}
	f.outcomes.WithLabelValues("sent").Inc()
	f.logger.Debug("webhook inbox: forwarded", "id", id, "workflow_id", d.WorkflowID, "signals", len(d.Signals), "restarted", restarted)
	return nil
}

// drop reports whether a delivery that failed can never be sent, so that it is deleted
// rather than holding back its conversation's later ones, and counts it.
func (f *Forwarder) drop(err error) bool {
	if !permanent(err) {
		return false
	}
	f.outcomes.WithLabelValues("dropped").Inc()
	return true
}

// permanent reports whether no retry can send a delivery that failed with err.
func permanent(err error) bool {
	return errors.Is(err, errUnreadable) || serviceerror.ToStatus(err).Code() == codes.InvalidArgument
}
