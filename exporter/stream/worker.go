package stream

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditstore/auditstore/exporter/internal/flow"
)

// snapshot is what a worker runs: a stream as stored and what was built
// from it.
type snapshot struct {
	d       def
	cfg     destConfig // nil when err is set
	prov    provider
	secrets []string
	err     error // why the configuration cannot be used
}

// open decrypts and decodes a stored stream's configuration.
func (s *Service) open(d def) *snapshot {
	plain, err := s.seal.open(d.org, d.id, d.sealed)
	if err != nil {
		return &snapshot{d: d, err: err}
	}
	cfg, err := decodeConfig(d.provider, plain)
	if err != nil {
		return &snapshot{d: d, err: err}
	}
	return &snapshot{d: d, cfg: cfg, prov: cfg.open(s.env), secrets: cfg.secrets()}
}

// deps is what a worker needs, given by the service that starts it:
// nothing in it calls back into the service.
type deps struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	m         *metrics
	wm        flow.Watermark
	ev        *eventReader // events and lag
	positions cursorStore  // this node's cursor
	env       *env         // the destinations' HTTP client
}

// cursorStore keeps streams' cursors (*store).
type cursorStore interface {
	cursors(ctx context.Context, stream string) (map[string]cursor, error)
	putCursor(ctx context.Context, c cursor) error
}

func (s *Service) deps() deps {
	return deps{cfg: s.cfg, log: s.log, now: s.now, m: s.m, wm: s.wm, ev: s.ev, positions: s.store, env: s.env}
}

// worker delivers one stream's events from this server's ingest node.
type worker struct {
	deps
	snap atomic.Pointer[snapshot]
	wake flow.Waker

	mu     sync.Mutex
	st     cursor    // position and status on this node
	loaded bool      // st was read from, or created in, ClickHouse
	lag    uint64    // events not yet delivered, at lagAt
	oldest time.Time // receive time of the oldest of them
	lagAt  time.Time
}

func newWorker(d deps, snap *snapshot) *worker {
	w := &worker{deps: d, wake: flow.NewWaker()}
	w.snap.Store(snap)
	return w
}

func (w *worker) def() def { return w.snap.Load().d }

// update gives the worker a changed stream and wakes it.
func (w *worker) update(snap *snapshot) {
	w.snap.Store(snap)
	w.wake.Wake()
}

// Run delivers until ctx ends, one flow.Pass at a time: read a batch after
// the cursor, send it, move the cursor once the destination acknowledged
// it; on failure wait as backoff says, keeping the cursor.
func (w *worker) Run(ctx context.Context) {
	node := w.wm.NodeID()
	for !w.load(ctx, node) {
		if w.wake.Wait(ctx, w.cfg.RetryMin); ctx.Err() != nil {
			return
		}
	}
	bo := backoff{cfg: w.cfg}
	readFailures := 0
	var next time.Time // no attempt before this
	pos := &position{w: w, lastSave: w.now()}
	for ctx.Err() == nil {
		snap := w.snap.Load()
		id := snap.d.id
		wait := func(d time.Duration) {
			if w.wake.Wait(ctx, d) {
				bo.reset()
				next = time.Time{}
			}
		}
		if snap.d.paused || snap.err != nil {
			if snap.d.paused {
				w.setState(ctx, StatePaused, "")
			} else {
				w.setState(ctx, StateFailing, snap.err.Error())
			}
			wait(w.cfg.FailingProbe)
			continue
		}
		upto := w.wm.Confirmed()
		cur := w.position()
		if cur >= upto {
			if w.caughtUp() {
				pos.dirty = true
			}
			if pos.dirty && w.now().Sub(pos.lastSave) >= w.cfg.CursorSaveInterval {
				pos.saved(w.save(ctx))
			}
			wait(w.cfg.PollInterval)
			continue
		}
		w.measureLag(ctx, node, snap, cur)
		if d := next.Sub(w.now()); d > 0 {
			wait(d)
			continue
		}
		src := &source{ev: w.ev, org: snap.d.org, node: node, filter: snap.d.filter, prov: snap.prov}
		b, res, err := flow.Pass[batch](ctx, src, w.sink(snap), pos, cur, upto)
		var fe *flow.Error
		if errors.As(err, &fe) && fe.Stage == flow.StageRead {
			if ctx.Err() == nil {
				if readFailures == 0 {
					w.log.Warn("stream: cannot read events from ClickHouse; retrying", "stream", id, "error", fe.Err)
				}
				readFailures++
				w.wake.Wait(ctx, min(w.cfg.RetryMin<<min(readFailures, 16), w.cfg.RetryMax))
			}
			continue
		}
		if readFailures > 0 {
			w.log.Info("stream: reading events again", "stream", id, "after_failures", readFailures)
			readFailures = 0
		}
		if res == flow.Delivered {
			recovered := bo.failures > 0
			bo.reset()
			next = time.Time{}
			if recovered {
				w.log.Info("stream: destination accepts events again", "stream", id, "org", snap.d.org)
			}
			continue
		}
		var df *failedDelivery
		if !errors.As(err, &df) {
			continue // idle, or an empty batch skipped
		}
		if ctx.Err() != nil {
			return // aborted: the batch is sent again by the next run
		}
		out := df.out
		delay, failing := bo.failed(out)
		next = w.now().Add(delay)
		state := StateRetrying
		if failing {
			state = StateFailing
		}
		w.m.failed.WithLabelValues(id).Add(float64(b.events))
		w.failedAttempt(b.events, out.err, state)
		pos.saved(w.save(ctx))
		w.log.Warn("stream: delivery failed; the cursor stays", "stream", id, "org", snap.d.org,
			"provider", snap.d.provider, "events", b.events, "state", state, "retry_in", delay.Round(time.Millisecond),
			"error", out.err)
	}
}

