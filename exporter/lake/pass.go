package lake

import (
	"context"
	"time"

	"github.com/auditstore/auditstore/exporter/internal/flow"
)

// The parts of a destination's flow.Pass: planner picks the next step (the
// events of one file per partition), writer writes its files, watermark
// records the step before it is written and moves past it after.

// lakeStep is one step of a destination on this node.
type lakeStep struct {
	sel     stepSel
	empty   bool   // nothing of the destination's up to sel.upto: skip
	resumed bool   // the step recorded by a run that stopped before it was done
	res     result // what the writer wrote
}

func (s *lakeStep) Empty() bool  { return s.empty }
func (s *lakeStep) Next() uint64 { return s.sel.upto }

// planner reads what a destination has pending after its watermark.
type planner struct {
	w    *worker
	snap *snapshot
}

// Read returns the step recorded and not done, or plans the next one: a
// file is due once it would reach the target's FileBytes (estimated from
// the destination's files so far) or its interval has passed.
func (p *planner) Read(ctx context.Context, after, confirmed uint64) (*lakeStep, error) {
	w, d := p.w, p.snap.d
	w.mu.Lock()
	m := w.m
	w.mu.Unlock()
	if m.pendingUpto > after {
		return &lakeStep{sel: stepSel{node: m.node, after: after, upto: m.pendingUpto}, resumed: true}, nil
	}
	idle := &lakeStep{sel: stepSel{node: m.node, after: after, upto: after}}
	if confirmed <= after {
		w.setLag(d.id, 0, time.Time{})
		return idle, nil
	}
	n, oldest, err := w.steps.pending(ctx, d, m.node, after, confirmed)
	if err != nil {
		return nil, err
	}
	w.setLag(d.id, n, oldest)
	if n == 0 {
		// Nothing of ours up to confirmed: skip it (saved now and then).
		return &lakeStep{sel: stepSel{node: m.node, after: after, upto: confirmed}, empty: true}, nil
	}
	w.mu.Lock()
	est, last := w.bytesPerRow, w.lastStep
	w.mu.Unlock()
	maxRows := max(uint64(float64(p.snap.t.FileBytes)/est), 1)
	if n < maxRows && w.now().Sub(last) < p.snap.t.every() {
		return idle, nil // the file is not due yet
	}
	upto := confirmed
	if n > maxRows {
		if upto, err = w.steps.nthSeq(ctx, d, m.node, after, confirmed, maxRows); err != nil {
			return nil, err
		}
	}
	return &lakeStep{sel: stepSel{node: m.node, after: after, upto: upto}}, nil
}

// writer writes a step's files.
type writer struct {
	steps stepper
	snap  *snapshot
}

func (x *writer) Deliver(ctx context.Context, s *lakeStep) error {
	res, err := x.steps.deliver(ctx, x.snap, s.sel, fileName(s.sel.node, s.sel.after, s.sel.upto))
	s.res = res
	return err
}

// watermark is the destination's mark on this node.
type watermark struct {
	w    *worker
	snap *snapshot
}

// Begin records the step before its files are written: a crash from here
// on repeats it with the same file names.
func (c *watermark) Begin(ctx context.Context, s *lakeStep) error {
	if s.resumed {
		return nil
	}
	w := c.w
	w.mu.Lock()
	w.m.pendingUpto = s.sel.upto
	mm := w.bump()
	w.mu.Unlock()
	return w.marks.putMark(ctx, mm)
}

// Advance moves the mark past a written step, or past events none of
// which are the destination's (saved at most every RefreshInterval).
func (c *watermark) Advance(ctx context.Context, s *lakeStep) error {
	w := c.w
	if s.empty {
		w.mu.Lock()
		w.m.seq = s.sel.upto
		var save *mark
		if w.now().Sub(w.saved) > w.cfg.RefreshInterval {
			mm := w.bump()
			save = &mm
		}
		w.mu.Unlock()
		if save != nil {
			return w.marks.putMark(ctx, *save)
		}
		return nil
	}
	now := w.now()
	w.mu.Lock()
	w.m.seq, w.m.pendingUpto = s.sel.upto, 0
	w.m.files += uint64(len(s.res.files))
	for _, f := range s.res.files {
		w.m.rows += f.rows
		w.m.bytes += f.bytes
		w.m.lastFile = f.partition + f.name
		if f.maxTime.After(w.m.lastEventAt) {
			w.m.lastEventAt = f.maxTime
		}
	}
	if len(s.res.files) > 0 {
		w.m.lastFileAt = now
	}
	if w.m.rows > 0 {
		w.bytesPerRow = max(float64(w.m.bytes)/float64(w.m.rows), 1)
	}
	w.m.lastError = ""
	w.lastStep = now
	mm := w.bump()
	w.mu.Unlock()
	if err := w.marks.putMark(ctx, mm); err != nil {
		return err
	}
	w.metrics.delivered(c.snap.d.id, s.res)
	return nil
}

var (
	_ flow.Source[*lakeStep] = (*planner)(nil)
	_ flow.Sink[*lakeStep]   = (*writer)(nil)
	_ flow.Cursor[*lakeStep] = (*watermark)(nil)
)
