package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/schema"
)

// sample is an event the query shapes can name: its resource, trace,
// actor, project and a metadata value.
type sample struct {
	eventType, actorID, email, project string
	resType, resID, trace, secretPath  string
}

// samples keeps, per org, a reservoir of recent events (the last five
// days, inside every plan's retention), for the shapes to ask about.
type samples struct {
	byOrg  map[string][]sample
	seen   map[string]int
	since  time.Time
	rng    *rand.Rand
	perOrg int
}

func (s *samples) offer(it *gen.Item) {
	if it.Event.Timestamp.Before(s.since) || it.Event.Resource == nil {
		return
	}
	org := it.Org.ID
	s.seen[org]++
	x := sample{eventType: it.Event.Event.Type, project: it.Event.ProjectID, trace: it.Event.TraceID,
		resType: it.Event.Resource.Type, resID: it.Event.Resource.ID}
	who := it.Event.Actor.Identity()
	x.actorID, x.email = who.ID, who.Email
	if md := string(it.Event.Event.Metadata); strings.Contains(md, `"secretPath":"`) {
		rest := md[strings.Index(md, `"secretPath":"`)+len(`"secretPath":"`):]
		x.secretPath = rest[:strings.IndexByte(rest, '"')]
	} else {
		x.secretPath = "/apps/billing/config"
	}
	if l := s.byOrg[org]; len(l) < s.perOrg {
		s.byOrg[org] = append(l, x)
	} else if j := s.rng.IntN(s.seen[org]); j < s.perOrg {
		l[j] = x
	}
}

// resample regenerates the events of an earlier load (same seed and
// sizes) without inserting them, for their samples.
func resample(g *gen.Generator, cfg gen.Config) *samples {
	s := newSamples(cfg)
	for {
		it, ok := g.Next()
		if !ok {
			return s
		}
		s.offer(&it)
	}
}

func newSamples(cfg gen.Config) *samples {
	return &samples{byOrg: map[string][]sample{}, seen: map[string]int{}, since: cfg.End.Add(-5 * 24 * time.Hour),
		rng: rand.New(rand.NewPCG(cfg.Seed, 7)), perOrg: 64}
}

// load generates cfg's events in time order and inserts them in batches
// of batch rows, by the ingest path's own columnar insert, as a steady
// ingest would; it returns samples per org.
func load(ctx context.Context, conn driver.Conn, g *gen.Generator, cfg gen.Config, batch int) *samples {
	s := newSamples(cfg)
	rows := make([]schema.Row, 0, batch)
	start, n := time.Now(), 0
	for {
		it, ok := g.Next()
		if ok {
			rows = append(rows, it.Row())
			s.offer(&it)
			n++
		}
		if len(rows) >= batch || (!ok && len(rows) > 0) {
			if err := ingest.InsertRows(ctx, conn, rows, fmt.Sprintf("bench-load-%d", n)); err != nil {
				log.Fatalf("insert: %v", err)
			}
			rows = rows[:0]
			if n%1_000_000 < batch || !ok {
				el := time.Since(start)
				log.Printf("loaded %d events in %s (%.0f events/s)", n, el.Round(time.Second), float64(n)/el.Seconds())
			}
		}
		if !ok {
			return s
		}
	}
}
