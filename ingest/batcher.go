package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/auditstore/auditstore/ingest/wal"
	"github.com/auditstore/auditstore/schema"
)

// Run moves durable events into ClickHouse until ctx ends: it reads the
// log from the last confirmed record (replaying what a previous run left),
// fills a batch up to BatchSize events, BatchBytes or FlushInterval, inserts
// it, retrying transient failures with backoff until ClickHouse confirms and
// setting aside in the quarantine the events it refuses for good, and only
// then commits the log.
//
// Filling and inserting overlap: while ClickHouse takes one batch, the next
// is read from the log and put in columns (decoding, metadata hashes) by a
// second goroutine, so that this work does not add to each insert's time.
// Batches are still inserted and committed one at a time, in log order; at
// most two are in memory.
func (p *Pipeline) Run(ctx context.Context) {
	defer close(p.done)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan *columns, 2)
	free <- new(columns)
	free <- new(columns)
	full := make(chan filled)
	go p.fill(fctx, free, full)
	for b := range full {
		if !p.insertBatch(ctx, b.cols, b.first, b.last) {
			cancel()
			for range full { // wait for the filler to let go of the log
			}
			return
		}
		b.cols.reset()
		free <- b.cols
	}
}

// filled is a batch ready to insert: its rows and the log records they
// came from.
type filled struct {
	cols        *columns
	first, last wal.LSN
}

// fill reads the log into batches until ctx ends, then closes full.
func (p *Pipeline) fill(ctx context.Context, free <-chan *columns, full chan<- filled) {
	defer close(full)
	r := p.wal.NewReader(p.wal.Committed() + 1)
	defer r.Close()
	var rows []schema.Row
	for {
		var cols *columns
		select {
		case cols = <-free:
		case <-ctx.Done():
			return
		}
		first, last, ok := p.fillBatch(ctx, r, cols, &rows)
		if !ok {
			return
		}
		select {
		case full <- filled{cols: cols, first: first, last: last}:
		case <-ctx.Done():
			return
		}
	}
}

// fillBatch fills cols from what is durable, up to BatchSize events or
// BatchBytes, or until FlushInterval has passed since its first event (or
// a flush is asked for). A record that fails its checksum or cannot be
// decoded goes to the quarantine. ok is false when ctx ended first.
func (p *Pipeline) fillBatch(ctx context.Context, r *wal.Reader, cols *columns, rows *[]schema.Row) (first, last wal.LSN, ok bool) {
	var started time.Time
	for ctx.Err() == nil {
		for cols.len() < p.cfg.BatchSize && cols.totalBytes < p.cfg.BatchBytes {
			lsn, rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil && !errors.Is(err, wal.ErrChecksum) {
				p.log.Error("ingest: cannot read the write-ahead log; retrying", "error", err)
				p.setReadErr(err)
				sleep(ctx, time.Second)
				break
			}
			if p.readFailing {
				p.setReadErr(nil)
			}
			*rows = (*rows)[:0]
			switch {
			case err != nil:
				// fall through to the quarantine below
			case len(rec) == 0:
				// A record lost to damage, found and reported when the log
				// was opened (wal.Open): nothing to insert.
			default:
				*rows, err = decodeRows(rec, *rows)
			}
			if err != nil {
				*rows = (*rows)[:0]
				if !p.quarantineRecord(ctx, lsn, rec, err) {
					return 0, 0, false
				}
			}
			for i := range *rows {
				cols.add(&(*rows)[i], p.cfg.NodeID, Seq(lsn, i))
			}
			if lsn <= p.replayEnd {
				p.pending.Add(int64(len(*rows))) // not counted by Append in this run
			}
			if first == 0 {
				first, started = lsn, time.Now()
			}
			last = lsn
		}
		if first == 0 {
			if !p.readFailing { // else it slept already: read again
				p.wait(ctx, nil)
			}
			continue
		}
		if cols.len() < p.cfg.BatchSize && cols.totalBytes < p.cfg.BatchBytes {
			if wait := p.cfg.FlushInterval - time.Since(started); wait > 0 {
				if p.wait(ctx, time.After(wait)) {
					continue // more may have arrived: top up the batch first
				}
			}
		}
		return first, last, true
	}
	return 0, 0, false
}

// setReadErr records whether the log can be read back (Health).
func (p *Pipeline) setReadErr(err error) {
	p.readFailing = err != nil
	p.mu.Lock()
	p.readErr = err
	p.mu.Unlock()
}

