// Command bench measures the bridge in one process: an embedded Temporal server, a fresh
// PostgreSQL schema, the sandbox's Chatra and Planfix, and the real API + worker fx graph
// with one integration wired to the sandbox. Each scenario is measured against a baseline
// taken in the same run (the machines are shared and noisy). It prints a table and writes
// JSON:
//
//	go run ./bench -out bench/results/latest.json [-scenarios ingest,task,calls,burst,priorities,memory]
//
// Goals are reported, never asserted.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/chatra"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/sandbox"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	bworker "github.com/chatrabridge/chatrabridge/worker"
	"github.com/chatrabridge/chatrabridge/workflows"
)

var (
	outFile     = flag.String("out", "", "write the results as JSON to this file")
	scenarios   = flag.String("scenarios", "ingest,task,calls,burst,priorities,memory", "comma-separated scenarios to run (also devserver: dev's embedded server against temporal server start-dev; encryption: what payload encryption costs)")
	dbURL       = flag.String("db", postgrestest.URL(), "PostgreSQL database; a fresh schema is made in it and dropped at the end")
	ingestN     = flag.Int("ingest-n", 1000, "webhooks per ingestion round (and as many baseline signals)")
	ingestChats = flag.Int("ingest-chats", 200, "chats the ingestion webhooks are spread over")
	ingestConc  = flag.Int("ingest-concurrency", 16, "concurrent senders in the ingestion scenario")
	memWait     = flag.Duration("memory-wait", 30*time.Minute, "how long the memory scenario waits for every conversation to have its task before it measures")
	ingestRound = flag.Int("ingest-rounds", 2, "alternating baseline/webhook rounds")
	taskRate    = flag.Int("task-rate", 20, "new chats per second in the chat-to-task scenario")
	taskFor     = flag.Duration("task-duration", 10*time.Second, "how long new chats arrive in the chat-to-task scenario")
	callsN      = flag.String("calls-n", "1,5,20", "visitor-message counts of the Planfix-calls scenario")
	burstChats  = flag.Int("burst-chats", 50, "chats of the rate-limited burst")
	burstMsgs   = flag.Int("burst-messages", 10, "visitor messages per chat of the burst")
	burstWindow = flag.Duration("burst-window", 10*time.Second, "the burst's webhooks are spread over this")
	burstWait   = flag.Duration("burst-timeout", 15*time.Minute, "give up waiting for the burst's messages after this")
	memSizes    = flag.String("memory-sizes", "1000,10000", "open idle conversations of the memory scenario")
	fastLimit   = flag.Duration("fast-interval", 5*time.Millisecond, "the bridge's Planfix limiter interval outside the burst (the sandbox's limit is off there)")
	taskBase    = flag.Bool("task-baseline", true, "run the chat-to-task baseline (a plain SDK workflow with as many activities, same rate) before the bridge")
	baseLike    = flag.Bool("task-baseline-like", false, "the task baseline also takes two signals and upserts search attributes three times per workflow, as a conversation does")
	encryption  = flag.String("payload-encryption", "on", "PAYLOAD_ENCRYPTION of the bridge: on (the default, as in production) or off")
	encRounds   = flag.Int("encryption-rounds", 4, "rounds of the encryption scenario: each runs an ingestion round and a chat-to-task round with encryption on and with it off, on one bridge whose encryption is switched between turns, which setting goes first alternating")
	pollers     = flag.String("worker-pollers", "auto", "workflow and activity task pollers of the bridge's worker and of the task baseline's: auto (scaling, the bridge's default) or a fixed number of each (2 is the SDK's default)")
	memProfile  = flag.String("memprofile", "", "write a heap profile (in use, after GC) at each size of the memory scenario to this file, suffixed with the size (go tool pprof -sample_index=inuse_space -top)")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the scenarios (the whole process: bridge, embedded Temporal server, sandbox) to this file")
)

// setPollers applies -worker-pollers to a worker's options.
func setPollers(o *sdkworker.Options) {
	if *pollers == "auto" {
		return
	}
	n, err := strconv.Atoi(*pollers)
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "bench: bad -worker-pollers %q, keeping auto\n", *pollers)
		return
	}
	o.WorkflowTaskPollerBehavior = sdkworker.NewPollerBehaviorSimpleMaximum(sdkworker.PollerBehaviorSimpleMaximumOptions{MaximumNumberOfPollers: n})
	o.ActivityTaskPollerBehavior = sdkworker.NewPollerBehaviorSimpleMaximum(sdkworker.PollerBehaviorSimpleMaximumOptions{MaximumNumberOfPollers: n})
}

const sealKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// switchLimiter is the graph's planfix.Limiter: fast outside the burst, production's
// interval during it.
type switchLimiter struct {
	fast, prod planfix.Limiter
	prodFIFO   planfix.Limiter // prod, first come first served (the priorities scenario)
	useProd    atomic.Bool
	fifo       atomic.Bool
	waits      atomic.Int64 // Wait calls
	waited     atomic.Int64 // time spent in Wait, ns
}

func (l *switchLimiter) pick() planfix.Limiter {
	if l.useProd.Load() {
		if l.fifo.Load() {
			return l.prodFIFO
		}
		return l.prod
	}
	return l.fast
}
func (l *switchLimiter) Wait(ctx context.Context, a string) error {
	start := time.Now()
	err := l.pick().Wait(ctx, a)
	l.waits.Add(1)
	l.waited.Add(int64(time.Since(start)))
	return err
}

