package main

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// renderTable writes one row per variant.
func renderTable(rep *strings.Builder, vs []variant, res [][]result) {
	fmt.Fprintf(rep, "| variant | rows/s (median) | / baseline (median of rounds) | CPU µs/row: client / engine "+
		"| MB after load (events + events_by_key) | MB at rest (events + events_by_key) | B/row at rest (events) |\n|---|---|---|---|---|---|---|\n")
	for i, v := range vs {
		var rates, ratios, client, engine []float64
		for r, x := range res[i] {
			rates = append(rates, x.rate)
			ratios = append(ratios, x.rate/res[0][r].rate)
			rows := x.rate * x.elapsed.Seconds()
			client = append(client, perRow(x.clientCPU, rows))
			engine = append(engine, perRow(x.engineCPU, rows))
		}
		last := res[i][len(res[i])-1]
		rows := float64(last.rate) * last.elapsed.Seconds()
		fmt.Fprintf(rep, "| %s | %.0f | %.2f | %.1f / %.1f | %.1f + %.1f | %.1f + %.1f | %.0f |\n", v.name, median(rates), median(ratios),
			median(client), median(engine),
			mb(last.bytes), mb(last.byKeyBytes), mb(last.restBytes), mb(last.restByKey), float64(last.restBytes)/rows)
	}
}

// perRow is d in microseconds per row.
func perRow(d time.Duration, rows float64) float64 {
	if rows <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / rows
}

func mb(b uint64) float64 { return float64(b) / 1e6 }

// probe is a query one skip index serves, at an org and one of its events.
type probe struct {
	index string
	// value is what the query asks about; "" when the event has none.
	value  func(it gen.Item) string
	serves string
	st     func(org string, now time.Time, it gen.Item) readsql.Statement
}

var probes = []probe{
	{"idx_id", func(it gen.Item) string { return it.Event.ID }, "event by id", func(org string, _ time.Time, it gen.Item) readsql.Statement {
		return readsql.Get(org, it.Event.ID)
	}},
	{"idx_event_type", func(it gen.Item) string { return it.Event.Event.Type }, "count: event type, 30 days", func(org string, now time.Time, it gen.Item) readsql.Statement {
		return readsql.Count(org, with(schema.Filter{From: now.Add(-30 * 24 * time.Hour)}, schema.FieldEventType, it.Event.Event.Type))
	}},
	{"idx_actor_id", func(it gen.Item) string { return it.Event.Actor.Identity().ID }, "count: actor, 30 days", func(org string, now time.Time, it gen.Item) readsql.Statement {
		return readsql.Count(org, with(schema.Filter{From: now.Add(-30 * 24 * time.Hour)}, schema.FieldActorID, it.Event.Actor.Identity().ID))
	}},
	{"idx_actor_email", func(it gen.Item) string { return it.Event.Actor.Identity().Email }, "count: actor email, 30 days", func(org string, now time.Time, it gen.Item) readsql.Statement {
		return readsql.Count(org, with(schema.Filter{From: now.Add(-30 * 24 * time.Hour)}, schema.FieldActorEmail, it.Event.Actor.Identity().Email))
	}},
	{"idx_resource_id", func(it gen.Item) string { return it.Event.Resource.ID }, "count: resource (events table, all time)", func(org string, _ time.Time, it gen.Item) readsql.Statement {
		f := with(schema.Filter{}, schema.FieldResourceType, it.Event.Resource.Type)
		return readsql.Count(org, with(f, schema.FieldResourceID, it.Event.Resource.ID))
	}},
	{"idx_trace_id", func(it gen.Item) string { return it.Event.TraceID }, "count: trace (all time)", func(org string, _ time.Time, it gen.Item) readsql.Statement {
		return readsql.Count(org, with(schema.Filter{}, schema.FieldTraceID, it.Event.TraceID))
	}},
	{"idx_ip_address", func(it gen.Item) string { return it.Event.IPAddress }, "count: IP address, 30 days", func(org string, now time.Time, it gen.Item) readsql.Statement {
		f := schema.Filter{From: now.Add(-30 * 24 * time.Hour)}
		if a, err := netip.ParseAddr(it.Event.IPAddress); err == nil {
			f.IPs = []netip.Addr{a}
		}
		return readsql.Count(org, f)
	}},
}

func with(f schema.Filter, field schema.Field, v string) schema.Filter {
	f.Add(field, v)
	return f
}

