package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/auditstore/auditstore/exporter"
	"github.com/auditstore/auditstore/exporter/lake"
	"github.com/auditstore/auditstore/exporter/stream"
	"github.com/auditstore/auditstore/ingest"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/cluster"
	"github.com/auditstore/auditstore/internal/console"
	"github.com/auditstore/auditstore/internal/engine"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/query"
	"github.com/auditstore/auditstore/schema"
)

// backend is a connected, migrated ClickHouse, and the embedded engine
// behind it when there is one.
type backend struct {
	conn     driver.Conn
	httpAddr string             // ClickHouse's HTTP interface
	ch       chconn.Config      // the native connection's settings
	engine   *engine.Supervisor // nil for an external server
	cluster  *cluster.Conns     // every node of -clickhouse-cluster, nil for one server
}

// openBackend starts the embedded engine unless an external server is
// configured, connects and runs the migrations.
func openBackend(ctx context.Context, cfg config, log *slog.Logger, progressOut *os.File) (*backend, error) {
	b := &backend{}
	chcfg := cfg.ClickHouse
	if chcfg.Addr == "" {
		lib, err := engine.Fetch(ctx, cfg.EngineCache, progressPrinter(progressOut))
		if err != nil {
			return nil, fmt.Errorf("embedded clickhouse: %w", err)
		}
		ecfg := engine.DefaultConfig()
		ecfg.Lib, ecfg.DataDir, ecfg.Logger = lib, filepath.Join(cfg.DataDir, "clickhouse"), log
		ecfg.TCPPort, ecfg.HTTPPort = cfg.EnginePorts[0], cfg.EnginePorts[1]
		ecfg.UncompressedCache = cfg.EngineReadCache
		ecfg.Password = engine.NewPassword() // new at every start; only this process knows it
		if b.engine, err = engine.StartSupervised(ctx, ecfg); err != nil {
			return nil, err
		}
		chcfg.Addr, chcfg.Username, chcfg.Password = b.engine.Addr(), engine.User, ecfg.Password
		b.httpAddr = b.engine.HTTPAddr()
	} else {
		b.httpAddr = cfg.ClickHouseHTTP
	}
	if cfg.Cluster != "" {
		if err := b.openCluster(ctx, cfg, &chcfg, log); err != nil {
			b.close(log)
			return nil, err
		}
	}
	b.ch = chcfg
	conn, err := chconn.Open(ctx, chcfg)
	if err != nil {
		b.close(log)
		return nil, err
	}
	b.conn = conn
	if b.cluster == nil {
		if _, err := migrate.Run(ctx, conn, log); err != nil {
			b.close(log)
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return b, nil
}

// openCluster reads the cluster's nodes from the configured server,
// connects to each, migrates them all, and points chcfg at the designated
// node (the small tables), which every pool but the ingest shards uses.
func (b *backend) openCluster(ctx context.Context, cfg config, chcfg *chconn.Config, log *slog.Logger) error {
	first, err := chconn.Open(ctx, *chcfg)
	if err != nil {
		return err
	}
	topo, err := cluster.Discover(ctx, first, cfg.Cluster)
	first.Close()
	if err != nil {
		return err
	}
	if b.cluster, err = cluster.Open(ctx, topo, *chcfg); err != nil {
		return err
	}
	mcfg := migrate.DefaultClusterConfig()
	mcfg.DDL = schema.ClusterDDL{Cluster: cfg.Cluster, Replicated: topo.Replicated()}
	mcfg.Holder, _ = os.Hostname()
	var nodes []migrate.Conn
	for _, c := range b.cluster.All() {
		nodes = append(nodes, c)
	}
	if err := migrate.RunCluster(ctx, nodes, mcfg, log); err != nil {
		return fmt.Errorf("migrate cluster %s: %w", cfg.Cluster, err)
	}
	chcfg.Addr = topo.Designated().Addr
	log.Info("clickhouse cluster", "cluster", cfg.Cluster, "shards", len(topo.Shards),
		"replicated", topo.Replicated(), "designated", chcfg.Addr)
	return nil
}

// shards returns the ingest connection of each shard, nil for one server.
func (b *backend) shards() []ingest.Conn {
	if b.cluster == nil {
		return nil
	}
	out := make([]ingest.Conn, len(b.cluster.Shards))
	for i := range out {
		out[i] = b.cluster.Shard(i)
	}
	return out
}

func (b *backend) close(log *slog.Logger) {
	if b.conn != nil {
		b.conn.Close()
	}
	if b.cluster != nil {
		b.cluster.Close()
	}
	if b.engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := b.engine.Stop(ctx); err != nil {
			log.Error("embedded clickhouse stop", "error", err)
		}
	}
}

func migrateOnly(ctx context.Context, cfg config, log *slog.Logger, progressOut *os.File) error {
	b, err := openBackend(ctx, cfg, log, progressOut)
	if err != nil {
		return err
	}
	b.close(log)
	return nil
}

func serve(ctx context.Context, cfg config, log *slog.Logger, progressOut *os.File) error {
	// Bind first: a taken port fails fast, before the engine starts.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	b, err := openBackend(ctx, cfg, log, progressOut)
	if err != nil {
		ln.Close()
		return err
	}
	defer b.close(log)
	lim := cfg.Limits
	pool, err := openPools(ctx, b.ch, b.conn, lim.Conns)
	if err != nil {
		return err
	}
	defer pool.close()

	adminToken := cfg.AdminToken
	if adminToken == "" {
		adminToken = tenant.NewAdminToken()
		// Shown once, on the terminal, never through the structured log.
		fmt.Fprintf(progressOut, "\nauditstore: generated admin token (shown only now; set -admin-token or AUDITSTORE_ADMIN_TOKEN to keep one):\n  %s\n\n", adminToken)
	}
	// The tenant service records key changes through the ingest pipeline,
	// which needs the tenant service for plans: tie the knot with rec.
	rec := &pipelineRecorder{}
	tcfg := tenant.DefaultConfig()
	tcfg.AdminToken, tcfg.Plans, tcfg.RefreshInterval = adminToken, cfg.Plans, cfg.KeyRefresh
	tcfg.DefaultTraceURL = cfg.TraceURL
	tenants, err := tenant.New(pool.auth, rec, tcfg, log)
	if err != nil {
		return err
	}
	if err := tenants.Refresh(ctx); err != nil {
		return fmt.Errorf("load orgs and keys: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	icfg := cfg.Ingest
	icfg.WAL.Dir, icfg.WAL.Logger = filepath.Join(cfg.DataDir, "wal"), log
	pipe, err := ingest.Open(pool.ingest, tenants, icfg, log, reg)
	if err != nil {
		return fmt.Errorf("open ingest pipeline: %w", err)
	}
	rec.p = pipe
	if shards := b.shards(); shards != nil {
		if err := pipe.UseShards(shards); err != nil {
			return err
		}
	}

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go tenants.Run(bg)
	pipeDone := make(chan struct{})
	go func() { pipe.Run(bg); close(pipeDone) }()

	qcfg := query.DefaultConfig()
	qcfg.CursorKey, qcfg.QueryTimeout, qcfg.MaxPageBytes, qcfg.MaxOffset = cfg.CursorKey, lim.QueryTimeout, lim.MaxPageBytes, cfg.MaxPageOffset
	queries, err := query.New(pool.query, rec, qcfg, log)
	if err != nil {
		return err
	}
	registerHourCounts(reg, queries)
	registerDayGroups(reg, queries)
	xcfg := exporter.DefaultConfig()
	xcfg.WriteTimeout, xcfg.MaxDuration = cfg.WriteTimeout, lim.ExportTimeout
	xcfg.ClickHouseHTTP, xcfg.Database, xcfg.User, xcfg.Password = b.httpAddr, b.ch.Database, b.ch.Username, b.ch.Password
	exports, err := exporter.New(pool.export, rec, xcfg, log)
	if err != nil {
		return err
	}

	key, err := streamKey(cfg, log)
	if err != nil {
		return err
	}
	scfg := stream.DefaultConfig()
	scfg.Key, scfg.AllowPrivate = key, cfg.AllowPrivate
	scfg.Deny = []string{ln.Addr().String(), b.ch.Addr, b.httpAddr} // never this server nor its ClickHouse
	if m := cfg.Security.MetricsListen; m != "" {
		scfg.Deny = append(scfg.Deny, m)
		stopMetrics, err := serveMetrics(cfg, reg, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	streams, err := stream.New(pool.stream, pipe, rec, scfg, log, reg)
	if err != nil {
		return err
	}
	streamsDone := make(chan struct{})
	go func() { streams.Run(bg); close(streamsDone) }()
	lcfg := lake.DefaultConfig()
	lcfg.Key, lcfg.AllowPrivate, lcfg.DirRoot, lcfg.DirLocal = key, cfg.AllowPrivate, cfg.LakeDir, b.engine != nil
	lakes, err := lake.New(pool.lake, pipe, rec, lcfg, log, reg)
	if err != nil {
		return err
	}
	lakesDone := make(chan struct{})
	go func() { lakes.Run(bg); close(lakesDone) }()

	rt := routes{tenants: tenants, pipe: pipe, queries: queries, exports: exports, streams: streams, lakes: lakes,
		access:      newAccess(cfg, adminToken),
		bodyTimeout: cfg.BodyReadTimeout, writeTimeout: cfg.WriteTimeout, limits: lim}
	if cfg.ConsoleOn {
		if rt.console, err = console.New(cfg.Console); err != nil {
			return err
		}
	}
	h := newHealth(b, pipe, adminToken)
	srv := &http.Server{
		Handler: newRouter(log, h, reg, rt),
		// No ReadTimeout or WriteTimeout: they would cut exports and cancel
		// long requests; httpx.Deadlines bounds each request instead.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("auditstore serving", "listen", "http://"+ln.Addr().String(), "version", version)

	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("http shutdown", "error", err)
	}
	// Move what is durable into ClickHouse while it answers; what does not
	// make it stays in the write-ahead log for the next start.
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := pipe.Flush(fctx); err != nil {
		log.Warn("events left in the write-ahead log for the next start", "error", err)
	}
	fcancel()
	stopBG()
	<-pipeDone
	<-streamsDone
	<-lakesDone
	if err := pipe.Close(); err != nil {
		log.Error("close write-ahead log", "error", err)
	}
	return serveErr
}

// streamKey returns the key sealing stream credentials: -stream-key, or
// the one in DATA/stream.key, created (0600) on the first start.
func streamKey(cfg config, log *slog.Logger) ([]byte, error) {
	text := cfg.StreamKey
	if text == "" {
		path := filepath.Join(cfg.DataDir, "stream.key")
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			text = strings.TrimSpace(string(b))
		case errors.Is(err, os.ErrNotExist):
			text = stream.NewKey()
			if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, fmt.Errorf("create %s: %w", path, err)
			}
			_, err = f.WriteString(text + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("write %s: %w", path, err)
			}
			log.Warn("created a stream key; back it up, and give every instance the same one (-stream-key)", "path", path)
		default:
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	key, err := stream.ParseKey(text)
	if err != nil {
		return nil, fmt.Errorf("stream key: %w", err)
	}
	return key, nil
}

// pipelineRecorder records the store's own audit events through the
// ingest pipeline once it exists.
type pipelineRecorder struct{ p *ingest.Pipeline }

func (r *pipelineRecorder) Record(ctx context.Context, org string, e schema.Event) error {
	return r.p.Record(ctx, org, e)
}

// registerDayGroups exposes what the query reader's day groups (partial
// aggregates of whole days kept in ClickHouse) do: blocks of days answered
// from them, blocks counted and kept, and failures.
func registerDayGroups(reg prometheus.Registerer, q *query.Handler) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "auditstore_query_day_groups_reused_total",
			Help: "Blocks of days (a day or a week) of an aggregate counted per group answered from the day groups kept in ClickHouse."},
			func() float64 { return float64(q.DayGroups().Reused) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "auditstore_query_day_groups_counted_total",
			Help: "Blocks of days counted per group from the events and kept (not kept yet, written since, or with an event expired since)."},
			func() float64 { return float64(q.DayGroups().Counted) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "auditstore_query_day_groups_failed_total",
			Help: "Counts that could not be written to ClickHouse, and answers that found kept rows missing (each read from the events instead)."},
			func() float64 { return float64(q.DayGroups().Failed) }),
	)
}

// registerHourCounts exposes what the query reader's kept hour counts do:
// hours answered from them and counted from the events, and the hours
// kept, for ranges narrowed by time alone (counts="whole"), for filtered
// ranges (counts="filtered") and per type for the event-type catalog
// (counts="event_types").
func registerHourCounts(reg prometheus.Registerer, q *query.Handler) {
	stat := func(kind int) query.HourCountStats {
		whole, f, types := q.HourCounts()
		return [...]query.HourCountStats{whole, f, types}[kind]
	}
	for kind, label := range []string{"whole", "filtered", "event_types"} {
		labels := prometheus.Labels{"counts": label}
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "auditstore_query_hours_reused_total", ConstLabels: labels,
				Help: "Hours of a total, a page, a histogram or an event-type catalog answered from the per-hour counts the reader keeps."},
				func() float64 { return float64(stat(kind).Reused) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "auditstore_query_hours_counted_total", ConstLabels: labels,
				Help: "Hours counted from the events (not kept, written since, or with an event expired since)."},
				func() float64 { return float64(stat(kind).Counted) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "auditstore_query_hour_counts_kept", ConstLabels: labels,
				Help: "Per-hour counts the reader keeps now (bounded by query.Config.HourCounts, FilterHourCounts and TypeHourCounts)."},
				func() float64 { return float64(stat(kind).Kept) }),
		)
	}
}
