package lake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditstore/auditstore/exporter/internal/flow"
)

// The states of a destination.
const (
	StateActive   = flow.StateActive   // delivering, or caught up
	StateRetrying = flow.StateRetrying // a step failed; retrying with backoff
	StateFailing  = flow.StateFailing  // the configuration cannot be used (key changed, ...)
	StatePaused   = flow.StatePaused
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

// deps is what a worker needs, given by the service that starts it.
type deps struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	wm      flow.Watermark
	marks   markStore
	steps   stepper
}

// markStore keeps destinations' watermarks (*store).
type markStore interface {
	marks(ctx context.Context, dest string) (map[string]mark, error)
	putMark(ctx context.Context, m mark) error
}

// stepper reads what a destination has pending and writes a step's files
// (sql.go and deliver.go, on the service's ClickHouse pool and semaphore).
type stepper interface {
	pending(ctx context.Context, d def, node string, after, upto uint64) (uint64, time.Time, error)
	nthSeq(ctx context.Context, d def, node string, after, upto, n uint64) (uint64, error)
	startSeq(ctx context.Context, d def, node string, upto uint64) (uint64, error)
	deliver(ctx context.Context, snap *snapshot, st stepSel, name string) (result, error)
}

func (s *Service) deps() deps {
	return deps{cfg: s.cfg, log: s.log, now: s.now, metrics: s.m, wm: s.wm, marks: s.store, steps: s}
}

// worker delivers one destination's events from this server's ingest node.
type worker struct {
	deps
	snap atomic.Pointer[snapshot]
	wake flow.Waker

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

func newWorker(d deps, snap *snapshot) *worker {
	w := &worker{deps: d, wake: flow.NewWaker(), state: StateActive, bytesPerRow: 150}
	w.snap.Store(snap)
	return w
}

func (w *worker) def() *snapshot { return w.snap.Load() }

func (w *worker) update(snap *snapshot) {
	w.snap.Store(snap)
	w.wake.Wake()
}

func (w *worker) setState(id, state string) {
	w.mu.Lock()
	w.state = state
	w.mu.Unlock()
	w.metrics.SetState(id, state)
}

// Run delivers until ctx ends, one step at a time; a failed step is
// retried with backoff.
func (w *worker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		snap := w.snap.Load()
		id := snap.d.id
		switch {
		case snap.err != nil:
			w.setState(id, StateFailing)
			w.fail(ctx, snap, snap.err)
			w.wake.Wait(ctx, w.cfg.RetryMax)
			continue
		case snap.d.paused:
			w.setState(id, StatePaused)
			w.wake.Wait(ctx, w.cfg.RefreshInterval)
			continue
		}
		did, err := w.step(ctx, snap)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.failures++
			w.setState(id, StateRetrying)
			w.log.Warn("lake: delivery step failed; retrying", "destination", id, "attempt", w.failures,
				"error", scrub(err.Error(), snap.loc.secrets))
			w.fail(ctx, snap, err)
			w.wake.Wait(ctx, w.backoff())
			continue
		}
		w.failures = 0
		w.setState(id, StateActive)
		if !did {
			w.wake.Wait(ctx, w.cfg.PollInterval)
		}
	}
}

// backoff is the wait after the n-th consecutive failure: exponential with
// full jitter, within [RetryMin, RetryMax].
func (w *worker) backoff() time.Duration {
	d := w.cfg.RetryMin << min(w.failures-1, 20)
	if d > w.cfg.RetryMax || d <= 0 {
		d = w.cfg.RetryMax
	}
	return w.cfg.RetryMin + rand.N(d-w.cfg.RetryMin+1)
}

// fail records a failure in the destination's status on this node.
func (w *worker) fail(ctx context.Context, snap *snapshot, err error) {
	w.metrics.failures.WithLabelValues(snap.d.id).Inc()
	if !w.load(ctx, snap) {
		return
	}
	w.mu.Lock()
	w.m.lastError = scrub(err.Error(), snap.loc.secrets)
	if len(w.m.lastError) > 2000 {
		w.m.lastError = w.m.lastError[:2000]
	}
	w.m.lastErrorAt = w.now()
	m := w.bump()
	w.mu.Unlock()
	_ = w.marks.putMark(ctx, m) // best effort: the status only
}

// bump returns m with a new version; w.mu is held.
func (w *worker) bump() mark {
	v := uint64(w.now().UnixNano())
	if v <= w.m.version {
		v = w.m.version + 1
	}
	w.m.version = v
	w.saved = w.now()
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
	node := w.wm.NodeID()
	marks, err := w.marks.marks(ctx, snap.d.id)
	if err != nil {
		return false
	}
	m, ok := marks[node]
	if !ok {
		seq, err := w.steps.startSeq(ctx, snap.d, node, w.wm.Confirmed())
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

// step delivers one step if one is due (a flow.Pass); it reports whether
// it did.
func (w *worker) step(ctx context.Context, snap *snapshot) (bool, error) {
	if !w.load(ctx, snap) {
		return false, fmt.Errorf("read the destination's watermark")
	}
	w.mu.Lock()
	after := w.m.seq
	w.mu.Unlock()
	_, res, err := flow.Pass[*lakeStep](ctx, &planner{w: w, snap: snap}, &writer{steps: w.steps, snap: snap},
		&watermark{w: w, snap: snap}, after, w.wm.Confirmed())
	var fe *flow.Error
	if errors.As(err, &fe) {
		err = fe.Err
	}
	return res == flow.Delivered && err == nil, err
}

func (w *worker) setLag(id string, n uint64, oldest time.Time) {
	w.mu.Lock()
	w.lagEvents, w.lagOldest = n, oldest
	w.mu.Unlock()
	secs := 0.0
	if n > 0 {
		secs = w.now().Sub(oldest).Seconds()
	}
	w.metrics.SetLag(id, n, secs)
}
