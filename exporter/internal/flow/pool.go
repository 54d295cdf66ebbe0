package flow

import (
	"context"
	"sync"
	"time"
)

// Runner is a worker a Pool runs, one per delivery.
type Runner interface {
	Run(ctx context.Context)
}

// Pool runs one worker per configured delivery (a stream, a lake
// destination) on this server, each in its own goroutine.
type Pool[W Runner] struct {
	mu      sync.Mutex
	running map[string]member[W]
	wg      sync.WaitGroup
}

type member[W Runner] struct {
	w      W
	cancel context.CancelFunc
}

// Sync makes the running workers those of ids: start(id) builds the
// worker of an id not running yet, which then runs until ctx ends or its
// id leaves; keep(id, w) is called for every worker still wanted (to hand
// it a changed definition); the workers of other ids are stopped, and
// gone(id) is called for each. The callbacks run under the pool's lock.
func (p *Pool[W]) Sync(ctx context.Context, ids []string, start func(id string) W, keep func(id string, w W), gone func(id string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running == nil {
		p.running = map[string]member[W]{}
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
		if m, ok := p.running[id]; ok {
			keep(id, m.w)
			continue
		}
		w := start(id)
		wctx, cancel := context.WithCancel(ctx)
		p.running[id] = member[W]{w: w, cancel: cancel}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer cancel()
			w.Run(wctx)
		}()
	}
	for id, m := range p.running {
		if !seen[id] {
			m.cancel()
			delete(p.running, id)
			gone(id)
		}
	}
}

// Get returns the running worker of id, if any.
func (p *Pool[W]) Get(id string) (W, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.running[id]
	return m.w, ok
}

// Stop stops every worker and returns once all have returned.
func (p *Pool[W]) Stop() {
	p.mu.Lock()
	for id, m := range p.running {
		m.cancel()
		delete(p.running, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Every calls f at once, then every interval or when kick fires, until
// ctx ends.
func Every(ctx context.Context, interval time.Duration, kick <-chan struct{}, f func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// Reconcile runs in p one worker per live definition of defs (key gives a
// definition's id and whether it is live, i.e. not deleted): start builds
// the worker of a new one, keep hands a running worker its definition as
// now stored, and gone is called for each id no longer live (see Sync).
func Reconcile[W Runner, D any](ctx context.Context, p *Pool[W], defs []D, key func(D) (string, bool),
	start func(D) W, keep func(W, D), gone func(id string)) {
	live := make(map[string]D, len(defs))
	ids := make([]string, 0, len(defs))
	for _, d := range defs {
		if id, ok := key(d); ok {
			live[id] = d
			ids = append(ids, id)
		}
	}
	p.Sync(ctx, ids, func(id string) W { return start(live[id]) }, func(id string, w W) { keep(w, live[id]) }, gone)
}
