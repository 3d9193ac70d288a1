package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"time"
)

// The cost of payload encryption, measured in one run: two bridges in this process, on
// the same embedded Temporal server and the same sandbox, one with PAYLOAD_ENCRYPTION on
// and one with it off (each with a schema, a task queue and a demo integration of its
// own). Each round runs, on each bridge in turn, an ingestion round (as the ingest
// scenario's webhooks) and a chat-to-task round (as the task scenario's); the bridge that
// goes first alternates from round to round (on, off; off, on; ...), so that the
// machine's noise, and the wake of the other bridge's conversations, fall on both alike.
// Reported: the median over the rounds of each round's figure, for each side, the ratio
// of those medians (on ÷ off), and the median of each round's own ratio.

// encRound is one side's figures in one round.
type encRound struct {
	IngestTP    float64 `json:"ingest_req_per_s"`
	AckP50      float64 `json:"ack_p50_ms"`
	AckP99      float64 `json:"ack_p99_ms"`
	TaskP50     float64 `json:"task_p50_ms"`
	TaskP99     float64 `json:"task_p99_ms"`
	IngestErrs  int     `json:"ingest_errors"`
	TaskMissing int     `json:"tasks_missing"`
	TaskFailed  int     `json:"task_webhooks_failed"`
	Load        string  `json:"load"`
}

func (e *env) encryptionCost(ctx context.Context) error {
	// The other side: a second bridge with the opposite setting.
	mainOn := *encryption == "on"
	url, drop, err := scratchSchema(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer drop()
	other := &env{temporal: e.temporal, tc: e.tc, sb: e.sb, http: e.http}
	var b [4]byte
	_, _ = rand.Read(b[:])
	other.run = hex.EncodeToString(b[:])
	stop, _, err := other.startBridge(ctx, url, !mainOn)
	if err != nil {
		return fmt.Errorf("the bridge with encryption %s: %w", onOff(!mainOn), err)
	}
	defer stop()
	side := map[bool]*env{mainOn: e, !mainOn: other}
	e.settle(30 * time.Second)

	got := map[bool][]encRound{}
	for r := 0; r < *encRounds; r++ {
		order := []bool{true, false}
		if r%2 == 1 {
			order = []bool{false, true}
		}
		for _, on := range order {
			s := side[on]
			// The sandbox's Planfix counts one daily quota for both bridges, and a round
			// spends a couple of thousand requests: each turn starts with a fresh quota, so
			// that neither side runs out, nor skips the optional calls a low quota skips.
			s.sb.Planfix().SetDailyQuota(encDailyQuota)
			var f encRound
			ing := s.ingestRound(ctx, true, fmt.Sprintf("e%d", r))
			f.IngestTP, f.AckP50, f.AckP99, f.IngestErrs = ing.throughput(), ms(pct(ing.lat, .5)), ms(pct(ing.lat, .99)), ing.errs
			s.settle(30 * time.Second)
			lat, _, missing, failed, _ := s.taskRound(fmt.Sprintf("et%d-", r))
			f.TaskP50, f.TaskP99, f.TaskMissing, f.TaskFailed = ms(pct(lat, .5)), ms(pct(lat, .99)), missing, int(failed)
			s.settle(30 * time.Second)
			f.Load = loadavg()
			got[on] = append(got[on], f)
			fmt.Fprintf(os.Stderr, "  round %d encryption %-3s ingest %.1f req/s (ack p50 %.0f ms, p99 %.0f ms, %d errors), task p50 %.0f ms, p99 %.0f ms (%d missing, %d webhooks failed) (load %s)\n",
				r, onOff(on), f.IngestTP, f.AckP50, f.AckP99, f.IngestErrs, f.TaskP50, f.TaskP99, f.TaskMissing, f.TaskFailed, f.Load)
		}
	}

	rounds := map[string]any{"on": got[true], "off": got[false]}
	for _, m := range []struct {
		metric, unit string
		of           func(encRound) float64
	}{
		{"ingest: webhook throughput", "req/s", func(f encRound) float64 { return f.IngestTP }},
		{"ingest: webhook ack p50", "ms", func(f encRound) float64 { return f.AckP50 }},
		{"ingest: webhook ack p99", "ms", func(f encRound) float64 { return f.AckP99 }},
		{"task: chatStarted -> task p50", "ms", func(f encRound) float64 { return f.TaskP50 }},
		{"task: chatStarted -> task p99", "ms", func(f encRound) float64 { return f.TaskP99 }},
	} {
		on, off := median(got[true], m.of), median(got[false], m.of)
		add(Result{Scenario: "encryption", Metric: m.metric + ", on (median)", Value: on, Unit: m.unit, Baseline: fp(off),
			Extra: map[string]any{"on": each(got[true], m.of), "off": each(got[false], m.of)}})
		ratio := 0.0 // none: no figure from the side without encryption
		if off > 0 {
			ratio = on / off
		}
		add(Result{Scenario: "encryption", Metric: m.metric + ", on / off", Value: ratio, Unit: "x", Baseline: fp(1)})
		// The two sides of one round ran a minute apart, under much the same load: the
		// median of the rounds' own ratios is the steadier figure.
		var paired []float64
		for i := range min(len(got[true]), len(got[false])) {
			if d := m.of(got[false][i]); d > 0 {
				paired = append(paired, m.of(got[true][i])/d)
			}
		}
		add(Result{Scenario: "encryption", Metric: m.metric + ", on / off per round (median)", Value: medianOf(paired), Unit: "x", Baseline: fp(1),
			Extra: map[string]any{"rounds": paired}})
	}
	errs := 0
	for _, fs := range got {
		for _, f := range fs {
			errs += f.IngestErrs + f.TaskMissing + f.TaskFailed
		}
	}
	add(Result{Scenario: "encryption", Metric: "webhook errors + tasks missing", Value: float64(errs), Unit: "", Goal: "0", Met: bp(errs == 0), Extra: rounds})
	return nil
}

// encDailyQuota is the sandbox Planfix's daily quota at the start of each turn: far more
// than a turn spends.
const encDailyQuota = 1_000_000

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func each(fs []encRound, of func(encRound) float64) []float64 {
	v := make([]float64, len(fs))
	for i, f := range fs {
		v[i] = of(f)
	}
	return v
}

func median(fs []encRound, of func(encRound) float64) float64 { return medianOf(each(fs, of)) }

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
