package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/auditstore/auditstore/client"
	"github.com/auditstore/auditstore/internal/servertest"
)

// TestRejectedEventsSurfaceWithIndex sends batches holding invalid events:
// the caller learns each one's index in its own call and the server's
// reason; the valid events of the same batches are stored, once.
func TestRejectedEventsSurfaceWithIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	ctx := context.Background()
	s := servertest.Start(t)
	keys := org(t, s, "acme")
	var mu sync.Mutex
	var hooked []*client.RejectedError
	p, err := newClient(t, s.Base, keys["ingest"]).NewProducer(client.ProducerConfig{
		Hooks: client.Hooks{Rejected: func(e *client.RejectedError) { mu.Lock(); hooked = append(hooked, e); mu.Unlock() }}})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]client.Event, 10)
	for i := range evs {
		evs[i] = sample("order.placed", i)
	}
	evs[2].Actor.Type = "robot"
	evs[7].IPAddress = "not-an-ip"
	err = p.SendWait(ctx, evs...)
	var re *client.RejectedError
	if !errors.As(err, &re) || len(re.Rejections) != 2 {
		t.Fatalf("SendWait: %v, want a RejectedError of 2 events", err)
	}
	got := map[int]string{}
	for _, r := range re.Rejections {
		if len(r.Details) == 0 || r.ID == "" {
			t.Fatalf("rejection %+v", r)
		}
		got[r.Index] = r.Details[0].Field
	}
	if got[2] != "actor.type" || got[7] != "ipAddress" || re.Err.Status != 400 || re.Err.Code != "invalid_events" {
		t.Fatalf("rejections by index: %v (%d %s), want 2: actor.type, 7: ipAddress", got, re.Err.Status, re.Err.Code)
	}
	// Fire-and-forget Send reports through the hook, with the index in
	// that Send call.
	bad := sample("order.placed", 99)
	bad.Action.Type = "not a type"
	if err := p.Send(ctx, sample("order.placed", 10), bad); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hooked) != 2 || hooked[1].Rejections[0].Index != 1 || hooked[1].Rejections[0].Details[0].Field != "event.type" {
		t.Fatalf("hook saw %d rejections: %+v", len(hooked), hooked)
	}
	waitCount(t, newClient(t, s.Base, keys["read"]), "order.placed", 9)
}

// TestQueuePolicies: with the server unreachable, a full queue fails at
// once under Fail and waits (until the context ends) under Block.
func TestQueuePolicies(t *testing.T) {
	px := newProxy(t)
	px.down.Store(true) // 503 Retry-After 1 forever
	c := newClient(t, px.URL, "ask_key")
	ctx := context.Background()
	for _, policy := range []client.FullPolicy{client.Fail, client.Block} {
		p, err := c.NewProducer(client.ProducerConfig{QueueEvents: 10, BatchEvents: 5, WhenFull: policy})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if err := p.Send(ctx, sample("x", i)); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		switch policy {
		case client.Fail:
			if err := p.Send(ctx, sample("x", 10)); !errors.Is(err, client.ErrQueueFull) {
				t.Fatalf("Fail policy, full queue: %v, want ErrQueueFull", err)
			}
		case client.Block:
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err := p.Send(short, sample("x", 10))
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Block policy, full queue: %v, want the context's deadline", err)
			}
		}
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err = p.Close(short)
		cancel()
		if err == nil {
			t.Fatal("Close delivered to a server that is down")
		}
		if err := p.Send(ctx, sample("x", 0)); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Send after Close: %v", err)
		}
	}
}
