package devserver

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A port taken between the pick and the server's bind (what made `dev` panic) makes
// Start try again on other ports, and the server runs.
// The first port picked is the frontend's HTTP port (its bind fails with an error), the
// second a gRPC port (its bind fails through the logger's Fatal).
func TestStartRetriesWhenAPickedPortIsTaken(t *testing.T) {
	for _, which := range []int32{1, 2} {
		t.Run(map[int32]string{1: "http", 2: "grpc"}[which], func(t *testing.T) { startWithTakenPort(t, which) })
	}
}

func startWithTakenPort(t *testing.T, which int32) {
	squat, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	taken := squat.Addr().(*net.TCPAddr).Port
	var calls atomic.Int32
	pickPort = func(host string) (int, error) {
		if calls.Add(1) == which {
			return taken, nil // another socket has it
		}
		return freePort(host)
	}
	defer func() { pickPort = freePort }()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatalf("start with a taken internal port: %v", err)
	}
	defer s.Stop()
	if calls.Load() <= 4 {
		t.Fatalf("ports picked: %d; want a second attempt's (more than 4)", calls.Load())
	}
	t.Logf("started on %s after the port %d was found taken (%d ports picked)", s.Address(), taken, calls.Load())
}
