// Command query measures the query endpoints at scale: it loads generated
// events (bench/gen: many orgs of skewed sizes over 90 days) into
// ClickHouse in time order, as a steady ingest would, then times each
// query shape through the real handler stack (tenant middleware, parser,
// compiler, store) over HTTP on loopback, and prints p50/p99 per shape as
// a Markdown table, with a second table of what FINAL costs.
//
//	go run ./bench/query -events 10000000 -orgs 120
//
// It starts its own embedded engine in a temporary directory unless
// -clickhouse names a server (whose database -database it replaces).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/query"
	"github.com/auditstore/auditstore/schema"
)

// discard records nothing: the benchmark times the queries, not the audit
// pipeline (the server records through the ingest write-ahead log).
type discard struct{}

func (discard) Record(context.Context, string, schema.Event) error { return nil }

func main() {
	var (
		events   = flag.Int("events", 10_000_000, "events to load")
		orgs     = flag.Int("orgs", 120, "orgs")
		seed     = flag.Uint64("seed", 1, "generator seed")
		batch    = flag.Int("batch", 100_000, "rows per INSERT")
		runs     = flag.Int("runs", 100, "timed requests per shape and org choice")
		addr     = flag.String("clickhouse", "", "host:port of a ClickHouse server (native protocol); empty starts the embedded engine")
		database = flag.String("database", "auditstore_bench_query", "database on that server, dropped and recreated")
		settle   = flag.Duration("settle", 5*time.Minute, "longest wait for background merges after loading")
		calm     = flag.Duration("calm", 3*time.Minute, "then the longest wait for the 1-minute load average to fall below 1.5 (the loader's own load leaves it high)")
		out      = flag.String("out", "", "also write the Markdown report to this file")
		hold     = flag.Bool("hold", false, "after the report, keep ClickHouse running (for EXPLAIN by hand) until interrupted")
		costN    = flag.Int("insert-cost", 1_000_000, "events per run of the lookup table's insert cost measure (0 skips it)")
		brk      = flag.Bool("breakdown", true, "also break the newest page's latency down into its parts (authentication, audit record, FINAL, total, JSON)")
		reuse    = flag.Bool("reuse", false, "with -clickhouse: time the shapes on a database an earlier run loaded with the same -events, -orgs and -seed (kept with -hold)")
		only     = flag.String("only", "", "time only the shapes whose names contain one of these comma-separated words (e.g. page,histogram)")
	)
	flag.Parse()
	if *only != "" {
		shapes = selectShapes(shapes, strings.Split(*only, ","))
		if len(shapes) == 0 {
			log.Fatalf("-only %q: no shape's name contains any of these words", *only)
		}
	}
	log.SetFlags(log.Ltime)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	ccfg := chconn.DefaultConfig()
	ccfg.Database = *database
	if *addr == "" {
		work, err := os.MkdirTemp("", "auditstore-bench-query-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(work)
		e := benchutil.Engine(ctx, filepath.Join(work, "ch"))
		defer e.Stop(context.Background())
		ccfg.Addr = e.Addr()
		log.Printf("embedded engine: native %s, HTTP %s, database %s", e.Addr(), e.HTTPAddr(), *database)
	} else {
		ccfg.Addr = *addr
		if !*reuse {
			if err := chconn.Drop(ctx, ccfg, *database); err != nil {
				log.Fatal(err)
			}
		}
	}
	if *reuse && *addr == "" {
		log.Fatal("-reuse needs -clickhouse")
	}
	conn := benchutil.OpenMigrated(ctx, ccfg)
	defer conn.Close()

	gcfg := gen.DefaultConfig()
	gcfg.Seed, gcfg.Orgs, gcfg.Events = *seed, *orgs, *events
	gcfg.End = time.Now().UTC().Truncate(time.Millisecond)
	g, err := gen.New(gcfg)
	if err != nil {
		log.Fatal(err)
	}
	loadStart := time.Now()
	var samp *samples
	if *reuse {
		samp = resample(g, gcfg)
	} else {
		samp = load(ctx, conn, g, gcfg, *batch)
	}
	loadTime := time.Since(loadStart)
	merged := settleMerges(ctx, conn, *settle)
	waitCalm(*calm)
	parts, bytes := partStats(ctx, conn)

	var costWith, costWithout, hoursWith, hoursWithout float64
	if *costN > 0 {
		log.Printf("measuring the insert cost of the lookup table and of the hour marks (%d events, twice each way) ...", *costN)
		costWith, costWithout = insertCost(ctx, ccfg, gcfg, *costN, *batch, "events_by_key_mv")
		hoursWith, hoursWithout = insertCost(ctx, ccfg, gcfg, *costN, *batch, "event_hours_mv")
	}

	// The main stack keeps the hour counts of ranges narrowed by time, not
	// those of filtered views: the samples repeat, and a repeated view would
	// be answered from its kept counts. Filtered views shown again are timed
	// apart, on a stack that keeps them (hf).
	dflt := query.DefaultConfig()
	h, keys := handlerStack(ctx, conn, g, quiet, dflt.HourCounts, 0)
	srv := httptest.NewServer(h)
	defer srv.Close()
	// The same stack without the hour counts, for the shapes they serve.
	h0, keys0 := handlerStack(ctx, conn, g, quiet, 0, 0)
	srv0 := httptest.NewServer(h0)
	defer srv0.Close()
	hf, keysf := handlerStack(ctx, conn, g, quiet, dflt.HourCounts, dflt.FilterHourCounts)
	srvf := httptest.NewServer(hf)
	defer srvf.Close()

	var rep strings.Builder
	fmt.Fprintf(&rep, "\n## Query benchmark\n\n`go run ./bench/query -events %d -orgs %d` on %s, ClickHouse %s (%s).\n\n",
		*events, *orgs, benchutil.Machine(), serverVersion(ctx, conn), map[bool]string{true: "embedded engine", false: "server " + *addr}[*addr == ""])
	largest := g.Orgs()[0]
	fmt.Fprintf(&rep, "Data: %d events of %d orgs over 90 days (largest %s: %.1f%%, about %d events; plans free 7 d, pro 90 d, enterprise 365 d), "+
		"%.1f%% re-sent copies; metadata about 300 bytes. Loaded in time order in INSERTs of %d rows: %s (%.0f events/s); "+
		"then %s of background merges, leaving %d active parts, %.2f GiB on disk.\n\n",
		*events, *orgs, largest.ID, largest.Share*100, int(largest.Share*float64(*events)), gcfg.ResendRate*100, *batch,
		loadTime.Round(time.Second), float64(*events)/loadTime.Seconds(), merged.Round(time.Second), parts, float64(bytes)/(1<<30))
	if *reuse {
		fmt.Fprintf(&rep, "(This run timed the database an earlier run with the same flags loaded; its load figures above are not a load.)\n\n")
	}
	fmt.Fprintf(&rep, "Each shape: %d requests one after another through the real handler stack (tenant middleware, parser, "+
		"compiler, ClickHouse, JSON) over HTTP on loopback, at orgs drawn by size (a request lands on an org in proportion to its events), "+
		"and %d more at the largest org alone. Page shapes answer 50 events with total and pages (count and page run side by side).\n\n", *runs, *runs)
	if *costN > 0 {
		fmt.Fprintf(&rep, "The timelines' lookup table (`events_by_key`, fed by a materialized view on every insert) costs the writers: "+
			"columnar INSERTs of %d events in batches of %d run at %s with it and %s without it (%.0f%% fewer events/s with it; mean of two runs each).\n\n",
			*costN, *batch, formatRate(costWith), formatRate(costWithout), (1-costWith/costWithout)*100)
		fmt.Fprintf(&rep, "The hour marks (`event_hours`, fed by a materialized view: one row per org and hour of each insert, "+
			"for the kept hour counts) likewise: %s with them and %s without them (%.0f%% fewer events/s with them).\n\n",
			formatRate(hoursWith), formatRate(hoursWithout), (1-hoursWith/hoursWithout)*100)
	}
	fmt.Fprintf(&rep, "Load average before timing: %s.\n\n", benchutil.LoadAverage())
	fmt.Fprintf(&rep, "| shape | p50 | p99 | p50 largest org | p99 largest org | target (p99) |\n|---|---|---|---|---|---|\n")
	client := &http.Client{Timeout: time.Minute}
	rng := rand.New(rand.NewPCG(*seed, 99))
	for _, s := range shapes {
		all := timeShape(client, srv.URL, s, pickWeighted(g, samp, rng), keys, samp, gcfg.End, *runs, rng)
		big := timeShape(client, srv.URL, s, func() string { return largest.ID }, keys, samp, gcfg.End, *runs, rng)
		target := "100 ms"
		if s.aggregate {
			target = "300 ms"
		}
		fmt.Fprintf(&rep, "| %s | %s | %s | %s | %s | %s |\n", s.name, ms(pct(all, 50)), ms(pct(all, 99)), ms(pct(big, 50)), ms(pct(big, 99)), target)
		log.Printf("%s: p50 %s p99 %s; largest org p50 %s p99 %s", s.name, ms(pct(all, 50)), ms(pct(all, 99)), ms(pct(big, 50)), ms(pct(big, 99)))
	}
	fmt.Fprintf(&rep, "\nThe shapes the kept counts serve (ranges narrowed by time alone), timed again one after the other through the "+
		"same stack with the counts kept (as above, now warm) and without them (`HourCounts: 0`, `TypeHourCounts: 0`, `DayGroups: false`: "+
		"the totals, histograms and event-type catalogs read the events with FINAL, as before migration 0012, and the top-10 groups "+
		"its whole range, as before migration 0013). Load average before: %s.\n\n", benchutil.LoadAverage())
	fmt.Fprintf(&rep, "| shape | kept counts p50 / p99 | without p50 / p99 | largest org, kept p50 / p99 | largest org, without p50 / p99 |\n|---|---|---|---|---|\n")
	for _, s := range shapes {
		if !s.timeOnly {
			continue
		}
		var d [4][]time.Duration
		for i, stk := range []struct {
			url  string
			keys map[string]string
		}{{srv.URL, keys}, {srv0.URL, keys0}} {
			d[i] = timeShape(client, stk.url, s, pickWeighted(g, samp, rng), stk.keys, samp, gcfg.End, *runs, rng)
			d[2+i] = timeShape(client, stk.url, s, func() string { return largest.ID }, stk.keys, samp, gcfg.End, *runs, rng)
		}
		fmt.Fprintf(&rep, "| %s | %s / %s | %s / %s | %s / %s | %s / %s |\n", s.name, ms(pct(d[0], 50)), ms(pct(d[0], 99)),
			ms(pct(d[1], 50)), ms(pct(d[1], 99)), ms(pct(d[2], 50)), ms(pct(d[2], 99)), ms(pct(d[3], 50)), ms(pct(d[3], 99)))
		log.Printf("%s: kept p50 %s, without %s; largest org kept %s, without %s", s.name, ms(pct(d[0], 50)), ms(pct(d[1], 50)),
			ms(pct(d[2], 50)), ms(pct(d[3], 50)))
	}
	fmt.Fprintf(&rep, "\nFiltered views read twice in a row (the second: their next page, a refresh) through a stack that keeps the hour "+
		"counts of filtered views (`FilterHourCounts`, default %d), and once through the main stack, which keeps none for filters "+
		"(the first table); p50 / p99, at orgs drawn by size, then at the largest org. Load average before: %s.\n\n",
		dflt.FilterHourCounts, benchutil.LoadAverage())
	fmt.Fprintf(&rep, "| shape | kept, first read | kept, read again | none kept | largest org: kept, first | again | none kept |\n|---|---|---|---|---|---|---|\n")
	for _, s := range shapes {
		if !s.filteredPage() {
			continue
		}
		first, again := timeRepeated(client, srvf.URL, s, pickWeighted(g, samp, rng), keysf, samp, gcfg.End, *runs, rng)
		none := timeShape(client, srv.URL, s, pickWeighted(g, samp, rng), keys, samp, gcfg.End, *runs, rng)
		firstBig, againBig := timeRepeated(client, srvf.URL, s, func() string { return largest.ID }, keysf, samp, gcfg.End, *runs, rng)
		noneBig := timeShape(client, srv.URL, s, func() string { return largest.ID }, keys, samp, gcfg.End, *runs, rng)
		cell := func(d []time.Duration) string { return ms(pct(d, 50)) + " / " + ms(pct(d, 99)) }
		fmt.Fprintf(&rep, "| %s | %s | %s | %s | %s | %s | %s |\n", s.name, cell(first), cell(again), cell(none), cell(firstBig), cell(againBig), cell(noneBig))
		log.Printf("%s: kept first p50 %s, again %s, none kept %s; largest org %s, %s, %s", s.name, ms(pct(first, 50)), ms(pct(again, 50)),
			ms(pct(none, 50)), ms(pct(firstBig, 50)), ms(pct(againBig, 50)), ms(pct(noneBig, 50)))
	}
	finalTable(ctx, &rep, conn, h.qh, largest.ID, samp, gcfg.End, max(1, *runs/2), rng)
	explainTable(ctx, &rep, conn, readsql.ReadSettingsText(), largest.ID, samp, gcfg.End)
	if *brk {
		breakdownTable(ctx, &rep, conn, h, keys, g, samp, gcfg.End, *runs, rng, quiet)
	}
	fmt.Print(rep.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(rep.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *hold {
		log.Printf("holding ClickHouse at %s (database %s); interrupt to end", ccfg.Addr, *database)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
}

type stack struct {
	http.Handler
	qh *query.Handler
}

// handlerStack builds what the server serves: the tenant middleware in
// front of the query routes, with one read key per org.
func handlerStack(ctx context.Context, conn driver.Conn, g *gen.Generator, log0 *slog.Logger, hourCounts, filterHourCounts int) (stack, map[string]string) {
	tcfg := tenant.DefaultConfig()
	tcfg.AdminToken = "bench-admin-token-0123456789"
	tenants, err := tenant.New(conn, discard{}, tcfg, log0)
	if err != nil {
		log.Fatal(err)
	}
	keys := map[string]string{}
	for _, o := range g.Orgs() {
		if _, err := tenants.CreateOrg(ctx, tenant.Attribution{}, o.ID, o.Plan.Name); err != nil && schema.KindOf(err) != schema.KindConflict {
			log.Fatal(err)
		}
		_, token, err := tenants.CreateKey(ctx, tenant.Attribution{}, o.ID, "read", "bench")
		if err != nil {
			log.Fatal(err)
		}
		keys[o.ID] = token
	}
	qcfg := query.DefaultConfig()
	qcfg.HourCounts, qcfg.FilterHourCounts = hourCounts, filterHourCounts
	if hourCounts == 0 {
		qcfg.TypeHourCounts, qcfg.DayGroups = 0, false // the stack without hour counts keeps none of any kind
	}
	qh, err := query.New(conn, discard{}, qcfg, log0)
	if err != nil {
		log.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.Errors(log0), tenants.Middleware())
	qh.Routes(r, tenant.Require)
	return stack{Handler: r, qh: qh}, keys
}

// pickWeighted draws orgs in proportion to their size, among those with
// samples.
func pickWeighted(g *gen.Generator, s *samples, rng *rand.Rand) func() string {
	var ids []string
	var cdf []float64
	acc := 0.0
	for _, o := range g.Orgs() {
		if len(s.byOrg[o.ID]) > 0 {
			acc += o.Share
			ids, cdf = append(ids, o.ID), append(cdf, acc)
		}
	}
	return func() string {
		i := sort.SearchFloat64s(cdf, rng.Float64()*acc)
		return ids[min(i, len(ids)-1)]
	}
}

func timeShape(client *http.Client, base string, s shape, org func() string, keys map[string]string, samp *samples,
	now time.Time, runs int, rng *rand.Rand) []time.Duration {
	var d []time.Duration
	for i := -3; i < runs; i++ { // three warm-up requests
		o := org()
		l := samp.byOrg[o]
		target := s.target(now, l[rng.IntN(len(l))])
		el := timeRequest(client, base+target, keys[o])
		if i >= 0 {
			d = append(d, el)
		}
	}
	return d
}

// timeRepeated is timeShape sending each request twice in a row: it
// returns the times of the first and of the second.
func timeRepeated(client *http.Client, base string, s shape, org func() string, keys map[string]string, samp *samples,
	now time.Time, runs int, rng *rand.Rand) (first, again []time.Duration) {
	for range runs {
		o := org()
		l := samp.byOrg[o]
		target := s.target(now, l[rng.IntN(len(l))])
		first = append(first, timeRequest(client, base+target, keys[o]))
		again = append(again, timeRequest(client, base+target, keys[o]))
	}
	return first, again
}

// timeRequest sends one GET with key and returns how long its answer took.
func timeRequest(client *http.Client, url, key string) time.Duration {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		log.Fatalf("%s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		log.Fatalf("%s: %d %s", url, resp.StatusCode, body)
	}
	return el
}

// finalTable times compiled statements at the largest org three ways, to
// show what FINAL costs and what the read settings win back.
func finalTable(ctx context.Context, rep *strings.Builder, conn driver.Conn, qh *query.Handler, org string, samp *samples,
	now time.Time, runs int, rng *rand.Rand) {
	readSettings := readsql.ReadSettingsText()
	fmt.Fprintf(rep, "\nWhat FINAL costs: statements compiled by the query package, run directly at the largest org, p50 / p99 of %d runs each.\n\n", runs)
	fmt.Fprintf(rep, "| statement |")
	for _, v := range variants {
		fmt.Fprintf(rep, " %s |", v.name)
	}
	fmt.Fprintf(rep, "\n|---|%s\n", strings.Repeat("---|", len(variants)))
	for _, s := range statements {
		fmt.Fprintf(rep, "| %s |", s.name)
		for _, v := range variants {
			var d []time.Duration
			for i := -2; i < runs; i++ {
				l := samp.byOrg[org]
				st := s.st(org, now, l[rng.IntN(len(l))])
				sql := st.SQL
				if !v.final {
					sql = strings.ReplaceAll(sql, " FINAL", "")
				}
				set := clickhouse.Settings{}
				if v.settings {
					for k, val := range readSettings {
						set[k] = val
					}
				}
				qctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters(st.Wire())), clickhouse.WithSettings(set))
				start := time.Now()
				rows, err := conn.Query(qctx, sql)
				if err != nil {
					log.Fatalf("%s (%s): %v", s.name, v.name, err)
				}
				for rows.Next() {
				}
				rows.Close()
				if i >= 0 {
					d = append(d, time.Since(start))
				}
			}
			fmt.Fprintf(rep, " %s / %s |", ms(pct(d, 50)), ms(pct(d, 99)))
		}
		fmt.Fprintln(rep)
	}
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func serverVersion(ctx context.Context, conn driver.Conn) string {
	var v string
	_ = conn.QueryRow(ctx, "SELECT version()").Scan(&v)
	return v
}

// settleMerges waits until no merge has run for a few seconds (or max),
// as a table looks between bursts of ingest.
func settleMerges(ctx context.Context, conn driver.Conn, max time.Duration) time.Duration {
	start, quiet := time.Now(), 0
	for time.Since(start) < max && quiet < 5 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = currentDatabase()").Scan(&n); err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(time.Second)
	}
	return time.Since(start)
}

// waitCalm waits until the 1-minute load average is below 1.5, or max.
func waitCalm(max time.Duration) {
	start := time.Now()
	for time.Since(start) < max {
		b, err := os.ReadFile("/proc/loadavg")
		var l float64
		if err != nil || len(b) == 0 {
			return
		}
		if _, err := fmt.Sscan(string(b), &l); err != nil || l < 1.5 {
			return
		}
		time.Sleep(5 * time.Second)
	}
}

func partStats(ctx context.Context, conn driver.Conn) (parts, bytes uint64) {
	err := conn.QueryRow(ctx, "SELECT count(), sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active").
		Scan(&parts, &bytes)
	if err != nil {
		log.Fatal(err)
	}
	return parts, bytes
}
