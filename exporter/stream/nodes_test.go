package stream

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/schema"
)

// otherNode is a second server's watermark.
type otherNode struct{ seq atomic.Uint64 }

func (o *otherNode) NodeID() string    { return "node-b" }
func (o *otherNode) Confirmed() uint64 { return o.seq.Load() }

// TestSecondNodeStartsAtCreation: a server whose node meets a stream
// created through another server delivers its own node's events received
// after the stream's creation, in its own order, with its own cursor.
func TestSecondNodeStartsAtCreation(t *testing.T) {
	f := newCustom(t, "X-Token", "nodes-token-0123456789", true)
	h := newHarness(t, nil)
	var seqB uint64
	mk := func(n int) []schema.Event {
		evs := make([]schema.Event, n)
		for i := range evs {
			evs[i] = event("acme", i, "create-secret", "user", 0)
		}
		return evs
	}
	insertRows(t, h, "node-b", time.Now().Add(-time.Minute), &seqB, mk(20)) // before the stream
	time.Sleep(5 * time.Millisecond)
	id := h.mustCreate(t, "acme", customStream(f, "X-Token", "nodes-token-0123456789"))
	time.Sleep(5 * time.Millisecond)
	wantB := insertRows(t, h, "node-b", time.Now(), &seqB, mk(30))
	wantA := h.insertN(t, "acme", 40, 0)

	wmB := &otherNode{}
	wmB.seq.Store(seqB)
	cfg := testConfig()
	b, err := New(h.db.Conn, wmB, h.rec, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	eventually(t, 20*time.Second, "both nodes' events", func() bool { return f.distinct() == len(wantA)+len(wantB) })
	got := f.received()
	var fromA, fromB []string
	inA := map[string]bool{}
	for _, id := range wantA {
		inA[id] = true
	}
	for _, id := range got {
		if inA[id] {
			fromA = append(fromA, id)
		} else {
			fromB = append(fromB, id)
		}
	}
	checkOrder(t, wantA, fromA)
	checkOrder(t, wantB, fromB)
	if len(got) != len(wantA)+len(wantB) {
		t.Fatalf("received %d records, want %d: node-b's events from before the stream must not be sent", len(got), len(wantA)+len(wantB))
	}
	eventually(t, 10*time.Second, "both cursors in the status", func() bool {
		st := h.status(t, "acme", id)
		return st["delivered"].(float64) == float64(len(got)) && st["lagEvents"].(float64) == 0
	})
}