// buysTable loads the rows into the migrated events table (as the
// pipeline would, node and sequence numbers in time order), lets merges
// settle, and reports for each skip index the granules it keeps for the
// query it serves at the largest org and at a median one, and its size.
func buysTable(ctx context.Context, conn driver.Conn, rep *strings.Builder, rows []schema.Row, samp map[string]gen.Item, batch int, g *gen.Generator, now time.Time, vs []variant, res [][]result) error {
	without := map[string]string{}
	for i, v := range vs {
		if v.index == "" {
			continue
		}
		var ratios []float64
		for r, x := range res[i] {
			ratios = append(ratios, x.rate/res[0][r].rate)
		}
		without[v.index] = fmt.Sprintf("%.2f", median(ratios))
	}
	all, err := columnsOf(rows)
	if err != nil {
		return err
	}
	log.Printf("loading %d rows into the migrated table for the index report ...", len(rows))
	if _, err := insertAll(ctx, conn, refDB+"."+schema.EventsTable, all, len(rows), batch, 1, variant{}, "buys"); err != nil {
		return err
	}
	settle(ctx, conn, 2*time.Minute)
	orgs := g.Orgs()
	large, median := orgs[0], orgs[len(orgs)/2]
	fmt.Fprintf(rep, "\nWhat each skip index buys (the migrated table holding the same %d rows, after merges settled; "+
		"`EXPLAIN indexes = 1` with the query package's read settings; granules kept by the index / granules the primary key "+
		"left; the largest org %s holds %.1f%% of the rows, the median org %s %.2f%%):\n\n", len(rows), large.ID, large.Share*100, median.ID, median.Share*100)
	fmt.Fprintf(rep, "| index | query it serves | largest org: primary key | largest org: index | median org: primary key | median org: index | size on disk | insert rows/s without it / with it |\n|---|---|---|---|---|---|---|---|\n")
	sizes := indexSizes(ctx, conn)
	for _, p := range probes {
		cells := []string{}
		for _, o := range []*gen.Org{large, median} {
			it, ok := samp[o.ID]
			if !ok || p.value(it) == "" {
				cells = append(cells, "no sample", "")
				continue
			}
			st := p.st(o.ID, now, it)
			u, err := benchutil.ExplainIndexes(ctx, conn, st.SQL, clickhouse.Parameters(st.Wire()), readsql.ReadSettingsText())
			if err != nil {
				return fmt.Errorf("%s: %w", p.index, err)
			}
			kept := "not used"
			for _, s := range u.Skip {
				if s.Name == p.index {
					kept = s.Granules
				}
			}
			cells = append(cells, u.PrimaryKey, kept)
		}
		fmt.Fprintf(rep, "| %s | %s | %s | %.2f MB | %s |\n", p.index, p.serves, strings.Join(cells, " | "), mb(sizes[p.index]), without[p.index])
	}
	// The stream dispatchers read one node's rows after a sequence number.
	var maxSeq uint64
	if err := conn.QueryRow(ctx, "SELECT max(ingest_seq) FROM "+refDB+".events").Scan(&maxSeq); err != nil {
		return err
	}
	sql := "SELECT count() FROM " + schema.EventsTable + " WHERE ingest_node = 'bench' AND ingest_seq > " + fmt.Sprint(maxSeq*99/100)
	u, err := benchutil.ExplainIndexes(ctx, conn, sql, nil, nil)
	if err != nil {
		return err
	}
	kept := "not used"
	for _, s := range u.Skip {
		if s.Name == "idx_ingest_seq" {
			kept = s.Granules
		}
	}
	fmt.Fprintf(rep, "| idx_ingest_seq | streams: the newest 1%% of a node's sequence (all orgs) | %s | %s | | | %.2f MB | %s |\n",
		u.PrimaryKey, kept, mb(sizes["idx_ingest_seq"]), without["idx_ingest_seq"])
	return nil
}

func indexSizes(ctx context.Context, conn driver.Conn) map[string]uint64 {
	rows, err := conn.Query(ctx, "SELECT name, data_compressed_bytes FROM system.data_skipping_indices WHERE database = ? AND table = 'events'", refDB)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	m := map[string]uint64{}
	for rows.Next() {
		var n string
		var b uint64
		if err := rows.Scan(&n, &b); err != nil {
			log.Fatal(err)
		}
		m[n] = b
	}
	return m
}

// settle waits until no merge has run in the database for a few seconds
// (or max).
func settle(ctx context.Context, conn driver.Conn, max time.Duration) {
	start, quiet := time.Now(), 0
	for time.Since(start) < max && quiet < 5 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", refDB).Scan(&n); err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(time.Second)
	}
}
