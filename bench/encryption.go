package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// The cost of payload encryption, measured in one run, on one bridge: its payload codec
// is switchable (payloadSwitch), and rounds alternate between encryption on and off, the
// setting that goes first swapping from round to round (on, off; off, on; ...), so that
// the machine's noise, and the wake of the previous turn's conversations, fall on both
// alike. A turn is an ingestion round (as the ingest scenario's webhooks) and a
// chat-to-task round (as the task scenario's). Reported: the median over the rounds of
// each round's figure, for each setting, the ratio of those medians (on ÷ off), and the
// median of each round's own ratio.
//
// One bridge rather than two (one per setting, side by side in the process): two bridges
// differed from each other by a factor of 2 to 6 whatever their setting (the first one
// started was the slower, with encryption on or off), which no alternation removes.

// payloadSwitch is the bridge's payload codec with encryption switchable while it runs:
// Encode is the production codec with encryption on or off (codec.New(keys, true or
// false)), Decode the same codec's, which reads both; failures are converted as
// codec.Apply converts them for the setting.
type payloadSwitch struct {
	on, off *codec.Codec
	encrypt atomic.Bool
}

func newPayloadSwitch(keys *codec.Keys, encrypt bool) *payloadSwitch {
	s := &payloadSwitch{on: codec.New(keys, true), off: codec.New(keys, false)}
	s.encrypt.Store(encrypt)
	return s
}

func (s *payloadSwitch) Encode(p []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if s.encrypt.Load() {
		return s.on.Encode(p)
	}
	return s.off.Encode(p)
}

func (s *payloadSwitch) Decode(p []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return s.on.Decode(p)
}

// apply sets the client options' converters, as codec.Apply does for one setting.
func (s *payloadSwitch) apply(o *client.Options) {
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), s)
	o.DataConverter = dc
	o.FailureConverter = failureSwitch{s: s,
		on:  temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true}),
		off: temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc}),
	}
}

type failureSwitch struct {
	s       *payloadSwitch
	on, off converter.FailureConverter
}

func (f failureSwitch) ErrorToFailure(err error) *failurepb.Failure {
	if f.s.encrypt.Load() {
		return f.on.ErrorToFailure(err)
	}
	return f.off.ErrorToFailure(err)
}

func (f failureSwitch) FailureToError(fl *failurepb.Failure) error { return f.on.FailureToError(fl) }

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
	if e.payloads == nil {
		return fmt.Errorf("the bridge was started without a switchable codec")
	}
	defer e.payloads.encrypt.Store(*encryption == "on")
	got := map[bool][]encRound{}
	for r := 0; r < *encRounds; r++ {
		order := []bool{true, false}
		if r%2 == 1 {
			order = []bool{false, true}
		}
		for _, on := range order {
			e.payloads.encrypt.Store(on)
			// The sandbox's Planfix counts one daily quota (20,000) for the whole run, and
			// a turn spends about 2,000 requests: each turn starts with a fresh quota, so
			// that none runs out, nor skips the optional calls a low quota skips.
			e.sb.Planfix().SetDailyQuota(encDailyQuota)
			var f encRound
			ing := e.ingestRound(ctx, true, fmt.Sprintf("e%d%s", r, onOff(on)))
			f.IngestTP, f.AckP50, f.AckP99, f.IngestErrs = ing.throughput(), ms(pct(ing.lat, .5)), ms(pct(ing.lat, .99)), ing.errs
			e.settle(30 * time.Second)
			lat, ids, missing, failed, _ := e.taskRound(fmt.Sprintf("et%d%s-", r, onOff(on)))
			f.TaskP50, f.TaskP99, f.TaskMissing, f.TaskFailed = ms(pct(lat, .5)), ms(pct(lat, .99)), missing, int(failed)
			// The switch took: the turn's conversations were started encrypted, or not.
			if err := e.checkEncrypted(ctx, workflows.ConversationWorkflowID(app.DemoIntegrationID, ids[0]), on); err != nil {
				return err
			}
			e.settle(30 * time.Second)
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

// checkEncrypted fails unless the input of workflowID's start is encrypted exactly when
// encrypted says it should be.
func (e *env) checkEncrypted(ctx context.Context, workflowID string, encrypted bool) error {
	it := e.tc.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return fmt.Errorf("%s has no history", workflowID)
	}
	ev, err := it.Next()
	if err != nil {
		return fmt.Errorf("history of %s: %w", workflowID, err)
	}
	in := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(in) == 0 {
		return fmt.Errorf("%s: its start has no input", workflowID)
	}
	if got := string(in[0].GetMetadata()[codec.MetadataEncoding]) == codec.EncodingEncrypted; got != encrypted {
		return fmt.Errorf("%s: input encrypted %v with encryption %s: the switch did not take", workflowID, got, onOff(encrypted))
	}
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
