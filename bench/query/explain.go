package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// explained are the statements whose index use the report shows.
var explained = []statement{
	{"page rows: org, last day", func(org string, now time.Time, _ sample) readsql.Statement {
		return readsql.List(org, schema.Filter{From: now.Add(-24 * time.Hour)}, schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
	}},
	{"total: org, 30 days", func(org string, now time.Time, _ sample) readsql.Statement {
		return readsql.Count(org, schema.Filter{From: now.Add(-30 * 24 * time.Hour)})
	}},
	{"total: resource timeline, events table", func(org string, _ time.Time, x sample) readsql.Statement {
		return readsql.Count(org, resourceFilter(x))
	}},
	{"total: resource timeline, lookup table", func(org string, _ time.Time, x sample) readsql.Statement {
		_, total, _ := readsql.Timeline(org, resourceFilter(x), schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
		return total
	}},
	{"total: trace", func(org string, _ time.Time, x sample) readsql.Statement {
		f := schema.Filter{}
		f.Add(schema.FieldTraceID, x.trace)
		return readsql.Count(org, f)
	}},
	{"total: actor, 30 days", func(org string, now time.Time, x sample) readsql.Statement {
		f := schema.Filter{From: now.Add(-30 * 24 * time.Hour)}
		f.Add(schema.FieldActorID, x.actorID)
		return readsql.Count(org, f)
	}},
	{"event by id", func(org string, _ time.Time, _ sample) readsql.Statement {
		return readsql.Get(org, "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a")
	}},
}

// explainTable runs EXPLAIN indexes = 1 on each statement at org and
// reports, per index step, the parts or granules kept of those considered.
func explainTable(ctx context.Context, rep *strings.Builder, conn driver.Conn, settings map[string]string, org string, samp *samples, now time.Time) {
	fmt.Fprintf(rep, "\nIndex use at the largest org (`EXPLAIN indexes = 1`; kept/considered; parts kept by the partition key "+
		"of all active parts of the table):\n\n| statement | partitions (parts) | primary key (granules) | skip index (granules) |\n|---|---|---|---|\n")
	set := clickhouse.Settings{}
	for k, v := range settings {
		set[k] = v
	}
	x := samp.byOrg[org][0]
	for _, s := range explained {
		st := s.st(org, now, x)
		qctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters(st.Wire())), clickhouse.WithSettings(set))
		rows, err := conn.Query(qctx, "EXPLAIN indexes = 1 "+st.SQL)
		if err != nil {
			log.Fatalf("explain %s: %v", s.name, err)
		}
		var all, part, pk string
		var skip []string
		step, name := "", ""
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				log.Fatal(err)
			}
			l := strings.TrimSpace(strings.TrimLeft(line, "│├└─ "))
			switch {
			case l == "Min-Max" || l == "Partition" || l == "PrimaryKey" || l == "Skip":
				step, name = l, ""
			case strings.HasPrefix(l, "Parts: ") && step == "Min-Max":
				if _, total, ok := strings.Cut(strings.TrimPrefix(l, "Parts: "), "/"); ok {
					all = total
				}
			case strings.HasPrefix(l, "Name: "):
				name = strings.TrimPrefix(l, "Name: ")
			case strings.HasPrefix(l, "Parts: ") && step == "Partition":
				kept, _, _ := strings.Cut(strings.TrimPrefix(l, "Parts: "), "/")
				part = kept + "/" + all
			case strings.HasPrefix(l, "Granules: ") && step == "PrimaryKey":
				pk = strings.TrimPrefix(l, "Granules: ")
			case strings.HasPrefix(l, "Granules: ") && step == "Skip":
				skip = append(skip, name+" "+strings.TrimPrefix(l, "Granules: "))
			}
		}
		rows.Close()
		fmt.Fprintf(rep, "| %s | %s | %s | %s |\n", s.name, part, pk, strings.Join(skip, ", "))
	}
}
