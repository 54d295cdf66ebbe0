package stream

import (
	"context"
	"time"

	"github.com/auditstore/auditstore/exporter/internal/flow"
)

// The parts of a stream's flow.Pass: source reads and frames a batch,
// sink sends it, position moves the worker's cursor past it.

// Empty reports a batch in which no event passed the filter.
func (b batch) Empty() bool { return b.events == 0 }

// Next is the cursor once the batch is acknowledged.
func (b batch) Next() uint64 { return b.next }

// source reads a stream's events of one node, framed for its provider.
type source struct {
	ev     *eventReader
	org    string
	node   string
	filter Filter
	prov   provider
}

func (s *source) Read(ctx context.Context, after, upto uint64) (batch, error) {
	return s.ev.readBatch(ctx, s.org, s.node, s.filter, s.prov, after, upto)
}

// sink sends a batch to a stream's destination.
type sink struct {
	env           *env
	prov          provider
	provider      string // its name, the latency's label
	secrets       []string
	maxRetryAfter time.Duration
	m             *metrics
}

func (w *worker) sink(snap *snapshot) *sink {
	return &sink{env: w.env, prov: snap.prov, provider: snap.d.provider, secrets: snap.secrets,
		maxRetryAfter: w.cfg.MaxRetryAfter, m: w.m}
}

// failedDelivery is a batch the destination did not acknowledge.
type failedDelivery struct{ out outcome }

func (e *failedDelivery) Error() string { return e.out.err }

func (s *sink) Deliver(ctx context.Context, b batch) error {
	out := send(ctx, s.env, s.prov, b.body, s.secrets, s.maxRetryAfter)
	s.m.latency.WithLabelValues(s.provider).Observe(out.elapsed.Seconds())
	if !out.ok {
		return &failedDelivery{out}
	}
	return nil
}

// position is the worker's cursor in a pass. A delivered batch's cursor
// is saved at once; a skipped one's with the next save (dirty), at most
// every CursorSaveInterval.
type position struct {
	w        *worker
	dirty    bool      // the cursor moved since its last save
	lastSave time.Time // of the last attempt
}

// Begin does nothing: a stream's batch is read again from the cursor.
func (p *position) Begin(context.Context, batch) error { return nil }

// Advance moves the cursor past b. A failed save is logged and retried
// with the next one, so it never fails.
func (p *position) Advance(ctx context.Context, b batch) error {
	w := p.w
	w.advance(b, w.now())
	if b.events == 0 {
		p.dirty = true
		return nil
	}
	w.m.delivered.WithLabelValues(w.def().id).Add(float64(b.events))
	p.saved(w.save(context.WithoutCancel(ctx)))
	return nil
}

// saved notes a save attempt and whether it succeeded.
func (p *position) saved(ok bool) {
	p.dirty = !ok
	p.lastSave = p.w.now()
}

var (
	_ flow.Source[batch] = (*source)(nil)
	_ flow.Sink[batch]   = (*sink)(nil)
	_ flow.Cursor[batch] = (*position)(nil)
)
