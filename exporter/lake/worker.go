package lake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// The states of a destination.
const (
	StateActive   = "active"   // delivering, or caught up
	StateRetrying = "retrying" // a step failed; retrying with backoff
	StateFailing  = "failing"  // the configuration cannot be used (key changed, ...)
	StatePaused   = "paused"
)

// snapshot is what a worker runs: a destination as stored and its opened
// target.
type snapshot struct {
	d   def
	t   Target
	loc location
	err error // why the target cannot be used
}

func (s *Service) open(d def) *snapshot {
	plain, err := s.seal.Open(d.org, d.id, d.sealed)
	if err != nil {
		return &snapshot{d: d, err: err}
	}
	t, err := decodeTarget(plain)
	if err != nil {
		return &snapshot{d: d, err: err}
	}
	if t.Kind == "dir" && s.cfg.DirRoot == "" {
		return &snapshot{d: d, t: t, err: errors.New(`"dir" destinations are disabled on this server (no -lake-dir)`)}
	}
	return &snapshot{d: d, t: t, loc: s.locate(t, d.org)}
}

// worker delivers one destination's events from this server's ingest node.
type worker struct {
	s      *Service
	snap   atomic.Pointer[snapshot]
	wake   chan struct{}
	cancel context.CancelFunc

	mu          sync.Mutex
	m           mark // position and status on this node
	loaded      bool
	saved       time.Time // when m was last written
	state       string
	lagEvents   uint64
	lagOldest   time.Time
	lastStep    time.Time
	bytesPerRow float64 // of the destination's files so far; estimates file sizes
	failures    int
}

func newWorker(s *Service, snap *snapshot) *worker {
	w := &worker{s: s, wake: make(chan struct{}, 1), state: StateActive, bytesPerRow: 150}
	w.snap.Store(snap)
	return w
}

func (w *worker) def() *snapshot { return w.snap.Load() }

func (w *worker) update(snap *snapshot) {
	w.snap.Store(snap)
	w.wakeUp()
}

func (w *worker) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-w.wake:
	}
}

func (w *worker) setState(id, state string) {
	w.mu.Lock()
	w.state = state
	w.mu.Unlock()
	w.s.m.setState(id, state)
}

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		snap := w.snap.Load()
		id := snap.d.id
		switch {
		case snap.err != nil:
			w.setState(id, StateFailing)
			w.fail(ctx, snap, snap.err)
			w.wait(ctx, w.s.cfg.RetryMax)
			continue
		case snap.d.paused:
			w.setState(id, StatePaused)
			w.wait(ctx, w.s.cfg.RefreshInterval)
			continue
		}
		did, err := w.step(ctx, snap)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.failures++
			w.setState(id, StateRetrying)
			w.s.log.Warn("lake: delivery step failed; retrying", "destination", id, "attempt", w.failures,
				"error", scrub(err.Error(), snap.loc.secrets))
			w.fail(ctx, snap, err)
			w.wait(ctx, w.backoff())
			continue
		}
		w.failures = 0
		w.setState(id, StateActive)
		if !did {
			w.wait(ctx, w.s.cfg.PollInterval)
		}
	}
}

// backoff is the wait after the n-th consecutive failure: exponential with
// full jitter, within [RetryMin, RetryMax].
func (w *worker) backoff() time.Duration {
	d := w.s.cfg.RetryMin << min(w.failures-1, 20)
	if d > w.s.cfg.RetryMax || d <= 0 {
		d = w.s.cfg.RetryMax
	}
	return w.s.cfg.RetryMin + rand.N(d-w.s.cfg.RetryMin+1)
}

// fail records a failure in the destination's status on this node.
func (w *worker) fail(ctx context.Context, snap *snapshot, err error) {
	w.s.m.failures.WithLabelValues(snap.d.id).Inc()
	if !w.load(ctx, snap) {
		return
	}
	w.mu.Lock()
	w.m.lastError = scrub(err.Error(), snap.loc.secrets)
	if len(w.m.lastError) > 2000 {
		w.m.lastError = w.m.lastError[:2000]
	}
	w.m.lastErrorAt = w.s.now()
	m := w.bump()
	w.mu.Unlock()
	_ = w.s.store.putMark(ctx, m) // best effort: the status only
}

// bump returns m with a new version; w.mu is held.
func (w *worker) bump() mark {
	v := uint64(w.s.now().UnixNano())
	if v <= w.m.version {
		v = w.m.version + 1
	}
	w.m.version = v
	w.saved = w.s.now()
	return w.m
}

