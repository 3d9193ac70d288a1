package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/chatrabridge/chatrabridge/internal/devserver"
)

// The devserver scenario: raw SignalWithStart throughput of `chatrabridge dev`'s embedded
// server against `temporal server start-dev` in memory, alternating rounds in the same
// run, for each store of -devserver-stores: sqlite (the file dev uses), postgres
// (databases of their own on -db's server, dropped at the end) and memory (SQLite in
// memory, as start-dev). Every server is a process of its own. No worker runs: the
// signals and starts are all the servers do.

var (
	devN      = flag.Int("devserver-n", 2000, "SignalWithStart calls per round of the devserver scenario")
	devConc   = flag.Int("devserver-concurrency", 16, "concurrent callers in the devserver scenario")
	devRounds = flag.Int("devserver-rounds", 2, "rounds of each server in the devserver scenario")
	devCLI    = flag.String("temporal-cli", "temporal", "the temporal CLI whose start-dev is the devserver scenario's baseline")
	devStores = flag.String("devserver-stores", "sqlite,postgres,memory", "the embedded server's stores the devserver scenario measures: sqlite (a file), postgres (on -db's server), memory (SQLite in memory, as start-dev: what the store costs apart from the rest)")
)

// devSide is one server of the devserver scenario.
type devSide struct {
	name   string
	client client.Client
	rounds []float64
}

func devServerScenario(ctx context.Context) error {
	port, err := freeTCPPort()
	if err != nil {
		return err
	}
	cli := exec.CommandContext(ctx, *devCLI, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--port", strconv.Itoa(port), "--log-level", "error")
	cli.Stderr = os.Stderr // its stdout only says where its metrics are
	if err := cli.Start(); err != nil {
		return fmt.Errorf("start %s server start-dev (install it: go install github.com/temporalio/cli/cmd/temporal@v1.5.1): %w", *devCLI, err)
	}
	defer func() { _ = cli.Process.Kill(); _ = cli.Wait() }()
	startDev, err := dialWait(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("temporal server start-dev: %w", err)
	}
	defer startDev.Close()
	sides := []*devSide{{name: "start-dev (in memory)", client: startDev}}

	for _, store := range strings.Split(*devStores, ",") {
		store = strings.TrimSpace(store)
		var at string
		switch store {
		case "sqlite":
			dir, err := os.MkdirTemp("", "bench-devserver-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			at = dir
		case "memory":
		case "postgres":
			u, drop, err := scratchDatabase(ctx, *dbURL)
			if err != nil {
				return err
			}
			defer drop()
			at = u
		default:
			return fmt.Errorf("-devserver-stores: unknown store %q (sqlite, postgres, memory)", store)
		}
		addr, stop, err := startDevChild(ctx, store, at)
		if err != nil {
			return fmt.Errorf("embedded server on %s: %w", store, err)
		}
		defer stop() // before the database is dropped: defers run last first
		c, err := dialWait(ctx, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		sides = append(sides, &devSide{name: "dev (" + store + ")", client: c})
	}

	// Each round starts one server later than the one before: a server goes on working
	// for a while after its calls (visibility, the tasks its signals made), which the
	// server measured next pays for, so no server is always the one after another.
	for r := range *devRounds {
		line := fmt.Sprintf("  round %d:", r+1)
		for k := range sides {
			i := (r + k) % len(sides)
			side := sides[i]
			v, err := signalRound(ctx, side.client, fmt.Sprintf("s%d-r%d", i, r))
			if err != nil {
				return fmt.Errorf("%s round: %w", side.name, err)
			}
			side.rounds = append(side.rounds, v)
			line += fmt.Sprintf(" %s %.1f/s,", side.name, v)
		}
		fmt.Fprintln(os.Stderr, strings.TrimSuffix(line, ","))
	}
	b := mean(sides[0].rounds)
	add(Result{Scenario: "devserver", Metric: sides[0].name + " SignalWithStart", Value: b, Unit: "req/s", Extra: map[string]any{"rounds": sides[0].rounds}})
	for _, side := range sides[1:] {
		m := mean(side.rounds)
		add(Result{Scenario: "devserver", Metric: side.name + " SignalWithStart", Value: m, Unit: "req/s", Baseline: fp(b), Extra: map[string]any{"rounds": side.rounds}})
		add(Result{Scenario: "devserver", Metric: side.name + " vs start-dev", Value: 100 * m / b, Unit: "%", Baseline: fp(100), Goal: "≥ 90%", Met: bp(m >= 0.9*b)})
	}
	return nil
}

// startDevChild runs the embedded server on store in a process of its own, as
// `chatrabridge dev` runs it and as start-dev runs, so that no two servers of the
// scenario share a Go runtime and the callers do not share the server's: this binary
// again with -devserver-child. It returns the server's address and a function that
// stops the process.
func startDevChild(ctx context.Context, store, at string) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-devserver-child", store, "-devserver-child-at", at)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { // stdin closed: the child stops its server and exits
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("the server's process said no address: %w", err)
	}
	return strings.TrimSpace(addr), stop, nil
}

var (
	devChild   = flag.String("devserver-child", "", "(the devserver scenario's own use) serve one embedded server on this store, print its address, stop at the end of stdin")
	devChildAt = flag.String("devserver-child-at", "", "(with -devserver-child) the SQLite data directory or the PostgreSQL URL")
)

// serveDevChild is the process startDevChild starts.
func serveDevChild() error {
	o := devserver.Options{}
	switch *devChild {
	case "sqlite":
		o.DataDir = *devChildAt
	case "postgres":
		o.Postgres = *devChildAt
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := devserver.Start(ctx, o)
	cancel()
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Println(srv.Address())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// scratchDatabase returns the URL of a database of base's server, named for this run, and
// a function that drops it and its visibility database (the embedded server makes both).
func scratchDatabase(ctx context.Context, base string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("-db: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "bench_temporal_" + hex.EncodeToString(b[:])
	u.Path = "/" + name
	admin := *u
	admin.Path = "/postgres"
	drop := func() {
		conn, err := pgx.Connect(context.Background(), admin.String())
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop %s: %v\n", name, err)
			return
		}
		defer conn.Close(context.Background())
		for _, db := range []string{name, name + "_visibility"} {
			if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
				fmt.Fprintf(os.Stderr, "bench: drop %s: %v\n", db, err)
			}
		}
	}
	return u.String(), drop, nil
}

// signalRound makes *devN SignalWithStart calls over *devN/10 workflows from *devConc
// callers and returns the calls per second.
func signalRound(ctx context.Context, c client.Client, prefix string) (float64, error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	wfs := max(*devN/10, 1)
	began := time.Now()
	for range *devConc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*devN) {
					return
				}
				id := fmt.Sprintf("bench-%s-%d", prefix, i%int64(wfs))
				_, err := c.SignalWithStartWorkflow(ctx, id, "message", i, client.StartWorkflowOptions{
					ID: id, TaskQueue: "bench-devserver",
					WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				}, "BenchWorkflow")
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(*devN) / time.Since(began).Seconds(), nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// dialWait dials addr until the server answers (a minute at most).
func dialWait(ctx context.Context, addr string) (client.Client, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("no answer at " + addr + " within a minute: " + err.Error())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
