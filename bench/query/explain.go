package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
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
	x := samp.byOrg[org][0]
	for _, s := range explained {
		st := s.st(org, now, x)
		u, err := benchutil.ExplainIndexes(ctx, conn, st.SQL, clickhouse.Parameters(st.Wire()), settings)
		if err != nil {
			log.Fatalf("explain %s: %v", s.name, err)
		}
		fmt.Fprintf(rep, "| %s | %s | %s | %s |\n", s.name, u.Partitions, u.PrimaryKey, u.SkipString())
	}
}
