package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/background"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The customers waiting for an answer, from Temporal's visibility (the
// CustomerWaitingSince search attribute the conversations keep): the admin API's list
// of an integration's waiting chats, and the gauge of how many wait now.

// WaitingList is the answer of GET /api/v1/integrations/{id}/waiting: the chats whose
// customer waits for an answer, the longest waiting first.
type WaitingList struct {
	Waiting []WaitingChat `json:"waiting"`
}

// WaitingChat is a conversation whose customer waits for an answer: since when, and for
// how long when the answer was made.
type WaitingChat struct {
	WorkflowID     string    `json:"workflowId"`
	ChatID         string    `json:"chatId"`
	CustomerName   string    `json:"customerName,omitempty"`
	CustomerEmail  string    `json:"customerEmail,omitempty"`
	TaskID         int64     `json:"taskId,omitempty"`
	WaitingSince   time.Time `json:"waitingSince"`
	WaitingSeconds int64     `json:"waitingSeconds"`
}

// Limits of the waiting list: a page of the answer (limit), and how many waiting chats
// it reads from visibility at most to sort them (visibility on SQL cannot sort by a
// custom attribute).
const (
	DefaultWaitingLimit = 100
	MaxWaitingLimit     = 1000
	maxWaitingRead      = 10000
)

// listWaiting: GET /api/v1/integrations/{id}/waiting?longerThan=&limit=.
func (a *admin) listWaiting(c echo.Context) error {
	q := c.QueryParams()
	for name := range q {
		if !slices.Contains([]string{"longerThan", "limit"}, name) {
			return chatrabridge.Invalid(name, "unknown query parameter %q: use longerThan, limit", name)
		}
	}
	limit, err := intParam(q, "limit", 1, MaxWaitingLimit)
	if err != nil {
		return err
	}
	limit = cmp.Or(limit, DefaultWaitingLimit)
	var longer time.Duration
	if v := q.Get("longerThan"); v != "" {
		if longer, err = time.ParseDuration(v); err != nil || longer < 0 {
			return chatrabridge.Invalid("longerThan", "longerThan must be a duration such as 15m")
		}
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	if _, err := a.store.IntegrationSettings(ctx, id); err != nil {
		return err
	}
	if a.temporal == nil {
		return chatrabridge.Errorf(chatrabridge.EUNAVAILABLE, "Temporal is not configured")
	}
	now := time.Now()
	var before time.Time
	if longer > 0 {
		before = now.Add(-longer)
	}
	chats, err := listWaiting(ctx, a.temporal, workflows.WaitingQuery(id, before), now)
	if err != nil {
		a.logger.Warn("list the waiting conversations", "integration", id, "error", err)
		return chatrabridge.Errorf(chatrabridge.EUNAVAILABLE, "Temporal did not list the waiting conversations; try again")
	}
	if len(chats) > limit {
		chats = chats[:limit]
	}
	return c.JSON(http.StatusOK, WaitingList{Waiting: chats})
}

// listWaiting reads the conversations query selects (at most maxWaitingRead) and
// returns them the longest waiting first.
func listWaiting(ctx context.Context, tc client.Client, query string, now time.Time) ([]WaitingChat, error) {
	out := []WaitingChat{}
	var token []byte
	for len(out) < maxWaitingRead {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list the waiting conversations: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			f := e.GetSearchAttributes().GetIndexedFields()
			w := WaitingChat{WorkflowID: e.GetExecution().GetWorkflowId()}
			if !decodeAttribute(f[workflows.SAWaitingSince.GetName()], &w.WaitingSince) {
				continue // unset since visibility answered
			}
			decodeAttribute(f[workflows.SAChatID.GetName()], &w.ChatID)
			decodeAttribute(f[workflows.SAName.GetName()], &w.CustomerName)
			decodeAttribute(f[workflows.SAEmail.GetName()], &w.CustomerEmail)
			decodeAttribute(f[workflows.SATaskID.GetName()], &w.TaskID)
			w.WaitingSeconds = int64(max(now.Sub(w.WaitingSince), 0) / time.Second)
			out = append(out, w)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.SortFunc(out, func(x, y WaitingChat) int {
		return cmp.Or(x.WaitingSince.Compare(y.WaitingSince), cmp.Compare(x.WorkflowID, y.WorkflowID))
	})
	return out, nil
}

// decodeAttribute decodes a search attribute's value and reports whether it held one.
func decodeAttribute(p *commonpb.Payload, v any) bool {
	return p != nil && string(p.GetData()) != "null" && converter.GetDefaultDataConverter().FromPayload(p, v) == nil
}

// WaitingCountInterval is how often the API counts the waiting conversations of each
// integration for chatrabridge_conversations_waiting.
const WaitingCountInterval = 30 * time.Second

// waitingGauge is chatrabridge_conversations_waiting{integration}: the running
// conversations whose customer waits for an answer, counted in Temporal's visibility
// per integration every WaitingCountInterval (one count request per integration; a
// scrape reads the last counts and costs nothing). Every API process reports the same
// counts: aggregate them with max, not sum.
type waitingGauge struct {
	gauge    *prometheus.GaugeVec
	store    *postgres.IntegrationStore
	temporal client.Client
	logger   *slog.Logger

	mu    sync.Mutex
	known map[string]bool // integrations with a series
}

func newWaitingGauge(p Params) *waitingGauge {
	g := &waitingGauge{
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chatrabridge_conversations_waiting",
			Help: "Running conversations whose customer waits for an answer (CustomerWaitingSince set), by integration; counted in Temporal's visibility every 30 s.",
		}, []string{"integration"}),
		store: p.Integrations, temporal: p.Temporal, logger: p.Logger, known: map[string]bool{},
	}
	p.Metrics.MustRegister(g.gauge)
	return g
}

// count counts the waiting conversations of every integration now. An integration
// whose count fails keeps its last value; one that was deleted loses its series.
func (g *waitingGauge) count(ctx context.Context) error {
	list, err := g.store.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[string]bool{}
	var errs []error
	for _, i := range list {
		seen[i.ID] = true
		r, err := g.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: workflows.WaitingQuery(i.ID, time.Time{})})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.gauge.WithLabelValues(i.ID).Set(float64(r.GetCount()))
		g.known[i.ID] = true
	}
	for id := range g.known {
		if !seen[id] {
			g.gauge.DeleteLabelValues(id)
			delete(g.known, id)
		}
	}
	return errors.Join(errs...)
}

// run counts every interval until ctx ends.
func (g *waitingGauge) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		if err := g.count(cctx); err != nil && ctx.Err() == nil {
			g.logger.Warn("count the waiting conversations", "error", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CountWaiting counts the waiting conversations of every integration now, as the
// server does every WaitingCountInterval once started by fx.
func (s *Server) CountWaiting(ctx context.Context) error { return s.waiting.count(ctx) }

// countWaiting runs the waiting gauge for the app's lifetime.
func countWaiting(lc fx.Lifecycle, s *Server) {
	background.Run(lc, func(ctx context.Context) { s.waiting.run(ctx, WaitingCountInterval) })
}
