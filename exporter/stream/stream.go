// Package stream delivers every audit event of an org to the log tools it
// already runs: Datadog, Splunk, Cribl, Azure Monitor (Microsoft Sentinel)
// and any HTTPS endpoint. An org's admin key manages its streams over
// /v1/streams; each stream has one goroutine that reads the org's events
// from ClickHouse in ingest order, after its cursor, in batches within the
// destination's documented limits, sends them, and moves its cursor only
// once the destination has acknowledged them.
//
// Guarantees. Every event accepted after a stream was created is delivered
// at least once, in receive order per org. The cursor lives in ClickHouse
// (stream_cursors) and survives restarts; a batch is sent again only after
// an ambiguous failure (a timeout, a dropped connection, a crash between
// the destination's answer and the cursor write). Timeouts, 429 and 5xx are
// retried with exponential backoff and full jitter, honouring Retry-After;
// other 4xx answers mark the stream failing (visible in its status) and it
// keeps its place, probing slowly until a PATCH or a successful test wakes
// it. A circuit breaker per stream makes a dead destination cost a probe now
// and then; streams never wait for one another.
//
// Multiple servers. Events are read per ingest node: each server delivers
// the events its own node ingested (ingest_node, ordered by ingest_seq, up
// to the node's confirmed watermark, so nothing is skipped), with a cursor
// per (stream, node). Receive order per org is therefore kept per node; a
// tenant whose events enter through several servers gets each server's
// events in order. A node that first meets a stream created elsewhere starts
// after its last event received before the stream's creation. A node whose
// data directory is lost takes its undelivered events with it.
package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/exporter/internal/flow"
	"github.com/auditstore/auditstore/schema"
)

// Conn is what streams need of a ClickHouse connection.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
}

// Watermark is where this server's ingest path stands (*ingest.Pipeline
// implements it). Every event of node NodeID with ingest_seq at most
// Confirmed is visible in ClickHouse.
type Watermark = flow.Watermark

// Recorder durably records an audit event of an org (tenant.Recorder has
// the same shape). It returns nil only once the event is durable.
type Recorder interface {
	Record(ctx context.Context, org string, e schema.Event) error
}

// Resolver resolves destination host names (net.DefaultResolver has this
// method). Every address it gives is checked before a connection is made.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// KeyBytes is the size of the stream key (AES-256).
const KeyBytes = 32

// Config configures streams. Base URLs of Datadog and Microsoft's login
// service are server-side settings: a stream's own config never names them.
type Config struct {
	// Key seals stream credentials (AES-256-GCM); exactly KeyBytes bytes.
	// Required. Changing it makes existing streams' credentials unreadable.
	Key []byte
	// AllowPrivate admits destinations on loopback, private, shared and
	// link-local networks, and plain http to such addresses (on-premises
	// installs, tests). Default false: only https to public addresses.
	AllowPrivate bool
	// Resolver resolves destination names; nil means net.DefaultResolver.
	Resolver Resolver
	// TLS is the client TLS configuration (extra root CAs); nil means the
	// system's roots.
	TLS *tls.Config
	// DatadogURL, when set, replaces https://http-intake.logs.<site> for
	// every Datadog site (tests, proxies). Default "".
	DatadogURL string
	// AzureLoginURL is the Microsoft identity platform's base URL.
	// Default https://login.microsoftonline.com.
	AzureLoginURL string
	// Hostname names this server in delivered records (Datadog hostname,
	// Splunk and Cribl host). Default os.Hostname().
	Hostname string
	// RequestTimeout bounds one HTTP request to a destination, connection
	// included. Default 30s.
	RequestTimeout time.Duration
	// PollInterval is how often an idle stream looks for new events.
	// Default 1s.
	PollInterval time.Duration
	// RefreshInterval is how often streams are re-read, to pick up changes
	// made through other servers. Default 5s.
	RefreshInterval time.Duration
	// RetryMin and RetryMax bound the backoff between retryable failures.
	// Defaults 1s and 1m.
	RetryMin, RetryMax time.Duration
	// MaxRetryAfter caps a destination's Retry-After. Default 10m.
	MaxRetryAfter time.Duration
	// BreakerFailures consecutive failures open a stream's circuit breaker;
	// it then waits BreakerOpen (doubling up to BreakerMaxOpen) before one
	// probe. Defaults 5, 30s and 10m.
	BreakerFailures             int
	BreakerOpen, BreakerMaxOpen time.Duration
	// FailingProbe is how often a stream whose destination refused a batch
	// (a 4xx other than 408 and 429) tries again. Default 5m.
	FailingProbe time.Duration
	// LagInterval is how often a lagging stream measures its lag. Default 15s.
	LagInterval time.Duration
	// CursorSaveInterval bounds how often a stream that only skips events
	// (filtered out) writes its cursor. Default 5s.
	CursorSaveInterval time.Duration
	// QueryTimeout bounds one ClickHouse read or write. Default 30s.
	QueryTimeout time.Duration
	// MaxConcurrentReads bounds the streams reading ClickHouse at once.
	// Default 8.
	MaxConcurrentReads int
	// MaxStreamsPerOrg bounds the streams of one org. Default 20.
	MaxStreamsPerOrg int
	// Deny lists host:port addresses no stream may reach, whatever
	// AllowPrivate says: this server's listen address and its ClickHouse's
	// ports (an empty host denies the port on every local address).
	// Names are resolved once, by New. Default none.
	Deny []string
}

