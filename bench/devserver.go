package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/chatrabridge/chatrabridge/internal/devserver"
)

// The devserver scenario: raw SignalWithStart throughput of `chatrabridge dev`'s embedded
// server (SQLite file, as dev runs it) against `temporal server start-dev` in memory,
// alternating rounds in the same run. No worker runs: the signals and starts are all
// the servers do.

var (
	devN      = flag.Int("devserver-n", 2000, "SignalWithStart calls per round of the devserver scenario")
	devConc   = flag.Int("devserver-concurrency", 16, "concurrent callers in the devserver scenario")
	devRounds = flag.Int("devserver-rounds", 2, "rounds of each server in the devserver scenario")
	devCLI    = flag.String("temporal-cli", "temporal", "the temporal CLI whose start-dev is the devserver scenario's baseline")
)

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

	dir, err := os.MkdirTemp("", "bench-devserver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := devserver.Start(ctx, devserver.Options{DataDir: dir})
	if err != nil {
		return fmt.Errorf("embedded server: %w", err)
	}
	defer srv.Stop()
	dev, err := dialWait(ctx, srv.Address())
	if err != nil {
		return err
	}
	defer dev.Close()

	var base, mine []float64
	for r := range *devRounds {
		b, err := signalRound(ctx, startDev, fmt.Sprintf("cli%d", r))
		if err != nil {
			return fmt.Errorf("start-dev round: %w", err)
		}
		m, err := signalRound(ctx, dev, fmt.Sprintf("dev%d", r))
		if err != nil {
			return fmt.Errorf("dev round: %w", err)
		}
		fmt.Fprintf(os.Stderr, "  round %d: start-dev in memory %.1f/s, dev (SQLite file) %.1f/s\n", r+1, b, m)
		base, mine = append(base, b), append(mine, m)
	}
	b, m := mean(base), mean(mine)
	add(Result{Scenario: "devserver", Metric: "start-dev (in memory) SignalWithStart", Value: b, Unit: "req/s", Extra: map[string]any{"rounds": base}})
	add(Result{Scenario: "devserver", Metric: "dev (SQLite file) SignalWithStart", Value: m, Unit: "req/s", Baseline: fp(b), Extra: map[string]any{"rounds": mine}})
	add(Result{Scenario: "devserver", Metric: "dev vs start-dev", Value: 100 * m / b, Unit: "%", Baseline: fp(100), Goal: "≥ 90%", Met: bp(m >= 0.9*b)})
	return nil
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