// waitStats returns the limiter's Wait calls and the time spent in them since the last
// call, and starts counting again.
func (l *switchLimiter) waitStats() (n int64, total time.Duration) {
	return l.waits.Swap(0), time.Duration(l.waited.Swap(0))
}
func (l *switchLimiter) Block(ctx context.Context, a string, until time.Time) error {
	return l.pick().Block(ctx, a, until)
}

type env struct {
	temporal    *devserver.Server
	tc          client.Client // the bench's own client (the baseline)
	sb          *sandbox.Server
	store       *postgres.IntegrationStore
	limiter     *switchLimiter
	db          *postgres.DB
	base        string // the API
	chatraHook  string
	planfixHook string
	taskQueue   string
	http        *http.Client
	run         string         // unique prefix of this run's chat ids
	payloads    *payloadSwitch // the bridge's encryption, switchable (the encryption scenario only)
}

// Result is one row of the table (and of the JSON).
type Result struct {
	Scenario string         `json:"scenario"`
	Metric   string         `json:"metric"`
	Value    float64        `json:"value"`
	Unit     string         `json:"unit"`
	Baseline *float64       `json:"baseline,omitempty"`
	Goal     string         `json:"goal,omitempty"`
	Met      *bool          `json:"met,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
}

var results []Result

func add(r Result) {
	results = append(results, r)
	fmt.Fprintf(os.Stderr, "  %-8s %-34s %12.2f %-6s %s\n", r.Scenario, r.Metric, r.Value, r.Unit, r.Goal)
}
func fp(v float64) *float64 { return &v }
func bp(v bool) *bool       { return &v }

func main() {
	flag.Parse()
	if *devChild != "" {
		if err := serveDevChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: devserver child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	started := time.Now()
	want := map[string]bool{}
	for _, s := range strings.Split(*scenarios, ",") {
		want[strings.TrimSpace(s)] = true
	}
	if want["devserver"] { // on servers of its own, first, while nothing else runs
		fmt.Fprintf(os.Stderr, "== devserver (load %s)\n", loadavg())
		if err := devServerScenario(ctx); err != nil {
			return fmt.Errorf("devserver: %w", err)
		}
		if len(want) == 1 {
			return finish(started)
		}
	}
	e := &env{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}}
	var b [4]byte
	_, _ = rand.Read(b[:])
	e.run = hex.EncodeToString(b[:])

	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: workflows.SearchAttributes()})
	if err != nil {
		return fmt.Errorf("temporal: %w", err)
	}
	defer srv.Stop()
	e.temporal = srv

	url, drop, err := scratchSchema(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer drop()

	e.sb = sandbox.New(sandbox.Options{PlanfixInterval: -1})
	if err := e.sb.Start("127.0.0.1:0"); err != nil {
		return err
	}
	defer e.sb.Close()

	switch *encryption {
	case "on", "off":
	default:
		return fmt.Errorf("-payload-encryption=%q: want on or off", *encryption)
	}
	stop, cfg, err := e.startBridge(ctx, url, *encryption == "on", want["encryption"])
	if err != nil {
		return err
	}
	defer stop()

	// The benchmark's own client reads the state the workers encrypted.
	keys, err := codec.ParseKeys(cfg.PayloadKey.Reveal(), cfg.SecretsKey.Reveal())
	if err != nil {
		return err
	}
	tcOpts := client.Options{HostPort: srv.Address(), Namespace: srv.Namespace(), Logger: slog.New(slog.DiscardHandler)}
	codec.Apply(&tcOpts, codec.New(keys, false))
	e.tc, err = client.Dial(tcOpts)
	if err != nil {
		return err
	}
	defer e.tc.Close()

	fmt.Fprintf(os.Stderr, "bench: %d CPUs (GOMAXPROCS %d), load %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), loadavg())
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"calls", e.calls}, {"task", e.chatToTask}, {"ingest", e.ingest}, {"burst", e.burst}, {"priorities", e.priorities}, {"memory", e.memory},
		{"encryption", e.encryptionCost},
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, st := range steps {
		if !want[st.name] {
			continue
		}
		e.settle(30 * time.Second)
		fmt.Fprintf(os.Stderr, "== %s (load %s)\n", st.name, loadavg())
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return finish(started)
}

// startBridge starts the bridge (the API and worker fx graph) on the schema url reaches,
// on a task queue of e.run, with the demo integration wired to the sandbox, and points e
// at it. encrypt is its PAYLOAD_ENCRYPTION; with switchable, the bench can turn it on and
// off while the bridge runs (e.payloads, the encryption scenario). It returns what stops
// it and its config.
func (e *env) startBridge(ctx context.Context, url string, encrypt, switchable bool) (func(), config.Config, error) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		return nil, cfg, err
	}
	e.taskQueue = "bench-" + e.run
	cfg.DatabaseURL, cfg.HTTPAddr, cfg.TaskQueue = secrets.String(url), "127.0.0.1:0", e.taskQueue
	cfg.AdminToken, cfg.SecretsKey = "bench-admin-token", sealKey
	cfg.WebhookMaxInFlight = 1024 // the benchmark measures throughput: the bound against abuse stays out of its way
	cfg.PayloadEncryption = encrypt

	var (
		s     *api.Server
		store *postgres.IntegrationStore
	)
	opts := client.Options{HostPort: e.temporal.Address(), Namespace: e.temporal.Namespace(), Logger: slog.New(slog.DiscardHandler)}
	switchOpt := fx.Options()
	if switchable {
		keys, err := codec.ParseKeys(cfg.PayloadKey.Reveal(), cfg.SecretsKey.Reveal())
		if err != nil {
			return nil, cfg, err
		}
		e.payloads = newPayloadSwitch(keys, encrypt)
		e.payloads.apply(&opts)
		// Without a codec in the graph, the client keeps the converters of opts (and the
		// API serves no codec server, which no scenario calls).
		switchOpt = fx.Decorate(func(*codec.Codec) *codec.Codec { return nil })
	}
	a := fx.New(
		app.Base(cfg, slog.New(slog.DiscardHandler), true),
		app.TemporalOptions(opts),
		switchOpt,
		app.Roles(app.Role{API: true, Worker: true}),
		fx.Decorate(func(db *postgres.DB) planfix.Limiter {
			// The fast limiter keeps first come, first served: the scenarios that use it
			// measure throughput, which priorities do not change (one account).
			e.limiter = &switchLimiter{fast: postgres.NewRateLimiter(db, *fastLimit).FirstComeFirstServed(),
				prod: postgres.NewRateLimiter(db, 0), prodFIFO: postgres.NewRateLimiter(db, 0).FirstComeFirstServed()}
			return e.limiter
		}),
		fx.Supply(bworker.Tuning(func(o *sdkworker.Options) { setPollers(o) })),
		fx.Populate(&s, &store, &e.db),
		fx.NopLogger,
	)
	if err := a.Start(ctx); err != nil {
		return nil, cfg, fmt.Errorf("app: %w", err)
	}
	stop := func() { _ = a.Stop(context.Background()) }
	e.store = store
	e.base = "http://" + s.Addr().String()

	tokens, _, err := app.EnsureDemoIntegration(ctx, store, e.sb.ChatraURL(), e.sb.PlanfixURL())
	if err != nil {
		stop()
		return nil, cfg, fmt.Errorf("integration: %w", err)
	}
	e.chatraHook, e.planfixHook = app.WebhookURLs(e.base, app.DemoIntegrationID, tokens)
	// Hundreds of new chats a second: far over an integration's default limit, which
	// is there against a leaked webhook URL, not against load.
	unlimited := chatrabridge.MaxOptionCount
	if _, err := store.UpdateIntegration(ctx, app.DemoIntegrationID, chatrabridge.IntegrationUpdate{
		Options: &chatrabridge.OptionsUpdate{NewConversationsPerMinute: &unlimited}}); err != nil {
		stop()
		return nil, cfg, fmt.Errorf("integration: %w", err)
	}
	return stop, cfg, nil
}

// finish prints the table and writes the JSON.
func finish(started time.Time) error {
	printTable(os.Stdout)
	if *outFile != "" {
		out := map[string]any{
			"started": started.UTC(), "duration": time.Since(started).Round(time.Second).String(),
			"cpus": runtime.NumCPU(), "go": runtime.Version(), "loadavg_end": loadavg(),
			"flags": flagValues(), "results": results,
		}
		data, _ := json.MarshalIndent(out, "", "  ")
		if err := os.MkdirAll(filepath.Dir(*outFile), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(*outFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func flagValues() map[string]string {
	m := map[string]string{}
	flag.VisitAll(func(f *flag.Flag) {
		if f.Name != "db" {
			m[f.Name] = f.Value.String()
		}
	})
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// scratchSchema makes a fresh, migrated schema in the database and returns a URL that
// reaches it and a func that drops it.
func scratchSchema(ctx context.Context, base string) (string, func(), error) {
	if err := postgres.EnsureDatabase(ctx, base); err != nil {
		return "", nil, fmt.Errorf("database: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, drop, nil // the app migrates it
}

// settleQuiet is how long Planfix must have been quiet for the bridge to be idle: longer
// than the comment lane's reorder window (2 s of a quiet chat, workflows' reorderQuiet),
// during which messages wait without a request.
const settleQuiet = 3 * time.Second

// settle waits until the sandbox's Planfix has had no request for settleQuiet (the
// previous scenario's conversations are done), at most max.
func (e *env) settle(max time.Duration) {
	deadline := time.Now().Add(max)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		n := e.sb.RequestCounts()[sandbox.TargetPlanfix].Total
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > settleQuiet {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- payloads ----

type msg struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	Text         string `json:"text"`
	CreatedAt    int64  `json:"createdAt,omitempty"`
	ReceivedFrom string `json:"receivedFrom,omitempty"`
}

func chatraBody(event, chatID, name string, msgs []msg) []byte {
	if msgs == nil {
		msgs = []msg{}
	}
	b, _ := json.Marshal(map[string]any{
		"eventName": event, "messages": msgs,
		"client": map[string]any{"id": "V-" + chatID, "chatId": chatID, "name": name},
	})
	return b
}

func (e *env) post(url string, body []byte) (int, error) {
	resp, err := e.http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (e *env) chatra(event, chatID string, msgs []msg) error {
	// The visitor's card exists in Chatra, as it would for a real chat: replies go to it.
	if err := e.sb.Chatra().PutClient(chatra.ClientCard{ID: "V-" + chatID, ChatID: chatID, Name: customer(chatID)}); err != nil {
		return err
	}
	code, err := e.post(e.chatraHook, chatraBody(event, chatID, customer(chatID), msgs))
	if err == nil && code != 200 {
		err = fmt.Errorf("chatra webhook %s %s: HTTP %d", event, chatID, code)
	}
	return err
}

// customer is the visitor name of a chat; the task is "Chat with <it> on ...".
func customer(chatID string) string { return "C" + chatID }

// taskOf finds the task of a chat in the sandbox by its name.
func taskOf(tasks []sandbox.PlanfixTask, chatID string) (sandbox.PlanfixTask, bool) {
	needle := " " + customer(chatID) + " "
	for _, t := range tasks {
		if strings.Contains(t.Name, needle) {
			return t, true
		}
	}
	return sandbox.PlanfixTask{}, false
}

// ---- statistics ----

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ---- 1. ingestion ----

// ingestRound is one round of ingestion: *ingestN messages, one per request, over
// *ingestChats chats (ids e.run-<tag>-<n>) from *ingestConc senders, as chatFragment
// webhooks (hook) or as the SignalWithStart calls the API would make for them, from the
// bench's own client.
type ingestResult struct {
	ok, errs int
	took     time.Duration
	lat      []time.Duration
}

func (e *env) ingestRound(ctx context.Context, hook bool, tag string) ingestResult {
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	res := ingestResult{lat: make([]time.Duration, 0, *ingestN)}
	start := time.Now()
	for w := 0; w < *ingestConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *ingestN {
					return
				}
				chatID := fmt.Sprintf("%s-%s-%d", e.run, tag, i%*ingestChats)
				m := []msg{{ID: fmt.Sprintf("m%d", i), Type: "client", Text: fmt.Sprintf("message %d", i), CreatedAt: time.Now().UnixMilli()}}
				t0 := time.Now()
				var err error
				if hook {
					err = e.chatra("chatFragment", chatID, m)
				} else {
					err = e.signalWithStart(ctx, chatID, m)
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.errs++
				} else {
					res.lat = append(res.lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.took = time.Since(start)
	res.ok = len(res.lat)
	return res
}

// throughput is the round's accepted requests per second.
func (r ingestResult) throughput() float64 { return float64(r.ok) / r.took.Seconds() }

// ingest sends chatFragment webhooks (one visitor message each) over many chats with
// ingestConc senders, and as many SignalWithStart calls with the signal the API would
// send, in alternating rounds.
func (e *env) ingest(ctx context.Context) error {
	var hook, raw ingestResult
	for r := 0; r < *ingestRound; r++ {
		order := []string{"r", "h"} // baseline first in even rounds, webhooks first in odd ones
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, kind := range order {
			got := e.ingestRound(ctx, kind == "h", fmt.Sprintf("i%s%d", kind, r))
			target := &raw
			if kind == "h" {
				target = &hook
			}
			target.ok += got.ok
			target.errs += got.errs
			target.took += got.took
			target.lat = append(target.lat, got.lat...)
			fmt.Fprintf(os.Stderr, "  round %d %-8s %d ok, %d errors in %v (load %s)\n", r, map[string]string{"h": "webhook", "r": "baseline"}[kind], got.ok, got.errs, got.took.Round(time.Millisecond), loadavg())
			e.settle(20 * time.Second)
		}
	}
	rawTP := raw.throughput()
	hookTP := hook.throughput()
	add(Result{Scenario: "ingest", Metric: "baseline SignalWithStart throughput", Value: rawTP, Unit: "req/s", Extra: map[string]any{"errors": raw.errs, "n": raw.ok}})
	add(Result{Scenario: "ingest", Metric: "baseline p50", Value: ms(pct(raw.lat, .5)), Unit: "ms"})
	add(Result{Scenario: "ingest", Metric: "baseline p99", Value: ms(pct(raw.lat, .99)), Unit: "ms"})
	add(Result{Scenario: "ingest", Metric: "webhook throughput", Value: hookTP, Unit: "req/s", Extra: map[string]any{"errors": hook.errs, "n": hook.ok}})
	add(Result{Scenario: "ingest", Metric: "webhook ack p50", Value: ms(pct(hook.lat, .5)), Unit: "ms", Baseline: fp(ms(pct(raw.lat, .5)))})
	add(Result{Scenario: "ingest", Metric: "webhook ack p99", Value: ms(pct(hook.lat, .99)), Unit: "ms", Baseline: fp(ms(pct(raw.lat, .99)))})
	tpRatio := 100 * hookTP / rawTP
	add(Result{Scenario: "ingest", Metric: "throughput vs baseline", Value: tpRatio, Unit: "%", Baseline: fp(100), Goal: ">= 90%", Met: bp(tpRatio >= 90)})
	p99Ratio := float64(pct(hook.lat, .99)) / float64(pct(raw.lat, .99))
	add(Result{Scenario: "ingest", Metric: "p99 vs baseline", Value: p99Ratio, Unit: "x", Baseline: fp(1), Goal: "<= 1.5x", Met: bp(p99Ratio <= 1.5)})
	return nil
}

// signalWithStart is what the API does for a chatFragment, from a plain client: one
// SignalWithStart of the message signal with the same options.
func (e *env) signalWithStart(ctx context.Context, chatID string, m []msg) error {
	id := workflows.ConversationWorkflowID(app.DemoIntegrationID, chatID)
	msgs := make([]workflows.Message, len(m))
	for i, x := range m {
		msgs[i] = workflows.Message{ID: x.ID, Type: x.Type, Text: x.Text, Time: time.UnixMilli(x.CreatedAt).UTC()}
	}
	sig := workflows.MessageSignal{Key: "chatFragment:" + chatID + "/" + m[0].ID + "/message", ClientID: "V-" + chatID,
		Messages: msgs, Visitor: &workflows.VisitorInfo{Name: customer(chatID)}}
	_, err := e.tc.SignalWithStartWorkflow(ctx, id, workflows.SignalMessage, sig, client.StartWorkflowOptions{
		ID: id, TaskQueue: e.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            "Chat with " + customer(chatID) + " on demo",
	}, workflows.ConversationWorkflowName, workflows.ConversationInput{IntegrationID: app.DemoIntegrationID, ChatID: chatID, ClientID: "V-" + chatID})
	return err
}

// ---- 2. chat to task ----

func (e *env) chatToTask(ctx context.Context) error {
	var base []time.Duration
	baseMissing := 0
	if *taskBase {
		var err error
		if base, baseMissing, err = e.taskBaseline(ctx, *taskRate, *taskFor); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		fmt.Fprintf(os.Stderr, "  task baseline: p50 %.1f ms, p99 %.1f ms, max %.1f ms, missing %d (load %s)\n",
			ms(pct(base, .5)), ms(pct(base, .99)), ms(pct(base, 1)), baseMissing, loadavg())
		time.Sleep(3 * time.Second) // its last activities
	}
	e.limiter.waitStats()
	pfBefore := e.sb.RequestCounts()[sandbox.TargetPlanfix].Total
	lat, ids, left, failed, elapsed := e.taskRound("t")
	n := len(ids)
	waits, waited := e.limiter.waitStats()
	pfSpent := e.sb.RequestCounts()[sandbox.TargetPlanfix].Total - pfBefore
	var meanWait time.Duration
	if waits > 0 {
		meanWait = waited / time.Duration(waits)
	}
	limiterStats := map[string]any{
		"planfix_requests": pfSpent, "limiter_waits": waits, "limiter_wait_mean_ms": ms(meanWait),
		"planfix_requests_per_s": float64(pfSpent) / elapsed.Seconds(), "until_last_task": elapsed.Round(time.Millisecond).String(),
		"load": loadavg(),
	}
	fmt.Fprintf(os.Stderr, "  task: %v\n", limiterStats)
	time.Sleep(2 * time.Second) // the first chat's setup is done
	limiterStats["history_of_first_chat"] = e.historyCounts(ctx, workflows.ConversationWorkflowID(app.DemoIntegrationID, ids[0]))
	if *taskBase {
		limiterStats["history_of_first_baseline"] = e.historyCounts(ctx, fmt.Sprintf("bench-baseline/%s-t0", e.run))
	}
	fmt.Fprintf(os.Stderr, "  histories: %v\n  %v\n", limiterStats["history_of_first_chat"], limiterStats["history_of_first_baseline"])
	p99 := pct(lat, .99)
	var bp50, bp99, bmax *float64
	if *taskBase {
		bp50, bp99, bmax = fp(ms(pct(base, .5))), fp(ms(pct(base, .99))), fp(ms(pct(base, 1)))
	}
	add(Result{Scenario: "task", Metric: fmt.Sprintf("chats started (%d/s for %v)", *taskRate, *taskFor), Value: float64(n), Unit: "chats", Extra: map[string]any{"webhook_failures": failed, "tasks_missing": left, "baseline_missing": baseMissing, "limiter": limiterStats}})
	add(Result{Scenario: "task", Metric: "chatStarted -> task p50", Value: ms(pct(lat, .5)), Unit: "ms", Baseline: bp50})
	add(Result{Scenario: "task", Metric: "chatStarted -> task p99", Value: ms(p99), Unit: "ms", Baseline: bp99, Goal: "< 250 ms", Met: bp(left == 0 && p99 < 250*time.Millisecond)})
	add(Result{Scenario: "task", Metric: "chatStarted -> task max", Value: ms(pct(lat, 1)), Unit: "ms", Baseline: bmax})
	return nil
}

// taskRound starts *taskRate new chats a second for *taskFor (ids e.run-<tag><n>), each
// a chatStarted webhook with one visitor message, and waits (2 minutes at most) for their
// tasks in the sandbox's Planfix. It returns the latencies from each webhook to the
// Created time of its chat's task, the chats, how many tasks did not come, how many
// webhooks failed, and the time from the first webhook until the last task.
func (e *env) taskRound(tag string) (lat []time.Duration, ids []string, missing int, failed int64, elapsed time.Duration) {
	n := int(float64(*taskRate) * taskFor.Seconds())
	sent := make([]time.Time, n)
	seen := make([]time.Duration, n)
	ids = make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%s%d", e.run, tag, i)
	}
	var wg sync.WaitGroup
	var fails atomic.Int64
	began := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(*taskRate))
	for i := 0; i < n; i++ {
		<-tick.C
		sent[i] = time.Now()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := e.chatra("chatStarted", ids[i], []msg{{ID: "s1", Type: "client", Text: "hello from " + ids[i], CreatedAt: time.Now().UnixMilli()}}); err != nil {
				fails.Add(1)
			}
		}(i)
	}
	tick.Stop()
	// Poll the sandbox's tasks (the stand-in records Created, so the poll's period does
	// not count). A task is found by the customer's name in its own ("Chat with <it> on
	// ..."): a map, as the sandbox holds the tasks of every scenario before.
	index := make(map[string]int, n)
	for i, id := range ids {
		index[customer(id)] = i
	}
	deadline := time.Now().Add(2 * time.Minute)
	left := n
	for left > 0 && time.Now().Before(deadline) {
		for _, t := range e.sb.Planfix().Tasks() {
			for _, word := range strings.Fields(t.Name) {
				if i, ok := index[word]; ok && seen[i] == 0 {
					seen[i] = t.Created.Sub(sent[i])
					left--
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	elapsed = time.Since(began)
	for _, d := range seen {
		if d != 0 {
			lat = append(lat, d)
		}
	}
	return lat, ids, left, fails.Load(), elapsed
}

// ---- 3. Planfix calls ----

func (e *env) calls(ctx context.Context) error {
	for _, f := range strings.Split(*callsN, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -calls-n %q", f)
		}
		e.settle(15 * time.Second)
		chatID := fmt.Sprintf("%s-c%d", e.run, n)
		before := len(e.sb.Planfix().RequestLog())
		chatraBefore := e.sb.Chatra().RequestCount()
		if err := e.chatra("chatStarted", chatID, nil); err != nil {
			return err
		}
		var all []msg
		for i := 1; i <= n; i++ {
			m := msg{ID: fmt.Sprintf("v%d", i), Type: "client", Text: fmt.Sprintf("visitor message %d of %s", i, chatID), CreatedAt: time.Now().UnixMilli()}
			all = append(all, m)
			if err := e.chatra("chatFragment", chatID, []msg{m}); err != nil {
				return err
			}
		}
		var task sandbox.PlanfixTask
		if err := waitFor(60*time.Second, func() bool {
			t, ok := taskOf(e.sb.Planfix().Tasks(), chatID)
			task = t
			return ok && strings.Contains(e.taskText(t.ID), all[n-1].Text)
		}); err != nil {
			return fmt.Errorf("N=%d: messages in task: %w", n, err)
		}
		// The store knows the task's conversation (else the webhook is answered "ignored").
		t0 := time.Now()
		if err := waitFor(60*time.Second, func() bool {
			_, err := e.db.FindConversationByTask(ctx, app.DemoIntegrationID, task.ID)
			return err == nil
		}); err != nil {
			return fmt.Errorf("N=%d: conversation of task %d in the store: %w", n, task.ID, err)
		}
		storeLag := time.Since(t0)
		// An employee replies in the task; Planfix's automation calls our webhook.
		reply := "employee reply to " + chatID
		cid, err := e.sb.Planfix().AddComment(sandbox.PlanfixComment{TaskID: task.ID, Owner: "user:5", Description: reply})
		if err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]int64{"taskId": task.ID, "commentId": cid})
		resp, err := e.http.Post(e.planfixHook, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(answer, []byte(`"ok":true`)) {
			return fmt.Errorf("planfix webhook: %d %s", resp.StatusCode, answer)
		}
		var sent chatra.Message
		if err := waitFor(60*time.Second, func() bool {
			for _, m := range e.sb.Chatra().Messages() {
				if strings.Contains(m.Text, reply) {
					sent = m
					return true
				}
			}
			return false
		}); err != nil {
			e.dump(ctx, chatID)
			return fmt.Errorf("N=%d: reply in chat: %w", n, err)
		}
		// The transcript carries the reply as Chatra has it: with the id Chatra gave it and
		// the bridge's receivedFrom tag (a made-up id without the tag would be taken for a
		// message an agent typed in the Chatra app, and cost a task comment).
		transcript := append(slices.Clone(all), msg{ID: sent.ID, Type: "agent", Text: sent.Text,
			CreatedAt: sent.CreatedAt.UnixMilli(), ReceivedFrom: sent.ReceivedFrom})
		if err := e.chatra("chatTranscript", chatID, transcript); err != nil {
			return err
		}
		if err := waitFor(60*time.Second, func() bool {
			t, _ := e.sb.Planfix().Task(task.ID)
			return t.StatusID == sandbox.PlanfixStatusCompleted
		}); err != nil {
			return fmt.Errorf("N=%d: task completed: %w", n, err)
		}
		e.settle(10 * time.Second)
		log := e.sb.Planfix().RequestLog()[before:]
		var paths []string
		for _, r := range log {
			paths = append(paths, r.Method+" "+r.Path)
		}
		spent := len(log)
		add(Result{Scenario: "calls", Metric: fmt.Sprintf("Planfix requests, N=%d", n), Value: float64(spent), Unit: "req",
			Goal: fmt.Sprintf("<= %d", n+6), Met: bp(spent <= n+6),
			Extra: map[string]any{"requests": paths, "chatra_requests": e.sb.Chatra().RequestCount() - chatraBefore, "store_lag_after_message_in_task": storeLag.String()}})
	}
	return nil
}

// dump prints a conversation's state and the sandbox's last requests (a scenario failed).
func (e *env) dump(ctx context.Context, chatID string) {
	v, err := e.tc.QueryWorkflow(ctx, workflows.ConversationWorkflowID(app.DemoIntegrationID, chatID), "", workflows.QueryState)
	var st any
	if err == nil {
		err = v.Get(&st)
	}
	b, _ := json.Marshal(st)
	fmt.Fprintf(os.Stderr, "  state of %s: %s %v\n", chatID, b, err)
	log := e.sb.Planfix().RequestLog()
	for _, r := range log[max(0, len(log)-15):] {
		fmt.Fprintf(os.Stderr, "  planfix %s %s %d\n", r.Method, r.Path, r.Status)
	}
	fmt.Fprintf(os.Stderr, "  chatra requests %d, messages %d\n", e.sb.Chatra().RequestCount(), len(e.sb.Chatra().Messages()))
}

// taskText is the task's description and comments, to look for messages in.
func (e *env) taskText(id int64) string {
	t, _ := e.sb.Planfix().Task(id)
	var b strings.Builder
	b.WriteString(t.Description)
	for _, c := range e.sb.Planfix().Comments(id) {
		b.WriteString("\n")
		b.WriteString(c.Description)
	}
	return b.String()
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// ---- 4. rate-limited burst ----

func (e *env) burst(ctx context.Context) error {
	e.limiter.useProd.Store(true)
	e.sb.Planfix().SetRateInterval(time.Second)
	defer func() {
		e.sb.Planfix().SetRateInterval(0)
		e.limiter.useProd.Store(false)
	}()
	before := len(e.sb.Planfix().RequestLog())
	chats, per := *burstChats, *burstMsgs
	total := chats * per
	ids := make([]string, chats)
	texts := make([][]string, chats)
	for c := range ids {
		ids[c] = fmt.Sprintf("%s-b%d", e.run, c)
		for m := 0; m < per; m++ {
			texts[c] = append(texts[c], fmt.Sprintf("burst %s message %d", ids[c], m))
		}
	}
	// Message m of every chat goes out in slot m: chats*per webhooks over the window.
	gap := *burstWindow / time.Duration(total)
	start := time.Now()
	var failed atomic.Int64
	var wg sync.WaitGroup
	k := 0
	for m := 0; m < per; m++ {
		for c := 0; c < chats; c++ {
			time.Sleep(time.Until(start.Add(time.Duration(k) * gap)))
			k++
			ev := "chatFragment"
			if m == 0 {
				ev = "chatStarted"
			}
			wg.Add(1)
			go func(c, m int, ev string) {
				defer wg.Done()
				mm := []msg{{ID: fmt.Sprintf("b%d", m), Type: "client", Text: texts[c][m], CreatedAt: time.Now().UnixMilli()}}
				if err := e.chatra(ev, ids[c], mm); err != nil {
					failed.Add(1)
				}
			}(c, m, ev)
		}
	}
	wg.Wait()
	sentIn := time.Since(start)
	fmt.Fprintf(os.Stderr, "  %d webhooks sent in %v (%d failed); waiting for delivery\n", total, sentIn.Round(time.Millisecond), failed.Load())
	delivered := 0
	var last time.Duration
	deadline := time.Now().Add(*burstWait)
	nextLog := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		tasks := e.sb.Planfix().Tasks()
		delivered = 0
		for c := range ids {
			t, ok := taskOf(tasks, ids[c])
			if !ok {
				continue
			}
			text := e.taskText(t.ID)
			for _, s := range texts[c] {
				if strings.Contains(text, s) { // "message 0".."message 9": no text is a prefix of another
					delivered++
				}
			}
		}
		if delivered >= total {
			last = time.Since(start)
			break
		}
		if time.Now().After(nextLog) {
			fmt.Fprintf(os.Stderr, "  %d/%d delivered after %v, %d Planfix requests (load %s)\n", delivered, total, time.Since(start).Round(time.Second), len(e.sb.Planfix().RequestLog())-before, loadavg())
			nextLog = time.Now().Add(15 * time.Second)
		}
		time.Sleep(250 * time.Millisecond)
	}
	log := e.sb.Planfix().RequestLog()[before:]
	rejected := 0
	for _, r := range log {
		if r.Status == http.StatusTooManyRequests {
			rejected++
		}
	}
	ok := delivered >= total
	add(Result{Scenario: "burst", Metric: fmt.Sprintf("messages delivered (%dx%d)", chats, per), Value: float64(delivered), Unit: "msgs", Baseline: fp(float64(total)),
		Goal: "all", Met: bp(ok), Extra: map[string]any{"webhook_failures": failed.Load(), "sent_in": sentIn.String()}})
	add(Result{Scenario: "burst", Metric: "Planfix 429s (rate limit)", Value: float64(rejected), Unit: "req", Goal: "0", Met: bp(rejected == 0)})
	if ok {
		add(Result{Scenario: "burst", Metric: "time until last message lands", Value: last.Seconds(), Unit: "s"})
	} else {
		add(Result{Scenario: "burst", Metric: "gave up waiting after", Value: time.Since(start).Seconds(), Unit: "s"})
	}
	add(Result{Scenario: "burst", Metric: "Planfix requests spent", Value: float64(len(log)), Unit: "req", Baseline: fp(float64(total)),
		Goal: fmt.Sprintf("<< %d (coalescing)", total), Met: bp(len(log) < total/2)})
	return nil
}

// ---- 5. memory ----

func heap() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// heapShares estimates the heap in use by part of the process from the runtime's heap
// profile (as of the last GC; sampled, scaled as pprof scales it): "server" for
// allocations under the embedded Temporal server's code, "worker" for those under the
// SDK's or the bridge's workflow and activity code, "other" for the rest (the sandbox,
// the API, metrics, the runtime). The bench's process holds all of them; in production
// the worker is a process of its own and the server runs elsewhere.
func heapShares() map[string]float64 {
	heap() // two GCs: the profile then describes the heap as it is now
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	out := map[string]float64{}
	for _, r := range recs {
		inuse := float64(r.AllocBytes - r.FreeBytes)
		objects := float64(r.AllocObjects - r.FreeObjects)
		if inuse <= 0 || objects <= 0 {
			continue
		}
		if rate > 1 { // the sampling's correction, as in pprof
			inuse /= 1 - math.Exp(-(inuse/objects)/rate)
		}
		part := "other"
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			switch fn := f.Function; {
			case strings.HasPrefix(fn, "go.temporal.io/server/"):
				part = "server"
			case part == "other" && (strings.HasPrefix(fn, "go.temporal.io/sdk/") ||
				strings.Contains(fn, "chatrabridge/workflows.") || strings.Contains(fn, "chatrabridge/activities.")):
				part = "worker"
			}
			if part == "server" || !more {
				break
			}
		}
		out[part] += inuse
	}
	return out
}

func (e *env) memory(ctx context.Context) error {
	prev := 0
	tasksBefore := len(e.sb.Planfix().Tasks())
	baseShares := heapShares()
	base := heap()
	add(Result{Scenario: "memory", Metric: "heap before (whole process)", Value: float64(base) / (1 << 20), Unit: "MiB"})
	for _, f := range strings.Split(*memSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= prev {
			return fmt.Errorf("bad -memory-sizes %q (increasing counts)", f)
		}
		start := time.Now()
		var next atomic.Int64
		next.Store(int64(prev))
		var wg sync.WaitGroup
		var failed atomic.Int64
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					chatID := fmt.Sprintf("%s-m%d", e.run, i)
					id := workflows.ConversationWorkflowID(app.DemoIntegrationID, chatID)
					_, err := e.tc.SignalWithStartWorkflow(ctx, id, workflows.SignalVisitorInfo,
						workflows.VisitorInfoSignal{Key: "chatStarted:" + chatID + "/visitor-info", ClientID: "V-" + chatID, Started: true, Visitor: workflows.VisitorInfo{Name: customer(chatID)}},
						client.StartWorkflowOptions{ID: id, TaskQueue: e.taskQueue,
							WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
						workflows.ConversationWorkflowName, workflows.ConversationInput{IntegrationID: app.DemoIntegrationID, ChatID: chatID, ClientID: "V-" + chatID})
					if err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		startedIn := time.Since(start)
		// Idle means set up: wait until every conversation has its task in Planfix (the
		// first episode's activities done), then until Planfix is quiet, then measure.
		setUp := time.Now()
		for len(e.sb.Planfix().Tasks()) < tasksBefore+n-int(failed.Load()) && time.Since(setUp) < *memWait {
			time.Sleep(time.Second)
		}
		e.settle(5 * time.Minute)
		time.Sleep(3 * time.Second)
		h := heap()
		if *memProfile != "" {
			if err := writeHeapProfile(fmt.Sprintf("%s.%d", *memProfile, n)); err != nil {
				return err
			}
		}
		per := (float64(h) - float64(base)) / float64(n)
		shares := heapShares()
		perShare := map[string]float64{}
		for k, v := range shares {
			perShare[k+"_kib_per_conversation"] = (v - baseShares[k]) / float64(n) / 1024
		}
		add(Result{Scenario: "memory", Metric: fmt.Sprintf("heap with %d idle conversations", n), Value: float64(h) / (1 << 20), Unit: "MiB",
			Extra: map[string]any{"start_failures": failed.Load(), "started_in": startedIn.String(), "set_up_in": time.Since(start).String(),
				"conversations_with_task": len(e.sb.Planfix().Tasks()) - tasksBefore, "heap_profile_shares": perShare}})
		add(Result{Scenario: "memory", Metric: fmt.Sprintf("whole process, per conversation, %d open", n), Value: per / 1024, Unit: "KiB"})
		add(Result{Scenario: "memory", Metric: fmt.Sprintf("embedded server's share, per conversation, %d", n), Value: perShare["server_kib_per_conversation"], Unit: "KiB"})
		worker := perShare["worker_kib_per_conversation"]
		add(Result{Scenario: "memory", Metric: fmt.Sprintf("worker's share, per conversation, %d open", n), Value: worker, Unit: "KiB", Goal: "<= 64 KiB", Met: bp(worker <= 64)})
		prev = n
	}
	return nil
}

func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// ---- output ----

func printTable(w io.Writer) {
	fmt.Fprintf(w, "\n%-8s | %-38s | %12s | %-6s | %10s | %-20s | %s\n", "scenario", "metric", "value", "unit", "baseline", "goal", "met")
	fmt.Fprintln(w, strings.Repeat("-", 118))
	for _, r := range results {
		b, met := "", ""
		if r.Baseline != nil {
			b = strconv.FormatFloat(*r.Baseline, 'f', 2, 64)
		}
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		fmt.Fprintf(w, "%-8s | %-38s | %12.2f | %-6s | %10s | %-20s | %s\n", r.Scenario, r.Metric, r.Value, r.Unit, b, r.Goal, met)
	}
}
