// Command compare measures auditstore side by side with what users would
// otherwise run: PostgreSQL holding audit logs as the open-source peers
// ship it (Infisical's audit_logs table; see baseline.go). In one run, on
// the same generated events and the same questions, it measures
//
//  1. ingest: events/s for the same N events, auditstore through its real
//     HTTP ingest (until durable and visible), ClickHouse's raw columnar
//     INSERT (the ceiling), PostgreSQL through COPY (until committed), and
//     the bytes each holds after;
//  2. queries: the query benchmark's shapes (pages, filters, timelines,
//     aggregates), p50 and p99 of each;
//  3. export: rows/s of one org's log, auditstore's Parquet export against
//     PostgreSQL's COPY ... TO STDOUT CSV;
//
// each as medians over repeated runs with the ratio auditstore/PostgreSQL,
// and writes report.md and one PNG chart per section into -out.
//
//	go run ./bench/compare -out /tmp/compare
//
// Run it from the repository root: it builds ./cmd/auditstore, starts a
// private embedded ClickHouse and a private PostgreSQL cluster (installing
// Debian's postgresql package when absent), and removes both afterwards,
// also on Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/bench/internal/pg"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/engine"
)

// env is what the sections share: the private engine and cluster, the
// work directory (server binary, write-ahead logs) and the sizes.
type env struct {
	clean *cleanups
	work  string
	eng   *engine.Engine
	pgc   *pg.Cluster
	sizes Sizes
}

// cleanups run once, last added first: at the end, or on a signal.
type cleanups struct {
	mu   sync.Mutex
	fns  []func()
	done bool
}

func (c *cleanups) add(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, f)
}

func (c *cleanups) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
}

func main() {
	var s Sizes
	out := flag.String("out", filepath.Join(os.TempDir(), "auditstore-compare"), "directory for report.md and the charts")
	sections := flag.String("sections", "ingest,queries,export", "sections to run")
	render := flag.String("render", "", "only render report.md and the charts into -out from this report.json of an earlier run")
	flag.IntVar(&s.Ingest, "ingest", 200_000, "events of the ingest section")
	flag.IntVar(&s.Queries, "queries", 1_000_000, "events the queries run over")
	flag.IntVar(&s.Export, "export", 1_000_000, "rows of the exported org")
	flag.IntVar(&s.Orgs, "orgs", 120, "orgs of the ingest and query data (Zipf-skewed sizes)")
	flag.IntVar(&s.Runs, "runs", 3, "repeated runs of the query and export sections (medians are reported)")
	flag.IntVar(&s.IngestRuns, "ingest-runs", 0, "repeated runs of the ingest section (default: -runs)")
	flag.IntVar(&s.Reps, "reps", 50, "timed requests per shape and side in each query run")
	flag.IntVar(&s.Clients, "clients", 8, "concurrent HTTP clients posting to auditstore")
	flag.IntVar(&s.Batch, "batch", 1000, "events per ingest request")
	flag.IntVar(&s.PGWriters, "pg-writers", 2, "concurrent COPY connections into PostgreSQL")
	flag.IntVar(&s.PGBatch, "pg-batch", 10_000, "rows per COPY (one transaction each)")
	flag.Uint64Var(&s.Seed, "seed", 1, "generator seed")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if s.IngestRuns == 0 {
		s.IngestRuns = s.Runs
	}
	want := map[string]bool{}
	for _, x := range strings.Split(*sections, ",") {
		want[strings.TrimSpace(x)] = true
	}
	if err := check(s, want); err != nil {
		log.Fatal(err)
	}
	if *render != "" {
		if err := rerender(*render, *out); err != nil {
			log.Fatal(err)
		}
		return
	}
	var clean cleanups
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		log.Printf("interrupted: stopping PostgreSQL and ClickHouse, removing their directories ...")
		clean.run()
		os.Exit(130)
	}()
	err := run(&clean, s, want, *out)
	clean.run()
	if err != nil {
		log.Fatal(err)
	}
}

func check(s Sizes, want map[string]bool) error {
	for name := range want {
		if name != "ingest" && name != "queries" && name != "export" {
			return fmt.Errorf("-sections: unknown section %q (ingest, queries, export)", name)
		}
	}
	if s.Ingest < 1 || s.Queries < 1 || s.Export < 1 || s.Orgs < 1 || s.Runs < 1 || s.IngestRuns < 1 || s.Reps < 1 ||
		s.Clients < 1 || s.Batch < 1 || s.PGWriters < 1 || s.PGBatch < 1 {
		return fmt.Errorf("sizes, runs, clients and batches must be positive")
	}
	return nil
}

func run(clean *cleanups, s Sizes, want map[string]bool, out string) error {
	ctx := context.Background()
	started := time.Now()
	rep := &Report{Command: command(), Machine: benchutil.Machine(), LoadStart: loadAvg(), Revision: revision(), Sizes: s}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "auditstore-compare-")
	if err != nil {
		return err
	}
	clean.add(func() { os.RemoveAll(work) })

	bin, err := pg.Ensure(ctx, func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	cfg := pg.DefaultConfig()
	cfg.BinDir, cfg.Settings = bin, pg.ProductionSettings(pg.MemTotal())
	rep.PGSettings = cfg.Settings
	log.Printf("starting a private PostgreSQL cluster (%s) ...", bin)
	pgc, err := pg.Start(ctx, cfg)
	if err != nil {
		return err
	}
	clean.add(func() {
		if err := pgc.Stop(); err != nil {
			log.Printf("removing %s: %v", pgc.Dir(), err)
		}
	})
	rep.Postgres = strings.Fields(pgc.Version())[0]
	log.Printf("PostgreSQL %s on 127.0.0.1:%d in %s; starting the embedded ClickHouse ...", pgc.Version(), pgc.Port(), pgc.Dir())
	eng := benchutil.Engine(ctx, filepath.Join(work, "clickhouse"))
	clean.add(func() { _ = eng.Stop(context.Background()) })
	rep.ClickHouse = clickhouseVersion(ctx, eng)
	e := &env{clean: clean, work: work, eng: eng, pgc: pgc, sizes: s}

	if want["ingest"] {
		if rep.Ingest, err = runIngest(ctx, e); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	if want["queries"] {
		if rep.Queries, err = runQueries(ctx, e); err != nil {
			return fmt.Errorf("queries: %w", err)
		}
	}
	if want["export"] {
		if rep.Export, err = runExport(ctx, e); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	rep.LoadEnd, rep.Elapsed = loadAvg(), time.Since(started)
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "report.json"), raw, 0o644); err != nil {
		return err
	}
	return write(rep, out)
}

// write renders the report and its charts into out.
func write(rep *Report, out string) error {
	if _, err := writeCharts(out, rep); err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	md := rep.Markdown()
	if err := os.WriteFile(filepath.Join(out, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	log.Printf("report and charts in %s", out)
	return nil
}

// rerender renders a saved report.json again (after a change of the
// report's form), measuring nothing.
func rerender(file, out string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return write(&rep, out)
}

// command is the command line that reproduces this run.
func command() string {
	return strings.TrimSpace("go run ./bench/compare " + strings.Join(os.Args[1:], " "))
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " / ")
	}
	return "?"
}

func revision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "(unknown revision)"
	}
	return "at " + strings.TrimSpace(string(out))
}

// clickhouseVersion asks the engine its version.
func clickhouseVersion(ctx context.Context, e *engine.Engine) string {
	cfg := chconn.DefaultConfig()
	cfg.Addr, cfg.Database = e.Addr(), "default"
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		return "?"
	}
	defer conn.Close()
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "?"
	}
	return v
}