// wait blocks until new records are durable, a flush is requested, timer
// fires or ctx ends; it reports whether new records (or a flush) woke it.
func (p *Pipeline) wait(ctx context.Context, timer <-chan time.Time) bool {
	select {
	case <-p.wal.Notify():
		return true
	case <-p.flushNow:
		return false
	case <-timer:
		return false
	case <-ctx.Done():
		return false
	}
}

// insertBatch inserts until ClickHouse confirms, setting aside in the
// quarantine the events it refuses for good, then commits the log. It
// returns false only when ctx ended first (the batch stays in the log).
func (p *Pipeline) insertBatch(ctx context.Context, cols *columns, first, last wal.LSN) bool {
	n := cols.len()
	start := time.Now()
	quarantined, ok := p.insertOrIsolate(ctx, cols, p.token(first, last))
	if !ok {
		return false
	}
	n -= quarantined
	p.confirmed.Store(Seq(last, 1<<16-1))
	if err := p.wal.Commit(last); err != nil {
		// The rows are in ClickHouse; a failed checkpoint only means a replay
		// after a restart, whose identical rows reads fold.
		p.log.Error("ingest: cannot commit the write-ahead log", "error", err)
	}
	p.pending.Add(-int64(n + quarantined))
	p.m.inserted.Add(float64(n))
	p.m.batchSize.Observe(float64(n))
	p.m.flushLatency.Observe(time.Since(start).Seconds())
	p.mu.Lock()
	if !p.failingSince.IsZero() {
		p.log.Info("ingest: inserts into ClickHouse recovered", "after", time.Since(p.failingSince).Round(time.Millisecond))
	}
	p.failingSince, p.lastErr = time.Time{}, nil
	close(p.committed)
	p.committed = make(chan struct{})
	p.mu.Unlock()
	return true
}

// token is the insert deduplication token of the batch of log records
// first to last: unique per node and per life of its log (the epoch), so
// that two nodes, or a node whose log was wiped, never share one, and the
// same for every retry of the batch, also after a restart.
func (p *Pipeline) token(first, last wal.LSN) string {
	return fmt.Sprintf("auditstore-%s-%s-%d-%d", p.cfg.NodeID, p.wal.Epoch(), first, last)
}

// insertOrIsolate inserts cols, retrying transient failures. When
// ClickHouse refuses the rows themselves it bisects them, each half with
// its own token (the same on every retry and replay of the batch), down to
// the single events it refuses, which go to the quarantine. It returns how
// many events were quarantined, and false when ctx ended first.
func (p *Pipeline) insertOrIsolate(ctx context.Context, cols *columns, token string) (int, bool) {
	if cols.len() == 0 {
		return 0, true // every record of the batch went to the quarantine
	}
	err, ok := p.insertRetrying(ctx, cols, token)
	switch {
	case !ok:
		return 0, false
	case err == nil:
		return 0, true
	case cols.len() == 1:
		return 1, p.quarantineRow(ctx, cols, err)
	}
	p.log.Warn("ingest: ClickHouse refuses a batch for its data; splitting it to set the refused events aside",
		"events", cols.len(), "error", err)
	mid := cols.len() / 2
	q1, ok := p.insertOrIsolate(ctx, cols.slice(0, mid), token+"a")
	if !ok {
		return 0, false
	}
	q2, ok := p.insertOrIsolate(ctx, cols.slice(mid, cols.len()), token+"b")
	return q1 + q2, ok
}

// insertRetrying inserts cols until ClickHouse confirms (nil) or refuses
// the rows for good (that error); ok is false when ctx ended first.
func (p *Pipeline) insertRetrying(ctx context.Context, cols *columns, token string) (err error, ok bool) {
	backoff := p.cfg.RetryMin
	for {
		ictx, cancel := context.WithTimeout(ctx, p.cfg.InsertTimeout)
		err := insert(ictx, p.conn, cols, token)
		cancel()
		if err == nil {
			return nil, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		p.m.insertErrors.Inc()
		if perm, _ := permanent(err); perm {
			return err, true
		}
		p.mu.Lock()
		if p.failingSince.IsZero() {
			p.failingSince = time.Now()
		}
		p.lastErr = err
		p.mu.Unlock()
		p.log.Warn("ingest: insert failed; retrying (events stay in the write-ahead log)",
			"events", cols.len(), "retry_in", backoff, "error", err)
		// Full jitter keeps many servers from retrying in step.
		if !sleep(ctx, backoff/2+rand.N(backoff/2+1)) {
			return nil, false
		}
		backoff = min(backoff*2, p.cfg.RetryMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
