package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/engine"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/internal/testkit"
)

// ownEngine is a ClickHouse this test may stop and start again on the same
// ports and data.
type ownEngine struct {
	tb        testing.TB
	cfg       engine.Config
	e         *engine.Engine
	tcp, http int
}

func startOwnEngine(tb testing.TB) *ownEngine {
	tb.Helper()
	o := &ownEngine{tb: tb, cfg: testkit.EngineConfig(tb, "ch")}
	o.start()
	tb.Cleanup(func() {
		if o.e != nil {
			o.e.Stop(context.Background())
		}
	})
	return o
}

func (o *ownEngine) start() {
	o.tb.Helper()
	e, err := engine.Start(context.Background(), o.cfg)
	if err != nil {
		o.tb.Fatalf("start engine: %v", err)
	}
	o.e = e
}

func (o *ownEngine) stop() {
	o.tb.Helper()
	if err := o.e.Stop(context.Background()); err != nil {
		o.tb.Fatalf("stop engine: %v", err)
	}
	o.e = nil
}

func migratedOwn(tb testing.TB, o *ownEngine) driver.Conn {
	conn := openConn(tb, o.e.Addr(), "auditstore")
	if _, err := migrate.Run(context.Background(), conn, quiet()); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// producer posts batches of events with ids until stopped, and remembers
// every id acknowledged with 202.
type producer struct {
	mu    sync.Mutex
	acked map[string]bool
	codes map[int]int
	stop  chan struct{}
	wg    sync.WaitGroup
}

func produce(tb testing.TB, h *harness, org string, clients int) *producer {
	p := &producer{acked: map[string]bool{}, codes: map[int]int{}, stop: make(chan struct{})}
	deadline := time.Now().Add(2 * time.Minute) // bounded whatever happens
	for c := 0; c < clients; c++ {
		p.wg.Add(1)
		go func(c int) {
			defer p.wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-p.stop:
					return
				default:
				}
				ids := make([]string, 50)
				events := make([]map[string]any, len(ids))
				for j := range ids {
					ids[j] = uuid.NewString()
					events[j] = event(i*50+j, ids[j], j%3 != 0)
				}
				resp := h.post(tb, org, mustJSON(tb, events), nil)
				p.mu.Lock()
				p.codes[resp.code]++
				if resp.code == 202 {
					for _, id := range ids {
						p.acked[id] = true
					}
				}
				p.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}(c)
	}
	return p
}

func (p *producer) halt() {
	close(p.stop)
	p.wg.Wait()
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkExactlyOnce(tb testing.TB, conn driver.Conn, org string, acked map[string]bool) {
	tb.Helper()
	ids, rows := stored(tb, conn, org)
	for id := range acked {
		if ids[id] != 1 {
			tb.Fatalf("acknowledged event %s present %d times, want exactly 1 (of %d acknowledged)", id, ids[id], len(acked))
		}
	}
	if rows != uint64(len(ids)) {
		tb.Fatalf("%d rows for %d distinct ids: duplicates visible", rows, len(ids))
	}
}

func TestClickHouseOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts ClickHouse")
	}
	o := startOwnEngine(t)
	conn := migratedOwn(t, o)
	h := newHarness(t, conn, t.TempDir(), func(c *Config) { c.InsertTimeout = 5 * time.Second })
	p := produce(t, h, "acme", 4)

	waitFor(t, "events before the outage", func() bool { return p.count() >= 2000 })
	o.stop()
	before := p.count()
	waitFor(t, "events accepted during the outage", func() bool { return p.count() >= before+2000 })
	waitFor(t, "readiness to report failing inserts", func() bool { return len(h.pipe.Health()) > 0 })
	o.start()
	waitFor(t, "events after the outage", func() bool { return p.count() >= before+4000 })
	p.halt()
	h.flush(t)
	if reasons := h.pipe.Health(); len(reasons) != 0 {
		t.Fatalf("health after recovery: %v", reasons)
	}
	t.Logf("acknowledged %d events across the outage; status codes %v", p.count(), p.codes)
	checkExactlyOnce(t, conn, "acme", p.acked)
}

func TestFullLogAnswers503ThenRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts ClickHouse")
	}
	o := startOwnEngine(t)
	conn := migratedOwn(t, o)
	h := newHarness(t, conn, t.TempDir(), func(c *Config) {
		c.WAL.SegmentBytes = 64 << 10
		c.WAL.MaxBytes = 256 << 10
		c.InsertTimeout = 5 * time.Second
	})
	o.stop()
	acked := map[string]bool{}
	var full response
	for i := 0; i < 1000; i++ {
		ids := make([]string, 20)
		events := make([]map[string]any, len(ids))
		for j := range ids {
			ids[j] = uuid.NewString()
			events[j] = event(j, ids[j], true)
		}
		resp := h.post(t, "acme", mustJSON(t, events), nil)
		if resp.code == 503 {
			full = resp
			break
		}
		if resp.code != 202 {
			t.Fatalf("post %d: %d %s", i, resp.code, resp.raw)
		}
		for _, id := range ids {
			acked[id] = true
		}
	}
	if full.code != 503 || errCode(full) != "wal_full" || full.header.Get("Retry-After") == "" {
		t.Fatalf("full log answered %d %s (Retry-After %q), want 503 wal_full with Retry-After", full.code, full.raw, full.header.Get("Retry-After"))
	}
	if reasons := fmt.Sprint(h.pipe.Health()); !strings.Contains(reasons, "write-ahead log is full") {
		t.Fatalf("health while full: %s", reasons)
	}
	o.start()
	h.flush(t)
	resp := h.post(t, "acme", mustJSON(t, []any{event(1, uuid.NewString(), true)}), nil)
	if resp.code != 202 {
		t.Fatalf("after recovery: %d %s, want 202", resp.code, resp.raw)
	}
	checkExactlyOnce(t, conn, "acme", acked)
}
