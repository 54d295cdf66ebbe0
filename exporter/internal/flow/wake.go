package flow

import (
	"context"
	"time"
)

// Waker is what a worker sleeps on between passes: a timer, the end of its
// context, or a wake-up (its delivery changed, or was tested).
type Waker struct{ ch chan struct{} }

// NewWaker returns a Waker.
func NewWaker() Waker { return Waker{ch: make(chan struct{}, 1)} }

// Wake makes a waiting worker go on at once (or the next wait return
// at once).
func (w Waker) Wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// Wait blocks for d, a wake-up or the end of ctx, and reports a wake-up.
func (w Waker) Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
