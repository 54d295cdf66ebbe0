// Package lake delivers audit events to data lakes: partitioned Parquet
// files in S3-compatible object storage or in a directory, landing by
// themselves, each event exactly once, in a layout Athena, Trino, Spark,
// DuckDB and ClickHouse read without help.
//
// ClickHouse writes the files itself (INSERT INTO FUNCTION s3(...) or
// file(...) with PARTITION BY): the bytes never pass through this server.
// A delivery step takes the destination's events of one ingest node after
// its watermark, up to the node's confirmed watermark (bounded so that a
// file stays near the destination's size), and:
//
//  1. records the step (watermark, pending_upto) in ClickHouse;
//  2. writes one file per partition, named by the step's range
//     (<node>-<from>-<to>.parquet), replacing any earlier attempt;
//  3. reads each file back (rows, time range, size, checksum) into
//     lake_files;
//  4. rewrites each touched partition's _manifest.json from lake_files,
//     and checks after writing that no file was added meanwhile;
//  5. moves the watermark to the step's end.
//
// A crash anywhere repeats the recorded step with the same names, so a
// reader that goes by the manifests never sees a partial file, nor an
// event twice. Late events of a partition that already has files go into a
// new file of it; files are never rewritten with other contents.
//
// Several servers: each delivers the events its own ingest node ingested,
// with a watermark per (destination, node); file names carry the node.
package lake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/exporter/internal/flow"
	"github.com/auditstore/auditstore/exporter/stream"
	"github.com/auditstore/auditstore/schema"
)

// Conn is what the lake needs of a ClickHouse connection.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
}

// Watermark is where this server's ingest path stands (*ingest.Pipeline
// implements it): every event of node NodeID with ingest_seq at most
// Confirmed is visible in ClickHouse.
type Watermark = flow.Watermark

// Recorder durably records an audit event of an org.
type Recorder interface {
	Record(ctx context.Context, org string, e schema.Event) error
}

// Resolver resolves destination host names (net.DefaultResolver).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures data-lake delivery.
type Config struct {
	// Key seals destination credentials: the stream key (stream.KeyBytes).
	Key []byte
	// AllowPrivate admits S3 endpoints on loopback, private and link-local
	// addresses, and plain http to them (on-premises installs, tests), as
	// for streams. Default false: only https to public addresses.
	AllowPrivate bool
	// Resolver resolves endpoint names; nil means net.DefaultResolver.
	Resolver Resolver
	// DirRoot is the directory under which "dir" destinations write, as
	// ClickHouse sees it (the embedded engine: this machine; a ClickHouse
	// server: a path under its user_files_path). An org's destinations
	// write under DirRoot/org/<org id>/, the operator's under DirRoot/all/.
	// Empty disables "dir" destinations.
	DirRoot string
	// DirLocal says DirRoot is on this server's file system too (the
	// embedded engine): manifests are then written by this server, to a
	// temporary file renamed into place, so that a reader never meets a
	// half-written one. Otherwise ClickHouse writes them in place, and a
	// reader may meet one being rewritten (it then reads it again).
	DirLocal bool
	// MinEvery is the shortest interval a destination may set. Default 5m.
	MinEvery time.Duration
	// PollInterval is how often a worker looks for new events. Default 5s.
	PollInterval time.Duration
	// RefreshInterval is how often destinations are re-read, to pick up
	// changes made through other servers. Default 10s.
	RefreshInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a failed step.
	// Defaults 2s and 5m.
	RetryMin, RetryMax time.Duration
	// QueryTimeout bounds one ClickHouse read or bookkeeping write.
	// Default 30s.
	QueryTimeout time.Duration
	// WriteTimeout bounds one file write (ClickHouse to the destination).
	// Default 30m.
	WriteTimeout time.Duration
	// MaxConcurrentWrites bounds the steps running at once. Default 2.
	MaxConcurrentWrites int
	// MaxDestinationsPerOrg bounds one org's destinations. Default 10.
	MaxDestinationsPerOrg int
}

