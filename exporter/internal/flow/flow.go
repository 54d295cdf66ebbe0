// Package flow is the one-way shape every delivery of events out of the
// store shares (streams to log tools, files to a data lake): a Source reads
// a Batch of this node's events after a Cursor's position, a Sink delivers
// it, and only then does the Cursor move past it. Nothing in a pass calls
// back into the service that owns the worker: each part is passed in.
//
// It also holds what the workers around a pass share: the states a
// delivery reports, its Prometheus gauges (lag and state), and the Waker a
// worker sleeps on between passes.
package flow

import (
	"context"
	"fmt"
)

// Watermark is where this server's ingest path stands (*ingest.Pipeline
// implements it). Every event of node NodeID with ingest_seq at most
// Confirmed is visible in ClickHouse.
type Watermark interface {
	NodeID() string
	Confirmed() uint64
}

// Batch is what a Source read.
type Batch interface {
	// Empty reports that no event is to be delivered; the cursor still
	// moves to Next (events the filter left out).
	Empty() bool
	// Next is the cursor once the batch is delivered.
	Next() uint64
}

// Source reads the next batch of events after position after, up to upto
// (a Watermark's Confirmed). A batch whose Next is not past after means
// "nothing to do now". An error leaves the cursor where it was.
type Source[B Batch] interface {
	Read(ctx context.Context, after, upto uint64) (B, error)
}

// Sink delivers a batch. It returns nil only once the destination holds
// the batch; an error leaves the cursor where it was, so the batch (or one
// starting at the same position) is delivered again.
type Sink[B Batch] interface {
	Deliver(ctx context.Context, b B) error
}

// Cursor is a delivery's position on this node.
type Cursor[B Batch] interface {
	// Begin is called before b is delivered: a cursor that must repeat a
	// step exactly after a crash records it here. nil to go on.
	Begin(ctx context.Context, b B) error
	// Advance moves the position to b.Next() once b is delivered (or
	// empty), and stores it as the cursor sees fit.
	Advance(ctx context.Context, b B) error
}

// Result says what a pass did.
type Result int

// The results of a pass.
const (
	Idle      Result = iota // nothing to read (or not yet due)
	Skipped                 // the batch was empty: the cursor moved, nothing was sent
	Delivered               // a batch was delivered and the cursor moved
)

// Stage names the part of a pass that failed.
type Stage string

// The stages of a pass.
const (
	StageRead    Stage = "read"
	StageBegin   Stage = "begin"
	StageDeliver Stage = "deliver"
	StageAdvance Stage = "advance"
)

// Error is a failed pass: which stage failed, and why.
type Error struct {
	Stage Stage
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Stage, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Pass moves one batch one way: read after after up to upto, begin,
// deliver, advance. It returns the batch read (the zero B when the read
// failed) and, on failure, an *Error naming the stage.
func Pass[B Batch](ctx context.Context, src Source[B], sink Sink[B], cur Cursor[B], after, upto uint64) (B, Result, error) {
	b, err := src.Read(ctx, after, upto)
	if err != nil {
		return b, Idle, &Error{StageRead, err}
	}
	if b.Next() <= after {
		return b, Idle, nil
	}
	if b.Empty() {
		if err := cur.Advance(ctx, b); err != nil {
			return b, Skipped, &Error{StageAdvance, err}
		}
		return b, Skipped, nil
	}
	if err := cur.Begin(ctx, b); err != nil {
		return b, Idle, &Error{StageBegin, err}
	}
	if err := sink.Deliver(ctx, b); err != nil {
		return b, Idle, &Error{StageDeliver, err}
	}
	if err := cur.Advance(ctx, b); err != nil {
		return b, Delivered, &Error{StageAdvance, err}
	}
	return b, Delivered, nil
}
