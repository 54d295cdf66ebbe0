// Package ingest is the write path: the HTTP endpoint that takes batches of
// audit events, the write-ahead log that makes them durable before they are
// acknowledged, and the batcher that moves them into ClickHouse with one
// columnar INSERT per batch, retrying until ClickHouse confirms.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// BatchBytes bounds a batch by the bytes of its events' text fields:
	// the INSERT starts once they pass it. Default 64 MiB.
	BatchBytes int
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
	// MaxEvents bounds the events of one request (413 beyond). Default
	// 10,000; at most MaxEventsLimit, since an event's ingest_seq holds its
	// index in the request in 16 bits (see Seq).
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
		BatchSize: 100_000, BatchBytes: 64 << 20, FlushInterval: 200 * time.Millisecond, InsertTimeout: 2 * time.Minute,
		RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second,
		MaxBodyBytes: 10 << 20, MaxEvents: 10_000, MaxEventBytes: 1 << 20, MaxErrors: 100,
		MaxConcurrentRequests: 32, BodyReadTimeout: 30 * time.Second, Event: schema.DefaultLimits(),
		RecentIDs: 1_000_000, RecentWindow: time.Hour, RetryAfter: 5 * time.Second,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BatchSize <= 0 || c.BatchBytes <= 0 || c.FlushInterval <= 0 || c.InsertTimeout <= 0:
		return errors.New("ingest: batch size and bytes, flush interval and insert timeout must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("ingest: want 0 < RetryMin <= RetryMax")
	case c.MaxEvents > MaxEventsLimit:
		return fmt.Errorf("ingest: MaxEvents is %d; at most %d events fit in one request (each event's ingest_seq numbers it within its request in 16 bits)",
			c.MaxEvents, MaxEventsLimit)
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
	q      *quarantine
	m      *metrics
	recent *recentIDs
	sem    chan struct{}
	bodies *budget // request bodies in memory

	pending   atomic.Int64  // events durable but not yet in ClickHouse
	confirmed atomic.Uint64 // every ingest_seq up to this is visible in ClickHouse
	replayEnd wal.LSN       // records up to here were left by a previous run
	resume    *inflight     // the batch in flight when the previous run stopped (Run takes it)
	shards    *shardSet     // the cluster's shards (UseShards), nil for one server
	// crashAfter, if set (tests), is called after each INSERT ClickHouse
	// confirms, with its token; true stops Run there, before the commit,
	// as a crash would.
	crashAfter func(token string) bool
	// readFailing is true while the log cannot be read back (fill only).
	readFailing bool
	flushNow    chan struct{}
	committed   chan struct{} // closed and replaced after each commit

	mu           sync.Mutex
	failingSince time.Time // first failed INSERT of the current streak
	lastErr      error
	readErr      error // the write-ahead log cannot be read back (batcher blocked)
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
	q, err := openQuarantine(cfg.WAL.Dir)
	if err != nil {
		w.Close()
		return nil, err
	}
	p := &Pipeline{cfg: cfg, conn: conn, plans: plans, log: log, wal: w, q: q,
		recent:   newRecentIDs(cfg.RecentIDs, cfg.RecentWindow),
		sem:      make(chan struct{}, cfg.MaxConcurrentRequests),
		bodies:   &budget{max: bufferedBytes(cfg)},
		flushNow: make(chan struct{}, 1), committed: make(chan struct{}), done: make(chan struct{})}
	p.replayEnd = w.Durable()
	p.m = newMetrics(reg, p)
	if backlog := w.Durable() - w.Committed(); backlog > 0 {
		log.Info("write-ahead log holds records not yet confirmed by ClickHouse; replaying", "records", backlog)
		if p.resume = p.loadInflight(); p.resume != nil {
			log.Info("ingest: replaying first the batch in flight when the server stopped, with its tokens",
				"first", p.resume.First, "last", p.resume.Last, "token", p.resume.Token)
		}
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
	return p.appendEncoded(ctx, encodeRows(make([]byte, 0, 256*len(rows)), rows), len(rows))
}

// appendEncoded writes n rows encoded by encodeRows as one record and
// returns once it is durable.
func (p *Pipeline) appendEncoded(ctx context.Context, buf []byte, n int) error {
	if _, err := p.wal.Append(ctx, buf); err != nil {
		if errors.Is(err, wal.ErrFull) {
			return p.errFull()
		}
		if errors.Is(err, wal.ErrUnavailable) {
			return schema.Unavailable("wal_unavailable",
				"the write-ahead log cannot write to disk; nothing of this request was stored; retry later")
		}
		return fmt.Errorf("write-ahead log: %w", err)
	}
	p.pending.Add(int64(n))
	p.m.accepted.Add(float64(n))
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

// MaxEventsLimit is the most rows one write-ahead log record may hold:
// Seq gives a row's index within its record 16 bits.
const MaxEventsLimit = 1<<16 - 1

// Seq is the ingest_seq of the i-th row of write-ahead log record lsn.
// A record holds at most MaxEventsLimit rows (Config.Validate bounds
// MaxEvents by it), so sequence numbers of two records never overlap.
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
	if since, err := p.wal.Fault(); err != nil {
		reasons = append(reasons, fmt.Sprintf("the write-ahead log cannot write since %s (ingest answers 503 wal_unavailable): %v",
			since.UTC().Format(time.RFC3339), err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr != nil {
		reasons = append(reasons, fmt.Sprintf("the write-ahead log cannot be read back; events wait behind the record: %v", p.readErr))
	}
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
