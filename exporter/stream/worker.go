package stream

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
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

// worker delivers one stream's events from this server's ingest node.
type worker struct {
	s      *Service
	snap   atomic.Pointer[snapshot]
	wake   chan struct{}
	cancel context.CancelFunc

	mu     sync.Mutex
	st     cursor    // position and status on this node
	loaded bool      // st was read from, or created in, ClickHouse
	lag    uint64    // events not yet delivered, at lagAt
	oldest time.Time // receive time of the oldest of them
	lagAt  time.Time
}

func newWorker(s *Service, snap *snapshot) *worker {
	w := &worker{s: s, wake: make(chan struct{}, 1)}
	w.snap.Store(snap)
	return w
}

func (w *worker) def() def { return w.snap.Load().d }

// update gives the worker a changed stream and wakes it.
func (w *worker) update(snap *snapshot) {
	w.snap.Store(snap)
	w.wakeUp()
}

// wakeUp makes a waiting worker try at once, its breaker closed.
func (w *worker) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) stop() {
	if w.cancel != nil {
		w.cancel()
	}
}

// wait blocks for d, a wake-up or the end of ctx, and reports a wake-up.
func (w *worker) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.wake:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// run delivers until ctx ends: read a batch after the cursor, send it,
// move the cursor once the destination acknowledged it; on failure wait as
// backoff says, keeping the cursor.
func (w *worker) run(ctx context.Context) {
	s := w.s
	node := s.wm.NodeID()
	for !w.load(ctx, node) {
		if w.wait(ctx, s.cfg.RetryMin); ctx.Err() != nil {
			return
		}
	}
	bo := backoff{cfg: s.cfg}
	readFailures := 0
	var next time.Time // no attempt before this
	lastSave := s.now()
	dirty := false
	for ctx.Err() == nil {
		snap := w.snap.Load()
		id := snap.d.id
		if snap.d.paused || snap.err != nil {
			if snap.d.paused {
				w.setState(ctx, StatePaused, "")
			} else {
				w.setState(ctx, StateFailing, snap.err.Error())
			}
			if w.wait(ctx, s.cfg.FailingProbe) {
				bo.reset()
				next = time.Time{}
			}
			continue
		}
		upto := s.wm.Confirmed()
		cur := w.position()
		if cur >= upto {
			if w.caughtUp() {
				dirty = true
			}
			if dirty && s.now().Sub(lastSave) >= s.cfg.CursorSaveInterval {
				dirty = !w.save(ctx)
				lastSave = s.now()
			}
			if w.wait(ctx, s.cfg.PollInterval) {
				bo.reset()
				next = time.Time{}
			}
			continue
		}
		w.measureLag(ctx, node, snap, cur)
		if d := next.Sub(s.now()); d > 0 {
			if w.wait(ctx, d) {
				bo.reset()
				next = time.Time{}
			}
			continue
		}
		b, err := s.readBatch(ctx, snap.d.org, node, snap.d.filter, snap.prov, cur, upto)
		if err != nil {
			if ctx.Err() == nil {
				if readFailures == 0 {
					s.log.Warn("stream: cannot read events from ClickHouse; retrying", "stream", id, "error", err)
				}
				readFailures++
				w.wait(ctx, min(s.cfg.RetryMin<<min(readFailures, 16), s.cfg.RetryMax))
			}
			continue
		}
		if readFailures > 0 {
			s.log.Info("stream: reading events again", "stream", id, "after_failures", readFailures)
			readFailures = 0
		}
		if b.events == 0 { // nothing matched the filter up to upto
			w.advance(b, s.now())
			dirty = true
			continue
		}
		out := send(ctx, s.env, snap.prov, b.body, snap.secrets, s.cfg.MaxRetryAfter)
		s.m.latency.WithLabelValues(snap.d.provider).Observe(out.elapsed.Seconds())
		if out.ok {
			recovered := bo.failures > 0
			bo.reset()
			next = time.Time{}
			w.advance(b, s.now())
			s.m.delivered.WithLabelValues(id).Add(float64(b.events))
			dirty = !w.save(context.WithoutCancel(ctx))
			lastSave = s.now()
			if recovered {
				s.log.Info("stream: destination accepts events again", "stream", id, "org", snap.d.org)
			}
			continue
		}
		if ctx.Err() != nil {
			return // aborted: the batch is sent again by the next run
		}
		delay, failing := bo.failed(out)
		next = s.now().Add(delay)
		state := StateRetrying
		if failing {
			state = StateFailing
		}
		s.m.failed.WithLabelValues(id).Add(float64(b.events))
		w.failedAttempt(b.events, out.err, state)
		dirty = !w.save(ctx)
		lastSave = s.now()
		s.log.Warn("stream: delivery failed; the cursor stays", "stream", id, "org", snap.d.org,
			"provider", snap.d.provider, "events", b.events, "state", state, "retry_in", delay.Round(time.Millisecond),
			"error", out.err)
	}
}

