// Package ingest is the write path: the HTTP endpoint that takes batches of
// audit events, the write-ahead log that makes them durable before they are
// acknowledged, and the batcher that moves them into ClickHouse with one
// columnar INSERT per batch, retrying until ClickHouse confirms.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/ingest/wal"
	"github.com/auditstore/auditstore/schema"
)

// Config configures the ingest path. Every limit is documented in README.
type Config struct {
	// WAL configures the write-ahead log (Dir is required).
	WAL wal.Options
	// BatchSize is the number of events that triggers an INSERT. Default 100,000.
	BatchSize int
	// FlushInterval is the longest an accepted event waits for its batch
	// to fill before the INSERT. Default 200ms.
	FlushInterval time.Duration
	// InsertTimeout bounds one INSERT attempt. Default 2m.
	InsertTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between INSERT attempts.
	// Defaults 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// MaxBodyBytes bounds a request body after decompression (413 beyond).
	// Default 10 MiB.
	MaxBodyBytes int64
	// MaxEvents bounds the events of one request (413 beyond). Default 10,000.
	MaxEvents int
	// MaxEventBytes bounds one event's JSON (400 beyond). Default 1 MiB.
	MaxEventBytes int
	// MaxErrors caps the problems listed in a 400. Default 100.
	MaxErrors int
	// MaxConcurrentRequests bounds the requests decoded at once. Default 32.
	MaxConcurrentRequests int
	// BodyReadTimeout bounds the reading of one request body, which happens
	// before the request takes one of the MaxConcurrentRequests slots
	// (408 body_timeout beyond). Default 30s.
	BodyReadTimeout time.Duration
	// MaxBufferedBytes bounds the memory of all request bodies held at
	// once, being read, decompressed or decoded (503 busy beyond). Default
	// 0: MaxConcurrentRequests times MaxBodyBytes.
	MaxBufferedBytes int64
	// Event holds the per-event validation limits.
	Event schema.Limits
	// RecentIDs and RecentWindow bound the memory of ids accepted without a
	// timestamp (see recentIDs). Defaults 1,000,000 and 1h.
	RecentIDs    int
	RecentWindow time.Duration
	// RetryAfter is the Retry-After given with a 503 when the log is full.
	// Default 5s.
	RetryAfter time.Duration
	// NodeID names this server's write-ahead log in the events it inserts
	// (column ingest_node). Default: read from, or created in, WAL.Dir.
	NodeID string
}

