package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// insertCost measures what a materialized view on events (the timelines'
// lookup table events_by_key_mv, or the hour marks event_hours_mv) costs
// the writers: the same events loaded into fresh databases with every view
// and without the one named.
func insertCost(ctx context.Context, base chconn.Config, gcfg gen.Config, events, batch int, view string) (with, without float64) {
	rate := func(suffix string, dropView bool) float64 {
		cfg := base
		cfg.Database = base.Database + suffix
		if err := chconn.Drop(ctx, cfg, cfg.Database); err != nil {
			log.Fatal(err)
		}
		conn := benchutil.OpenMigrated(ctx, cfg)
		defer func() {
			conn.Close()
			_ = chconn.Drop(context.Background(), cfg, cfg.Database)
		}()
		if dropView {
			if err := conn.Exec(ctx, "DROP VIEW "+view); err != nil {
				log.Fatal(err)
			}
		}
		c := gcfg
		c.Events = events
		g, err := gen.New(c)
		if err != nil {
			log.Fatal(err)
		}
		rows := make([]schema.Row, 0, batch)
		n := 0
		var gen time.Duration
		start := time.Now()
		for {
			t := time.Now()
			it, ok := g.Next()
			if ok {
				rows = append(rows, it.Row())
				n++
			}
			gen += time.Since(t)
			if len(rows) >= batch || (!ok && len(rows) > 0) {
				if err := ingest.InsertRows(ctx, conn, rows, fmt.Sprintf("mvcost-%d", n)); err != nil {
					log.Fatal(err)
				}
				rows = rows[:0]
			}
			if !ok {
				break
			}
		}
		return float64(events) / (time.Since(start) - gen).Seconds()
	}
	// Alternate, so that neither side gets a quieter machine only.
	with1, without1 := rate("_mv_on", false), rate("_mv_off", true)
	with2, without2 := rate("_mv_on", false), rate("_mv_off", true)
	return (with1 + with2) / 2, (without1 + without2) / 2
}

func formatRate(r float64) string { return fmt.Sprintf("%.0f events/s", r) }
