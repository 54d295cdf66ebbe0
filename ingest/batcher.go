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
// most two are in memory. The batch in flight when the previous run stopped
// (see inflight) is replayed first, exactly as it was.
func (p *Pipeline) Run(ctx context.Context) {
	defer close(p.done)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan *columns, 2)
	free <- new(columns)
	free <- new(columns)
	full := make(chan filled)
	resume := p.resume
	p.resume = nil
	var until wal.LSN
	if resume != nil {
		until = resume.Last
	}
	go p.fill(fctx, free, full, until)
	for b := range full {
		rec := resume
		if rec == nil || rec.First != b.first || rec.Last != b.last {
			rec = &inflight{Epoch: p.wal.Epoch(), First: b.first, Last: b.last, Token: p.token(b.first, b.last)}
			p.saveInflight(rec)
		}
		resume = nil
		if !p.insertBatch(ctx, b.cols, rec) {
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

// fill reads the log into batches until ctx ends, then closes full. If
// until is set, the first batch ends exactly at that record.
func (p *Pipeline) fill(ctx context.Context, free <-chan *columns, full chan<- filled, until wal.LSN) {
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
		first, last, ok := p.fillBatch(ctx, r, cols, &rows, until)
		until = 0
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
// a flush is asked for); if until is set, exactly up to record until,
// whatever its size. A record that fails its checksum or cannot be decoded
// goes to the quarantine. ok is false when ctx ended first.
func (p *Pipeline) fillBatch(ctx context.Context, r *wal.Reader, cols *columns, rows *[]schema.Row, until wal.LSN) (first, last wal.LSN, ok bool) {
	var started time.Time
	room := func() bool {
		if until != 0 {
			return last < until
		}
		return cols.len() < p.cfg.BatchSize && cols.totalBytes < p.cfg.BatchBytes
	}
	for ctx.Err() == nil {
		for room() {
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
		if until != 0 && last < until {
			// The records were durable when the log was opened: only a
			// read error (it slept) stops short of them.
			if !p.readFailing {
				p.wait(ctx, time.After(p.cfg.FlushInterval))
			}
			continue
		}
		if first == 0 {
			if !p.readFailing { // else it slept already: read again
				p.wait(ctx, nil)
			}
			continue
		}
		if until == 0 && cols.len() < p.cfg.BatchSize && cols.totalBytes < p.cfg.BatchBytes {
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

// insertBatch inserts the batch of rec until ClickHouse confirms, setting
// aside in the quarantine the events it refuses for good, then commits the
// log. It returns false only when ctx ended first (the batch stays in the
// log, and rec on disk names it for the next start).
func (p *Pipeline) insertBatch(ctx context.Context, cols *columns, rec *inflight) bool {
	n := cols.len()
	start := time.Now()
	quarantined, ok := p.insertAll(ctx, cols, rec)
	if !ok {
		return false
	}
	n -= quarantined
	p.confirmed.Store(Seq(rec.Last, 1<<16-1))
	if err := p.wal.Commit(rec.Last); err != nil {
		// The rows are in ClickHouse; the next start commits them when it
		// finds the next batch recorded (loadInflight), else replays this
		// one, deduplicated.
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

// insertOrIsolate inserts cols, the sub-batch path of rec's batch ("" for
// all of it), retrying transient failures. When ClickHouse refuses the
// rows themselves it bisects them, each half with its own token (rec's and
// its path, the same on every retry and replay of the batch), down to the
// single events it refuses, which go to the quarantine. Each split is
// recorded in rec on disk before the halves are sent, and each event set
// aside once its entry is durable, so that a replay after a crash takes
// the same path even if the cause of the refusal was lifted meanwhile
// (only a crash between an entry and its record would send that event
// again). It returns how many events were quarantined, and false when ctx
// ended first.
func (p *Pipeline) insertOrIsolate(ctx context.Context, to target, cols *columns, rec *inflight, path string) (int, bool) {
	switch {
	case cols.len() == 0:
		return 0, true // every record of the batch went to the quarantine
	case rec.quarantined(path):
		return cols.len(), true // set aside before the previous run stopped
	}
	if !rec.split(path) {
		token := rec.Token + path
		err, ok := p.insertRetrying(ctx, to, cols, token)
		switch {
		case !ok:
			return 0, false
		case err == nil:
			if p.crashAfter != nil && p.crashAfter(token) {
				return 0, false
			}
			return 0, true
		case cols.len() == 1:
			if !p.quarantineRow(ctx, cols, err) {
				return 0, false
			}
			p.addQuarantined(rec, path)
			return 1, true
		}
		p.log.Warn("ingest: ClickHouse refuses a batch for its data; splitting it to set the refused events aside",
			"events", cols.len(), "error", err)
		p.addSplit(rec, path)
	}
	mid := cols.len() / 2
	q1, ok := p.insertOrIsolate(ctx, to, cols.slice(0, mid), rec, path+"a")
	if !ok {
		return 0, false
	}
	q2, ok := p.insertOrIsolate(ctx, to, cols.slice(mid, cols.len()), rec, path+"b")
	return q1 + q2, ok
}

// insertRetrying inserts cols until ClickHouse confirms (nil) or refuses
// the rows for good (that error); ok is false when ctx ended first.
func (p *Pipeline) insertRetrying(ctx context.Context, to target, cols *columns, token string) (err error, ok bool) {
	backoff := p.cfg.RetryMin
	for {
		ictx, cancel := context.WithTimeout(ctx, p.cfg.InsertTimeout)
		err := insertInto(ictx, to.conn, to.sql, cols, token)
		cancel()
		to.failed(err)
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
		if to.shard != 0 {
			err = fmt.Errorf("shard %d: %w", to.shard, err)
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
