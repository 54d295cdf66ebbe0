// Command ceiling measures what each part of the events table's schema
// costs the raw columnar insert (issue 18, part 4): the same generated rows
// (bench/gen) inserted straight into ClickHouse, as the ingest pipeline
// sends them, into variants of the events table derived from the migrated
// schema (SHOW CREATE TABLE after the real migrations) by removing or
// changing one part each: a skip index, the lookup table's materialized
// view, a codec, the granule size, the metadata hashes, the insert's block
// size and settings. Rounds are interleaved (every variant once per round,
// a fresh table each time); the report gives rows/s, the ratio to the
// baseline of the same round (median over rounds), the bytes on disk, and
// what each skip index buys (granules kept by it for the query it serves,
// at a small and at the largest org, from EXPLAIN indexes = 1).
//
//	go run ./bench/ceiling -events 1000000 -rounds 3
//	go run ./bench/ceiling -events 20000 -rounds 1 -only idx_trace,view   # smoke
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// refDB is migrated: the schema the variants derive from.
const refDB = "ceiling_ref"

// benchDB holds the variants' tables (a variable for the test).
var benchDB = "ceiling"

func main() {
	var (
		events = flag.Int("events", 1_000_000, "rows inserted into each variant in each round")
		orgs   = flag.Int("orgs", 120, "orgs of the generated rows")
		seed   = flag.Uint64("seed", 1, "generator seed")
		batch  = flag.Int("batch", 100_000, "rows per INSERT (the pipeline's default batch)")
		rounds = flag.Int("rounds", 3, "interleaved rounds (each variant once per round)")
		only   = flag.String("only", "", "comma-separated words: run only the variants whose names contain one (and the baseline)")
		buys   = flag.Bool("buys", true, "also load the rows into the migrated table and report what each skip index buys")
		out    = flag.String("out", "", "also write the Markdown report to this file")
		addr   = flag.String("clickhouse", "", "host:port of a ClickHouse server (native protocol); empty starts the embedded engine")
	)
	flag.Parse()
	log.SetFlags(log.Ltime)
	ctx := context.Background()

	ccfg := chconn.DefaultConfig()
	ccfg.Database = refDB
	if *addr == "" {
		work, err := os.MkdirTemp("", "auditstore-bench-ceiling-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(work)
		e := benchutil.Engine(ctx, filepath.Join(work, "ch"))
		defer e.Stop(context.Background())
		ccfg.Addr = e.Addr()
	} else {
		ccfg.Addr = *addr
	}
	for _, db := range []string{refDB, benchDB} {
		if err := chconn.Drop(ctx, ccfg, db); err != nil {
			log.Fatal(err)
		}
	}
	conn := benchutil.OpenMigrated(ctx, ccfg)
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
		log.Fatal(err)
	}
	ddl, err := readDDL(ctx, conn, refDB)
	if err != nil {
		log.Fatal(err)
	}
	vs := selectVariants(variants(*batch), *only)
	if err := check(ctx, conn, ddl, vs); err != nil {
		log.Fatal(err)
	}

	gcfg := gen.DefaultConfig()
	gcfg.Seed, gcfg.Orgs, gcfg.Events = *seed, *orgs, *events
	gcfg.End = time.Now().UTC().Truncate(time.Millisecond)
	g, err := gen.New(gcfg)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("generating %d rows ...", *events)
	rows, samp := generate(g)
	hashStart := time.Now()
	for i := range rows {
		_ = schema.MetadataHashes(rows[i].EventMetadata)
	}
	hashCost := time.Since(hashStart) / time.Duration(max(1, len(rows)))
	all, err := columnsOf(rows)
	if err != nil {
		log.Fatal(err)
	}

	load0 := benchutil.LoadAverage()
	res := make([][]result, len(vs))
	for r := range *rounds {
		for i, v := range vs {
			x, err := runVariant(ctx, conn, ddl, v, all, len(rows), *batch, r, r == *rounds-1)
			if err != nil {
				log.Fatalf("%s, round %d: %v", v.name, r+1, err)
			}
			res[i] = append(res[i], x)
			log.Printf("round %d/%d: %s: %.0f rows/s (%.1f s)", r+1, *rounds, v.name, x.rate, x.elapsed.Seconds())
		}
	}
	load1 := benchutil.LoadAverage()

	var rep strings.Builder
	fmt.Fprintf(&rep, "\n## Ingest ceiling A/B\n\n`go run ./bench/ceiling -events %d -rounds %d -batch %d` on %s, ClickHouse %s; "+
		"load average %s before, %s after.\n\n", *events, *rounds, *batch, benchutil.Machine(), serverVersion(ctx, conn), load0, load1)
	fmt.Fprintf(&rep, "Each variant: %d rows of %d orgs (bench/gen, 90 days, in time order), encoded in columns before the clock "+
		"starts (metadata hashes included: they cost the writer %s per event in Go, not timed here), inserted into a fresh table (with events_by_key and event_hours and their views) "+
		"by columnar INSERTs over the native protocol, one after another unless said otherwise, each sent in blocks of %d rows "+
		"as the pipeline sends them. Interleaved rounds; rate is the "+
		"median over rounds, ratio the median of each round's rate / the baseline's in the same round. CPU: this process "+
		"(the driver's conversion and encoding) and the engine's threads (its user + system time, merges during the load included), "+
		"per row, medians over rounds. Bytes: the events table's "+
		"active parts (+ events_by_key's) right after the load and after OPTIMIZE FINAL, in the last round.\n\n",
		*events, *orgs, hashCost, ingest.InsertChunk)
	renderTable(&rep, vs, res)
	if *buys {
		if err := buysTable(ctx, conn, &rep, rows, samp, *batch, g, gcfg.End, vs, res); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Print(rep.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(rep.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// generate returns every row and, per org, an event recent enough for the
// index queries to ask about.
func generate(g *gen.Generator) ([]schema.Row, map[string]gen.Item) {
	var rows []schema.Row
	last, best := map[string]gen.Item{}, map[string]gen.Item{}
	for {
		it, ok := g.Next()
		if !ok {
			for org, it := range best {
				last[org] = it
			}
			return rows, last
		}
		rows = append(rows, it.Row())
		if it.Event.Resource != nil && it.Event.TraceID != "" {
			last[it.Org.ID] = it
			if it.Event.Actor.Identity().Email != "" && it.Event.IPAddress != "" {
				best[it.Org.ID] = it
			}
		}
	}
}

// check fails early when a variant no longer applies: an index or column
// the schema lost, a setting the server does not know.
func check(ctx context.Context, conn driver.Conn, ddl schemaDDL, vs []variant) error {
	for _, v := range vs {
		if v.ddl != nil {
			t := ddl.events.clone()
			if err := v.ddl(&t); err != nil {
				return fmt.Errorf("variant %q: %w", v.name, err)
			}
		}
		for k := range v.settings {
			var n uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM system.settings WHERE name = ?", k).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("variant %q: the server has no setting %s (leave it out with -only)", v.name, k)
			}
		}
	}
	return nil
}

type result struct {
	elapsed              time.Duration
	rate                 float64
	bytes, byKeyBytes    uint64 // after the load
	restBytes, restByKey uint64 // after OPTIMIZE FINAL (last round only)
	rows, byKeyRows      uint64 // after the load
	hourRows             uint64 // event_hours' rows after the load
	indexes              uint64 // skip indexes of the variant's table
	// Where the two cores went during the insert: this process (the
	// driver's conversion and encoding) and the engine's threads (user +
	// system time, its ProfileEvents, merges included).
	clientCPU, engineCPU time.Duration
}

// engineCPU reads the server's cumulative CPU time.
func engineCPU(ctx context.Context, conn driver.Conn) (time.Duration, error) {
	var user, sys uint64
	err := conn.QueryRow(ctx, "SELECT sumIf(value, event = 'UserTimeMicroseconds'), sumIf(value, event = 'SystemTimeMicroseconds') "+
		"FROM system.events").Scan(&user, &sys)
	return time.Duration(user+sys) * time.Microsecond, err
}

// runVariant creates v's tables afresh, inserts every row and measures.
func runVariant(ctx context.Context, conn driver.Conn, ddl schemaDDL, v variant, all block, rows, batch, round int, last bool) (result, error) {
	name := fmt.Sprintf("v%d", round)
	rn := renamer(ddl.db, benchDB, name)
	t := ddl.events.clone()
	if v.ddl != nil {
		if err := v.ddl(&t); err != nil {
			return result{}, err
		}
	}
	drop := func() {
		for _, s := range dropStatements(benchDB, name) {
			if err := conn.Exec(ctx, s); err != nil {
				log.Fatalf("%s: %v", s, err)
			}
		}
	}
	drop()
	defer drop()
	stmts := []string{t.create(benchDB, name), rn.Replace(ddl.byKey), rn.Replace(ddl.hours)}
	if !v.noView {
		stmts = append(stmts, rn.Replace(ddl.view))
	}
	if !v.noHours {
		stmts = append(stmts, rn.Replace(ddl.hoursView))
	}
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			return result{}, fmt.Errorf("%w\n%s", err, s)
		}
	}
	if v.batch > 0 {
		batch = v.batch
	}
	cpu0, err := engineCPU(ctx, conn)
	if err != nil {
		return result{}, err
	}
	client0 := benchutil.SelfCPU()
	el, err := insertAll(ctx, conn, benchDB+"."+name, all, rows, batch, max(1, v.writers), v, fmt.Sprintf("ceiling-%d", round))
	if err != nil {
		return result{}, err
	}
	x := result{elapsed: el, rate: float64(rows) / el.Seconds(), clientCPU: benchutil.SelfCPU() - client0}
	cpu1, err := engineCPU(ctx, conn)
	if err != nil {
		return result{}, err
	}
	x.engineCPU = cpu1 - cpu0
	x.bytes, x.rows = tableBytes(ctx, conn, name)
	x.byKeyBytes, x.byKeyRows = tableBytes(ctx, conn, name+byKeySuffix)
	_, x.hourRows = tableBytes(ctx, conn, name+hoursSuffix)
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.data_skipping_indices WHERE database = ? AND table = ?", benchDB, name).
		Scan(&x.indexes); err != nil {
		return result{}, err
	}
	if last {
		for _, tb := range []string{name, name + byKeySuffix} {
			if err := conn.Exec(ctx, "OPTIMIZE TABLE "+benchDB+"."+tb+" FINAL"); err != nil {
				return result{}, err
			}
		}
		x.restBytes, _ = tableBytes(ctx, conn, name)
		x.restByKey, _ = tableBytes(ctx, conn, name+byKeySuffix)
	}
	return x, nil
}

func tableBytes(ctx context.Context, conn driver.Conn, table string) (bytes, rows uint64) {
	err := conn.QueryRow(ctx, "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE database = ? AND table = ? AND active",
		benchDB, table).Scan(&bytes, &rows)
	if err != nil {
		log.Fatal(err)
	}
	return bytes, rows
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func serverVersion(ctx context.Context, conn driver.Conn) string {
	var v string
	_ = conn.QueryRow(ctx, "SELECT version()").Scan(&v)
	return v
}