// load reads this node's cursor, or creates it: a stream first met on this
// node starts after the node's last event received before the stream was
// created.
func (w *worker) load(ctx context.Context, node string) bool {
	d := w.def()
	cs, err := w.positions.cursors(ctx, d.id)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("stream: cannot read its cursor; retrying", "stream", d.id, "error", err)
		}
		return false
	}
	if c, ok := cs[node]; ok {
		w.mu.Lock()
		w.st, w.loaded = c, true
		w.mu.Unlock()
		return true
	}
	seq, err := w.ev.startSeq(ctx, d.org, node, d.created, w.wm.Confirmed())
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("stream: cannot find where to start; retrying", "stream", d.id, "error", err)
		}
		return false
	}
	w.mu.Lock()
	w.st = cursor{stream: d.id, node: node, seq: seq, state: StateActive}
	w.loaded = true
	w.mu.Unlock()
	return w.save(ctx)
}

func (w *worker) position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.seq
}

// advance moves the cursor past an acknowledged (or empty) batch.
func (w *worker) advance(b batch, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.st.seq = b.next
	if b.events > 0 {
		w.st.delivered += uint64(b.events)
		w.st.lastEvent, w.st.lastDelivery = b.lastReceived, now
		w.st.state = StateActive
	}
}

func (w *worker) failedAttempt(events int, msg, state string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.st.failed += uint64(events)
	w.st.lastError, w.st.lastErrorAt, w.st.state = msg, w.now(), state
	w.m.SetState(w.st.stream, state)
}

// setState records a state the worker waits in, saving it on a change.
func (w *worker) setState(ctx context.Context, state, msg string) {
	w.mu.Lock()
	changed := w.st.state != state || msg != "" && w.st.lastError != msg
	w.st.state = state
	if msg != "" && w.st.lastError != msg {
		w.st.lastError, w.st.lastErrorAt = msg, w.now()
	}
	w.mu.Unlock()
	w.m.SetState(w.def().id, state)
	if changed {
		w.save(ctx)
	}
}

// caughtUp notes that every confirmed event was delivered; it reports a
// change of state.
func (w *worker) caughtUp() bool {
	w.mu.Lock()
	w.lag, w.oldest, w.lagAt = 0, time.Time{}, w.now()
	changed := w.st.state != StateActive
	w.st.state = StateActive
	id := w.st.stream
	w.mu.Unlock()
	w.m.SetLag(id, 0, 0)
	w.m.SetState(id, StateActive)
	return changed
}

// measureLag counts the events still to deliver, at most every LagInterval.
func (w *worker) measureLag(ctx context.Context, node string, snap *snapshot, cur uint64) {
	w.mu.Lock()
	due := w.now().Sub(w.lagAt) >= w.cfg.LagInterval
	w.mu.Unlock()
	if !due {
		return
	}
	n, oldest, err := w.ev.lag(ctx, snap.d.org, snap.d.filter, map[string]uint64{node: cur})
	now := w.now()
	w.mu.Lock()
	w.lagAt = now
	if err == nil {
		w.lag, w.oldest = n, oldest
	}
	w.mu.Unlock()
	if err == nil {
		w.m.SetLag(snap.d.id, n, flow.LagSeconds(oldest, now))
	}
}

// save writes the cursor and status; it reports success (a failure is
// logged, and the next save carries the latest state).
func (w *worker) save(ctx context.Context) bool {
	w.mu.Lock()
	if !w.loaded {
		w.mu.Unlock()
		return false
	}
	now := w.now()
	w.st.version = max(w.st.version+1, uint64(now.UnixNano()))
	w.st.updated = now
	c := w.st
	w.mu.Unlock()
	if err := w.positions.putCursor(ctx, c); err != nil {
		if ctx.Err() == nil {
			w.log.Warn("stream: cannot save its cursor; it will be saved with the next batch", "stream", c.stream, "error", err)
		}
		return false
	}
	return true
}

// status returns this node's view of the stream.
func (w *worker) status() (cursor, uint64, time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st, w.lag, w.oldest, w.loaded
}
