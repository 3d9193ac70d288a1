package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
)

// queueInbox keeps n deliveries for each workflow, interleaved, each's JSON naming its
// workflow and rank.
func queueInbox(t *testing.T, db *postgres.DB, workflows []string, n int) {
	t.Helper()
	for i := range n {
		for _, wf := range workflows {
			if err := db.QueueWebhook(context.Background(), "shop", wf, []byte(fmt.Sprintf(`{"workflowId":%q,"rank":%d}`, wf, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// recorder is an InboxSend that records what it was sent, per workflow, in order.
type recorder struct {
	mu   sync.Mutex
	sent map[string][]string
	all  int
}

func (r *recorder) send(_ context.Context, _ int64, delivery []byte) error {
	var wf string
	if _, err := fmt.Sscanf(string(delivery), `{"workflowId":%q`, &wf); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent == nil {
		r.sent = map[string][]string{}
	}
	r.sent[wf] = append(r.sent[wf], string(delivery))
	r.all++
	return nil
}

func never(error) bool { return false }

func backlog(t *testing.T, db *postgres.DB) int64 {
	t.Helper()
	n, _, err := db.InboxBacklog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The inbox is forwarded in arrival order per workflow, each delivery once, by any
// number of forwarders at once; what is sent is deleted.
func TestInboxForwardRacing(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	wfs := []string{"chatra/shop/A", "chatra/shop/B", "chatra/shop/C", "chatra/shop/D"}
	queueInbox(t, db, wfs, 25)
	if q, err := db.WebhooksQueued(ctx, "chatra/shop/A"); err != nil || !q {
		t.Fatalf("queued for A: %v %v", q, err)
	}
	if q, err := db.WebhooksQueued(ctx, "chatra/shop/Z"); err != nil || q {
		t.Fatalf("queued for Z: %v %v", q, err)
	}
	if n := backlog(t, db); n != 100 {
		t.Fatalf("backlog %d, want 100", n)
	}
	rec := &recorder{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := db.ForwardWebhooks(ctx, 2, rec.send, never)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 && backlog(t, db) == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if rec.all != 100 {
		t.Errorf("sent %d deliveries, want 100 (each once)", rec.all)
	}
	for _, wf := range wfs {
		var want []string
		for i := range 25 {
			want = append(want, fmt.Sprintf(`{"workflowId":%q,"rank":%d}`, wf, i))
		}
		if !slices.Equal(rec.sent[wf], want) {
			t.Errorf("%s received %q, want them in arrival order once", wf, rec.sent[wf])
		}
	}
	if q, _ := db.WebhooksQueued(ctx, "chatra/shop/A"); q {
		t.Error("A still has queued deliveries")
	}
}

// A failed send keeps the delivery and every later one of its workflow, and stops the
// call; a delivery send says can never be sent is dropped; a crash between the send and
// the deletion (here: the context ends) sends the same delivery again later.
func TestInboxForwardFailures(t *testing.T) {
	db, _ := postgrestest.New(t)
	ctx := context.Background()
	queueInbox(t, db, []string{"wf/A"}, 3)
	down := errors.New("temporal unavailable")
	var sent []string
	failAt := 1
	send := func(_ context.Context, _ int64, d []byte) error {
		if len(sent) == failAt {
			return down
		}
		sent = append(sent, string(d))
		return nil
	}
	n, err := db.ForwardWebhooks(ctx, 10, send, never)
	if !errors.Is(err, down) || n != 1 || backlog(t, db) != 2 {
		t.Fatalf("forward with Temporal failing at the second: %d sent, %v, backlog %d", n, err, backlog(t, db))
	}
	// Dropped: deleted though not sent.
	n, err = db.ForwardWebhooks(ctx, 10, send, func(error) bool { failAt = -1; return true })
	if err != nil || n != 2 || backlog(t, db) != 0 {
		t.Fatalf("forward dropping the second: %d, %v, backlog %d", n, err, backlog(t, db))
	}
	// A crash after Temporal took the next one: not deleted, so sent again.
	if err := db.QueueWebhook(ctx, "shop", "wf/A", []byte(`{"workflowId":"wf/A","rank":3}`)); err != nil {
		t.Fatal(err)
	}
	crashCtx, crash := context.WithCancel(ctx)
	_, err = db.ForwardWebhooks(crashCtx, 10, func(ctx context.Context, id int64, d []byte) error {
		_ = send(ctx, id, d)
		crash()
		return nil
	}, never)
	if err == nil || backlog(t, db) != 1 {
		t.Fatalf("crashed forward: %v, backlog %d", err, backlog(t, db))
	}
	if n, err := db.ForwardWebhooks(ctx, 10, send, never); err != nil || n != 1 || backlog(t, db) != 0 {
		t.Fatalf("forward after the crash: %d, %v", n, err)
	}
	want := []string{`{"workflowId":"wf/A","rank":0}`, `{"workflowId":"wf/A","rank":2}`, `{"workflowId":"wf/A","rank":3}`, `{"workflowId":"wf/A","rank":3}`}
	if !slices.Equal(sent, want) {
		t.Errorf("sent %q, want %q (the last twice, the same)", sent, want)
	}
}
