// Package testkit holds the helpers that tests of several packages share:
// a quiet logger, a migrated test database, an in-memory audit recorder, a
// watermark the test moves, and the pieces of an HTTP harness (a router
// that takes the principal from test headers, a JSON call, a service run
// in the background). Storage helpers build on internal/chtest (a real
// ClickHouse per test binary, a fresh database per test).
package testkit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/schema"
)

// Quiet returns a logger that drops everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Migrated returns a fresh test database with every migration applied.
func Migrated(tb testing.TB) *chtest.DB {
	tb.Helper()
	db := chtest.NewDB(tb)
	if _, err := migrate.Run(context.Background(), db.Conn, Quiet()); err != nil {
		tb.Fatal(err)
	}
	return db
}

// Recorder keeps the audit events it is given, in memory; with Fail set it
// refuses every one (the audit log is down). It implements the Recorder
// interface of tenant, exporter, streams and the lake.
type Recorder struct {
	mu     sync.Mutex
	events []schema.Event
	fail   bool
}

// Record keeps e as an event of org.
func (r *Recorder) Record(_ context.Context, org string, e schema.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("audit log down")
	}
	e.OrgID = org
	r.events = append(r.events, e)
	return nil
}

// SetFail makes Record refuse (true) or keep (false) the events it gets.
func (r *Recorder) SetFail(fail bool) {
	r.mu.Lock()
	r.fail = fail
	r.mu.Unlock()
}

// Events returns a copy of the events recorded so far.
func (r *Recorder) Events() []schema.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]schema.Event(nil), r.events...)
}

// Types returns the types of the events recorded so far, in order.
func (r *Recorder) Types() []string {
	var out []string
	for _, e := range r.Events() {
		out = append(out, e.Event.Type)
	}
	return out
}

// Watermark is an ingest watermark the test moves: node Node, confirmed
// up to Seq.
type Watermark struct {
	Node string
	Seq  atomic.Uint64
}

// NodeID returns w.Node.
func (w *Watermark) NodeID() string { return w.Node }

// Confirmed returns w.Seq.
func (w *Watermark) Confirmed() uint64 { return w.Seq.Load() }