// DefaultConfig returns the defaults; WAL.Dir and WAL.Logger remain to be set.
func DefaultConfig() Config {
	return Config{
		WAL:       wal.DefaultOptions(),
		BatchSize: 100_000, FlushInterval: 200 * time.Millisecond, InsertTimeout: 2 * time.Minute,
		RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second,
		MaxBodyBytes: 10 << 20, MaxEvents: 10_000, MaxEventBytes: 1 << 20, MaxErrors: 100,
		MaxConcurrentRequests: 32, BodyReadTimeout: 30 * time.Second, Event: schema.DefaultLimits(),
		RecentIDs: 1_000_000, RecentWindow: time.Hour, RetryAfter: 5 * time.Second,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BatchSize <= 0 || c.FlushInterval <= 0 || c.InsertTimeout <= 0:
		return errors.New("ingest: batch size, flush interval and insert timeout must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("ingest: want 0 < RetryMin <= RetryMax")
	case c.MaxBodyBytes <= 0 || c.MaxEvents <= 0 || c.MaxEventBytes <= 0 || c.MaxErrors <= 0:
		return errors.New("ingest: body, event and error limits must be positive")
	case c.MaxConcurrentRequests <= 0:
		return errors.New("ingest: MaxConcurrentRequests must be positive")
	case c.BodyReadTimeout <= 0:
		return errors.New("ingest: BodyReadTimeout must be positive")
	case c.MaxBufferedBytes != 0 && c.MaxBufferedBytes <= c.MaxBodyBytes:
		return errors.New("ingest: MaxBufferedBytes must exceed MaxBodyBytes")
	case c.RecentIDs < 0 || c.RecentWindow < 0 || c.RetryAfter <= 0:
		return errors.New("ingest: RecentIDs and RecentWindow must not be negative, RetryAfter positive")
	}
	return c.Event.Validate()
}

// PlanSource gives an org's current plan (its events' retention).
type PlanSource interface {
	Plan(ctx context.Context, org string) (schema.Plan, error)
}

// Pipeline is the durable path from accepted rows to ClickHouse.
type Pipeline struct {
	cfg    Config
	conn   Conn
	plans  PlanSource
	log    *slog.Logger
	wal    *wal.WAL
	m      *metrics
	recent *recentIDs
	sem    chan struct{}
	bodies *budget // request bodies in memory

	pending   atomic.Int64  // events durable but not yet in ClickHouse
	confirmed atomic.Uint64 // every ingest_seq up to this is visible in ClickHouse
	replayEnd wal.LSN       // records up to here were left by a previous run
	flushNow  chan struct{}
	committed chan struct{} // closed and replaced after each commit

	mu           sync.Mutex
	failingSince time.Time // first failed INSERT of the current streak
	lastErr      error
	done         chan struct{}
}

// Open opens the write-ahead log (replaying nothing yet: Run does) and
// returns the pipeline. Call Run to move events into ClickHouse.
func Open(conn Conn, plans PlanSource, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := wal.Open(cfg.WAL)
	if err != nil {
		return nil, err
	}
	if cfg.NodeID == "" {
		if cfg.NodeID, err = nodeID(cfg.WAL.Dir); err != nil {
			w.Close()
			return nil, err
		}
	}
	p := &Pipeline{cfg: cfg, conn: conn, plans: plans, log: log, wal: w,
		recent:   newRecentIDs(cfg.RecentIDs, cfg.RecentWindow),
		sem:      make(chan struct{}, cfg.MaxConcurrentRequests),
		bodies:   &budget{max: bufferedBytes(cfg)},
		flushNow: make(chan struct{}, 1), committed: make(chan struct{}), done: make(chan struct{})}
	p.replayEnd = w.Durable()
	p.m = newMetrics(reg, p)
	if backlog := w.Durable() - w.Committed(); backlog > 0 {
		log.Info("write-ahead log holds records not yet confirmed by ClickHouse; replaying", "records", backlog)
	}
	return p, nil
}

// ErrFull is the client-facing error when the write-ahead log is full.
func (p *Pipeline) errFull() *schema.Error {
	b, _ := p.wal.Stats()
	return schema.Unavailable("wal_full", fmt.Sprintf(
		"the write-ahead log is full (%d of %d bytes): ClickHouse is not taking events fast enough; retry later",
		b, p.wal.MaxBytes()))
}

// Append makes rows durable and returns nil only once they are: the 2xx
// the caller gives after this is a promise kept by the write-ahead log.
func (p *Pipeline) Append(ctx context.Context, rows []schema.Row) error {
	if len(rows) == 0 {
		return nil
	}
	buf := encodeRows(make([]byte, 0, 256*len(rows)), rows)
	if _, err := p.wal.Append(ctx, buf); err != nil {
		if errors.Is(err, wal.ErrFull) {
			return p.errFull()
		}
		return fmt.Errorf("write-ahead log: %w", err)
	}
	p.pending.Add(int64(len(rows)))
	p.m.accepted.Add(float64(len(rows)))
	return nil
}

// Record durably records one of the store's own audit events (queries,
// exports, key changes) of org; it implements tenant.Recorder.
func (p *Pipeline) Record(ctx context.Context, org string, e schema.Event) error {
	plan, err := p.plans.Plan(ctx, org)
	if err != nil {
		return err
	}
	e.OrgID = org
	now := time.Now()
	if e.ID == "" {
		e.ID = schema.NewEventID()
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = now
	}
	return p.Append(ctx, []schema.Row{schema.NewRow(&e, org, now, plan)})
}

// Seq is the ingest_seq of the i-th row of write-ahead log record lsn.
// A request holds at most MaxEvents rows, far below 1<<16.
func Seq(lsn wal.LSN, i int) uint64 { return uint64(lsn)<<16 | uint64(i) }

// NodeID names the rows this pipeline inserts (column ingest_node).
func (p *Pipeline) NodeID() string { return p.cfg.NodeID }

// Confirmed returns the ingest_seq up to which every row this node
// inserted is visible in ClickHouse: readers that go "after my cursor, up
// to Confirmed, in ingest_seq order" see every row once and in order.
func (p *Pipeline) Confirmed() uint64 {
	if c := p.confirmed.Load(); c != 0 {
		return c
	}
	// Nothing inserted in this run yet: all that the log committed before.
	return Seq(p.wal.Committed(), 1<<16-1)
}

// Health returns why the pipeline cannot take or deliver events, if so.
func (p *Pipeline) Health() []string {
	var reasons []string
	if p.wal.Full() {
		reasons = append(reasons, p.errFull().Message)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.failingSince.IsZero() {
		reasons = append(reasons, fmt.Sprintf("inserts into ClickHouse failing since %s (%d events waiting in the write-ahead log): %v",
			p.failingSince.UTC().Format(time.RFC3339), p.pending.Load(), p.lastErr))
	}
	return reasons
}

// Flush waits until every event durable when it was called is in
// ClickHouse, or ctx ends.
func (p *Pipeline) Flush(ctx context.Context) error {
	target := p.wal.Durable()
	for {
		p.mu.Lock()
		ch := p.committed
		p.mu.Unlock()
		if p.wal.Committed() >= target {
			return nil
		}
		select {
		case p.flushNow <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-p.done:
			if p.wal.Committed() >= target {
				return nil
			}
			return errors.New("ingest: pipeline stopped before the flush completed")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close releases the write-ahead log; call after Run has returned. Events
// not yet in ClickHouse stay in the log for the next start.
func (p *Pipeline) Close() error { return p.wal.Close() }

// Run moves durable events into ClickHouse until ctx ends: it reads the
// log from the last confirmed record (replaying what a previous run left),
// fills a batch up to BatchSize events or FlushInterval, inserts it, retrying
// with backoff until ClickHouse confirms, and only then commits the log.
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
// until FlushInterval has passed since its first event (or a flush is
// asked for). ok is false when ctx ended first.
func (p *Pipeline) fillBatch(ctx context.Context, r *wal.Reader, cols *columns, rows *[]schema.Row) (first, last wal.LSN, ok bool) {
	var started time.Time
	for ctx.Err() == nil {
		for cols.len() < p.cfg.BatchSize {
			lsn, rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				p.log.Error("ingest: cannot read the write-ahead log; retrying", "error", err)
				sleep(ctx, time.Second)
				break
			}
			if *rows, err = decodeRows(rec, (*rows)[:0]); err != nil {
				p.m.corruptSkips.Inc()
				p.log.Error("ingest: undecodable write-ahead log record skipped", "lsn", lsn, "error", err)
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
			p.wait(ctx, nil)
			continue
		}
		if cols.len() < p.cfg.BatchSize {
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

// insertBatch inserts until ClickHouse confirms, then commits the log.
// It returns false only when ctx ended first (the batch stays in the log).
func (p *Pipeline) insertBatch(ctx context.Context, cols *columns, first, last wal.LSN) bool {
	token := fmt.Sprintf("auditstore-wal-%d-%d", first, last)
	n := cols.len()
	start := time.Now()
	backoff := p.cfg.RetryMin
	for {
		ictx, cancel := context.WithTimeout(ctx, p.cfg.InsertTimeout)
		err := insert(ictx, p.conn, cols, token)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		p.m.insertErrors.Inc()
		p.mu.Lock()
		if p.failingSince.IsZero() {
			p.failingSince = time.Now()
		}
		p.lastErr = err
		p.mu.Unlock()
		p.log.Warn("ingest: insert failed; retrying (events stay in the write-ahead log)",
			"events", n, "retry_in", backoff, "error", err)
		// Full jitter keeps many servers from retrying in step.
		if !sleep(ctx, backoff/2+rand.N(backoff/2+1)) {
			return false
		}
		backoff = min(backoff*2, p.cfg.RetryMax)
	}
	p.confirmed.Store(Seq(last, 1<<16-1))
	if err := p.wal.Commit(last); err != nil {
		// The rows are in ClickHouse; a failed checkpoint only means a replay
		// after a restart, whose identical rows reads fold.
		p.log.Error("ingest: cannot commit the write-ahead log", "error", err)
	}
	p.pending.Add(-int64(n))
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