// load reads this node's watermark of the destination once; a node that
// has none starts after its last event received before the destination was
// created (events received since then are delivered; older ones are the
// business of a backfill).
func (w *worker) load(ctx context.Context, snap *snapshot) bool {
	w.mu.Lock()
	loaded := w.loaded
	w.mu.Unlock()
	if loaded {
		return true
	}
	node := w.s.wm.NodeID()
	marks, err := w.s.store.marks(ctx, snap.d.id)
	if err != nil {
		return false
	}
	m, ok := marks[node]
	if !ok {
		seq, err := w.s.startSeq(ctx, snap.d, node, w.s.wm.Confirmed())
		if err != nil {
			return false
		}
		m = mark{dest: snap.d.id, node: node, seq: seq}
	}
	w.mu.Lock()
	w.m, w.loaded = m, true
	w.lastStep = m.lastFileAt
	if w.lastStep.IsZero() {
		w.lastStep = snap.d.created
	}
	if m.rows > 0 {
		w.bytesPerRow = float64(m.bytes) / float64(m.rows)
	}
	w.mu.Unlock()
	return true
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// fileName is the name of a step's file in every partition it touches.
func fileName(node string, after, upto uint64) string {
	return fmt.Sprintf("%s-%020d-%020d.parquet", unsafeName.ReplaceAllString(node, "_"), after+1, upto)
}

// step delivers one step if one is due; it reports whether it did.
func (w *worker) step(ctx context.Context, snap *snapshot) (bool, error) {
	if !w.load(ctx, snap) {
		return false, fmt.Errorf("read the destination's watermark")
	}
	w.mu.Lock()
	m := w.m
	w.mu.Unlock()
	upto := m.pendingUpto
	if upto <= m.seq {
		confirmed := w.s.wm.Confirmed()
		if confirmed <= m.seq {
			w.setLag(snap.d.id, 0, time.Time{})
			return false, nil
		}
		n, oldest, err := w.s.pending(ctx, snap.d, m.node, m.seq, confirmed)
		if err != nil {
			return false, err
		}
		w.setLag(snap.d.id, n, oldest)
		if n == 0 {
			// Nothing of ours up to confirmed: skip it (saved now and then).
			w.mu.Lock()
			w.m.seq = confirmed
			var save *mark
			if w.s.now().Sub(w.saved) > w.s.cfg.RefreshInterval {
				mm := w.bump()
				save = &mm
			}
			w.mu.Unlock()
			if save != nil {
				return false, w.s.store.putMark(ctx, *save)
			}
			return false, nil
		}
		w.mu.Lock()
		est, last := w.bytesPerRow, w.lastStep
		w.mu.Unlock()
		maxRows := max(uint64(float64(snap.t.FileBytes)/est), 1)
		if n < maxRows && w.s.now().Sub(last) < snap.t.every() {
			return false, nil // the file is not due yet
		}
		upto = confirmed
		if n > maxRows {
			if upto, err = w.s.nthSeq(ctx, snap.d, m.node, m.seq, confirmed, maxRows); err != nil {
				return false, err
			}
		}
		// Record the step before writing: a crash from here on repeats it
		// with the same file names.
		w.mu.Lock()
		w.m.pendingUpto = upto
		mm := w.bump()
		w.mu.Unlock()
		if err := w.s.store.putMark(ctx, mm); err != nil {
			return false, err
		}
	}
	res, err := w.s.deliver(ctx, snap, stepSel{node: m.node, after: m.seq, upto: upto}, fileName(m.node, m.seq, upto))
	if err != nil {
		return false, err
	}
	now := w.s.now()
	w.mu.Lock()
	w.m.seq, w.m.pendingUpto = upto, 0
	w.m.files += uint64(len(res.files))
	for _, f := range res.files {
		w.m.rows += f.rows
		w.m.bytes += f.bytes
		w.m.lastFile = f.partition + f.name
		if f.maxTime.After(w.m.lastEventAt) {
			w.m.lastEventAt = f.maxTime
		}
	}
	if len(res.files) > 0 {
		w.m.lastFileAt = now
	}
	if w.m.rows > 0 {
		w.bytesPerRow = max(float64(w.m.bytes)/float64(w.m.rows), 1)
	}
	w.m.lastError = ""
	w.lastStep = now
	mm := w.bump()
	w.mu.Unlock()
	if err := w.s.store.putMark(ctx, mm); err != nil {
		return false, err
	}
	w.s.m.delivered(snap.d.id, res)
	return true, nil
}

func (w *worker) setLag(id string, n uint64, oldest time.Time) {
	w.mu.Lock()
	w.lagEvents, w.lagOldest = n, oldest
	w.mu.Unlock()
	secs := 0.0
	if n > 0 {
		secs = w.s.now().Sub(oldest).Seconds()
	}
	w.s.m.setLag(id, n, secs)
}