// DefaultConfig returns the defaults; Key remains to be set.
func DefaultConfig() Config {
	return Config{
		AzureLoginURL:  "https://login.microsoftonline.com",
		RequestTimeout: 30 * time.Second, PollInterval: time.Second, RefreshInterval: 5 * time.Second,
		RetryMin: time.Second, RetryMax: time.Minute, MaxRetryAfter: 10 * time.Minute,
		BreakerFailures: 5, BreakerOpen: 30 * time.Second, BreakerMaxOpen: 10 * time.Minute,
		FailingProbe: 5 * time.Minute, LagInterval: 15 * time.Second, CursorSaveInterval: 5 * time.Second,
		QueryTimeout: 30 * time.Second, MaxConcurrentReads: 8, MaxStreamsPerOrg: 20,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.Key) != KeyBytes:
		return fmt.Errorf("stream: the stream key must be %d bytes, got %d", KeyBytes, len(c.Key))
	case c.AzureLoginURL == "":
		return errors.New("stream: AzureLoginURL is required")
	case c.RequestTimeout <= 0 || c.PollInterval <= 0 || c.RefreshInterval <= 0 || c.QueryTimeout <= 0:
		return errors.New("stream: request timeout, poll and refresh intervals and query timeout must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.MaxRetryAfter <= 0:
		return errors.New("stream: want 0 < RetryMin <= RetryMax and MaxRetryAfter > 0")
	case c.BreakerFailures <= 0 || c.BreakerOpen <= 0 || c.BreakerMaxOpen < c.BreakerOpen:
		return errors.New("stream: want BreakerFailures > 0 and 0 < BreakerOpen <= BreakerMaxOpen")
	case c.FailingProbe <= 0 || c.LagInterval <= 0 || c.CursorSaveInterval <= 0:
		return errors.New("stream: FailingProbe, LagInterval and CursorSaveInterval must be positive")
	case c.MaxConcurrentReads <= 0 || c.MaxStreamsPerOrg <= 0:
		return errors.New("stream: MaxConcurrentReads and MaxStreamsPerOrg must be positive")
	}
	return nil
}

// Service manages the streams of every org and runs their deliveries.
type Service struct {
	cfg    Config
	store  *store
	wm     Watermark
	rec    Recorder
	log    *slog.Logger
	seal   *sealer
	client *http.Client
	deny   *denyList
	env    *env
	m      *metrics
	ev     *eventReader
	now    func() time.Time

	writeMu sync.Mutex // serializes stream changes made through this server

	workers flow.Pool[*worker] // by stream id, while Run runs
	kick    chan struct{}      // a local change: reconcile now
}

// New returns the stream service reading events through conn; wm names
// this server's ingest node and its confirmed watermark; rec records the
// stream.create, stream.update, stream.delete and stream.test audit events,
// and the reads (stream.list, stream.read).
// Call Run to deliver.
func New(conn Conn, wm Watermark, rec Recorder, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if conn == nil || wm == nil || rec == nil || log == nil || reg == nil {
		return nil, errors.New("stream: conn, watermark, recorder, logger and registerer are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sl, err := newSealer(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Hostname == "" {
		if cfg.Hostname, _ = os.Hostname(); cfg.Hostname == "" {
			cfg.Hostname = "auditstore"
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	st := &store{conn: conn, timeout: cfg.QueryTimeout}
	s := &Service{cfg: cfg, store: st, wm: wm, rec: rec, log: log,
		seal: sl, m: m, ev: &eventReader{store: st, cfg: cfg, reads: make(chan struct{}, cfg.MaxConcurrentReads)}, now: time.Now,
		kick: make(chan struct{}, 1)}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	s.deny, err = newDenyList(rctx, cfg.Resolver, cfg.Deny)
	cancel()
	if err != nil {
		return nil, err
	}
	s.client = newClient(cfg, s.deny)
	s.env = &env{client: s.client, hostname: cfg.Hostname, datadogURL: cfg.DatadogURL,
		azureLoginURL: cfg.AzureLoginURL, timeout: cfg.RequestTimeout, now: time.Now}
	return s, nil
}

// Run delivers every stream until ctx ends: it re-reads the streams every
// RefreshInterval (and at once after a change made through this server),
// starts a worker for each new one, updates and wakes those that changed,
// and stops those deleted. When ctx ends, requests in flight are aborted
// (their batches are sent again by the next run) and Run returns once every
// worker has stopped.
func (s *Service) Run(ctx context.Context) {
	defer s.workers.Stop()
	flow.Every(ctx, s.cfg.RefreshInterval, s.kick, func(ctx context.Context) {
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("stream: cannot read the streams; keeping the running ones", "error", err)
		}
	})
}

// reconcile makes the running workers match the stored streams.
func (s *Service) reconcile(ctx context.Context) error {
	defs, err := s.store.streams(ctx, "", "")
	if err != nil {
		return err
	}
	flow.Reconcile(ctx, &s.workers, defs, func(d def) (string, bool) { return d.id, !d.deleted },
		func(d def) *worker { return newWorker(s.deps(), s.open(d)) },
		func(w *worker, d def) {
			if !d.updated.Equal(w.def().updated) {
				w.update(s.open(d))
			}
		},
		s.m.forget)
	return nil
}

// changed asks Run to reconcile now.
func (s *Service) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// worker returns the running worker of a stream, if any.
func (s *Service) worker(id string) *worker {
	w, _ := s.workers.Get(id)
	return w
}