// load reads this node's cursor, or creates it: a stream first met on this
// node starts after the node's last event received before the stream was
// created.
func (w *worker) load(ctx context.Context, node string) bool {
	s, d := w.s, w.def()
	cs, err := s.store.cursors(ctx, d.id)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("stream: cannot read its cursor; retrying", "stream", d.id, "error", err)
		}
		return false
	}
	if c, ok := cs[node]; ok {
		w.mu.Lock()
		w.st, w.loaded = c, true
		w.mu.Unlock()
		return true
	}
	seq, err := s.startSeq(ctx, d.org, node, d.created, s.wm.Confirmed())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("stream: cannot find where to start; retrying", "stream", d.id, "error", err)
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
	w.st.lastError, w.st.lastErrorAt, w.st.state = msg, w.s.now(), state
	w.s.m.setState(w.st.stream, state)
}

// setState records a state the worker waits in, saving it on a change.
func (w *worker) setState(ctx context.Context, state, msg string) {
	w.mu.Lock()
	changed := w.st.state != state || msg != "" && w.st.lastError != msg
	w.st.state = state
	if msg != "" && w.st.lastError != msg {
		w.st.lastError, w.st.lastErrorAt = msg, w.s.now()
	}
	w.mu.Unlock()
	w.s.m.setState(w.def().id, state)
	if changed {
		w.save(ctx)
	}
}

// caughtUp notes that every confirmed event was delivered; it reports a
// change of state.
func (w *worker) caughtUp() bool {
	w.mu.Lock()
	w.lag, w.oldest, w.lagAt = 0, time.Time{}, w.s.now()
	changed := w.st.state != StateActive
	w.st.state = StateActive
	id := w.st.stream
	w.mu.Unlock()
	w.s.m.setLag(id, 0, 0)
	w.s.m.setState(id, StateActive)
	return changed
}

// measureLag counts the events still to deliver, at most every LagInterval.
func (w *worker) measureLag(ctx context.Context, node string, snap *snapshot, cur uint64) {
	w.mu.Lock()
	due := w.s.now().Sub(w.lagAt) >= w.s.cfg.LagInterval
	w.mu.Unlock()
	if !due {
		return
	}
	n, oldest, err := w.s.lag(ctx, snap.d.org, snap.d.filter, map[string]uint64{node: cur})
	now := w.s.now()
	w.mu.Lock()
	w.lagAt = now
	if err == nil {
		w.lag, w.oldest = n, oldest
	}
	w.mu.Unlock()
	if err == nil {
		w.s.m.setLag(snap.d.id, n, lagSeconds(oldest, now))
	}
}

func lagSeconds(oldest, now time.Time) float64 {
	if oldest.IsZero() {
		return 0
	}
	return max(now.Sub(oldest).Seconds(), 0)
}

// save writes the cursor and status; it reports success (a failure is
// logged, and the next save carries the latest state).
func (w *worker) save(ctx context.Context) bool {
	w.mu.Lock()
	if !w.loaded {
		w.mu.Unlock()
		return false
	}
	now := w.s.now()
	w.st.version = max(w.st.version+1, uint64(now.UnixNano()))
	w.st.updated = now
	c := w.st
	w.mu.Unlock()
	if err := w.s.store.putCursor(ctx, c); err != nil {
		if ctx.Err() == nil {
			w.s.log.Warn("stream: cannot save its cursor; it will be saved with the next batch", "stream", c.stream, "error", err)
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