// DefaultConfig returns the defaults; Key remains to be set.
func DefaultConfig() Config {
	return Config{MinEvery: 5 * time.Minute, PollInterval: 5 * time.Second, RefreshInterval: 10 * time.Second,
		RetryMin: 2 * time.Second, RetryMax: 5 * time.Minute, QueryTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Minute, MaxConcurrentWrites: 2, MaxDestinationsPerOrg: 10}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.Key) != stream.KeyBytes:
		return fmt.Errorf("lake: the key must be %d bytes, got %d", stream.KeyBytes, len(c.Key))
	case c.DirRoot != "" && !path.IsAbs(c.DirRoot):
		return errors.New("lake: DirRoot must be an absolute path")
	case c.MinEvery <= 0 || c.PollInterval <= 0 || c.RefreshInterval <= 0:
		return errors.New("lake: MinEvery, PollInterval and RefreshInterval must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("lake: want 0 < RetryMin <= RetryMax")
	case c.QueryTimeout <= 0 || c.WriteTimeout <= 0:
		return errors.New("lake: QueryTimeout and WriteTimeout must be positive")
	case c.MaxConcurrentWrites <= 0 || c.MaxDestinationsPerOrg <= 0:
		return errors.New("lake: MaxConcurrentWrites and MaxDestinationsPerOrg must be positive")
	}
	return nil
}

// Service manages data-lake destinations and runs their deliveries.
type Service struct {
	cfg    Config
	store  *store
	wm     Watermark
	rec    Recorder
	log    *slog.Logger
	seal   *stream.Sealer
	m      *metrics
	writes chan struct{} // semaphore of concurrent steps
	now    func() time.Time

	writeMu sync.Mutex // serializes destination changes made through this server

	workers flow.Pool[*worker] // by destination id, while Run runs
	kick    chan struct{}

	backfillKick chan struct{}

	// hook, in tests, runs at the stages of a step ("writing", "written",
	// "recorded", "manifests"); an error stops the step there, as a crash
	// would.
	hook func(stage string) error
}

func (s *Service) at(stage string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(stage)
}

// New returns the lake service over conn; wm names this server's ingest
// node and its confirmed watermark; rec records the lake.* audit events of
// org destinations. Call Run to deliver.
func New(conn Conn, wm Watermark, rec Recorder, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if conn == nil || wm == nil || rec == nil || log == nil || reg == nil {
		return nil, errors.New("lake: conn, watermark, recorder, logger and registerer are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sl, err := stream.NewSealer(cfg.Key, "lake")
	if err != nil {
		return nil, err
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: &store{conn: conn, timeout: cfg.QueryTimeout}, wm: wm, rec: rec, log: log,
		seal: sl, m: m, writes: make(chan struct{}, cfg.MaxConcurrentWrites), now: time.Now,
		kick: make(chan struct{}, 1), backfillKick: make(chan struct{}, 1)}, nil
}

// Run delivers every destination until ctx ends. A step cut short by the
// end of ctx is repeated, with the same file names, by the next run.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.workers.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.backfillLoop(ctx)
	}()
	flow.Every(ctx, s.cfg.RefreshInterval, s.kick, func(ctx context.Context) {
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("lake: cannot read the destinations; keeping the running ones", "error", err)
		}
	})
}

// reconcile makes the running workers match the stored destinations.
func (s *Service) reconcile(ctx context.Context) error {
	defs, err := s.store.destinations(ctx, nil, "")
	if err != nil {
		return err
	}
	flow.Reconcile(ctx, &s.workers, defs, func(d def) (string, bool) { return d.id, !d.deleted },
		func(d def) *worker { return newWorker(s.deps(), s.open(d)) },
		func(w *worker, d def) {
			if !d.updated.Equal(w.def().d.updated) {
				w.update(s.open(d))
			}
		},
		s.m.forget)
	return nil
}

// backfillLoop runs the pending backfills, a day of each at a time.
func (s *Service) backfillLoop(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		more, err := s.runBackfills(ctx)
		wait := s.cfg.RefreshInterval
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			s.log.Warn("lake: backfill step failed; retrying", "error", err, "attempt", failures)
			wait = min(s.cfg.RetryMin<<min(failures-1, 20), s.cfg.RetryMax)
		case more:
			failures, wait = 0, 0
		default:
			failures = 0
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			case <-s.backfillKick:
			}
			t.Stop()
		}
	}
}

func (s *Service) changed() {
	select {
	case s.backfillKick <- struct{}{}:
	default:
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) worker(id string) *worker {
	w, _ := s.workers.Get(id)
	return w
}
