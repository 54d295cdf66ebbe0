package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/bench/gen"
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

// columns holds one batch column by column, in schema.WriteColumns order.
type columns struct {
	org, etype, emeta, atype, aid, aemail, auser, aname, ameta []string
	proj, projName, rtype, rid, rname, ip, ua, uat, trace      []string
	ts, received, expires                                      []time.Time
	id                                                         []uuid.UUID
	hashes                                                     [][]uint64
}

func (c *columns) add(r *schema.Row) {
	c.org, c.ts, c.id = append(c.org, r.OrgID), append(c.ts, r.Timestamp), append(c.id, r.ID)
	c.etype, c.emeta = append(c.etype, r.EventType), append(c.emeta, r.EventMetadata)
	c.atype, c.aid, c.aemail = append(c.atype, r.ActorType), append(c.aid, r.ActorID), append(c.aemail, r.ActorEmail)
	c.auser, c.aname, c.ameta = append(c.auser, r.ActorUsername), append(c.aname, r.ActorName), append(c.ameta, r.ActorMetadata)
	c.proj, c.projName = append(c.proj, r.ProjectID), append(c.projName, r.ProjectName)
	c.rtype, c.rid, c.rname = append(c.rtype, r.ResourceType), append(c.rid, r.ResourceID), append(c.rname, r.ResourceName)
	c.ip, c.ua, c.uat, c.trace = append(c.ip, r.IPAddress), append(c.ua, r.UserAgent), append(c.uat, r.UserAgentType), append(c.trace, r.TraceID)
	c.received, c.expires = append(c.received, r.ReceivedAt), append(c.expires, r.ExpiresAt)
	c.hashes = append(c.hashes, schema.MetadataHashes(r.EventMetadata))
}

func (c *columns) values() []any {
	return []any{c.org, c.ts, c.id, c.etype, c.emeta, c.atype, c.aid, c.aemail, c.auser, c.aname, c.ameta,
		c.proj, c.projName, c.rtype, c.rid, c.rname, c.ip, c.ua, c.uat, c.trace, c.received, c.expires, c.hashes}
}

func (c *columns) len() int { return len(c.org) }

func (c *columns) reset() { *c = columns{} }

var insertSQL = "INSERT INTO " + schema.EventsTable + " (" + strings.Join(schema.WriteColumns, ", ") + ")"

func (c *columns) send(ctx context.Context, conn driver.Conn) error {
	// A batch of a small load spans many days, hence partitions.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_partitions_per_insert_block": 0}))
	b, err := conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		return err
	}
	for i, v := range c.values() {
		if err := b.Column(i).Append(v); err != nil {
			_ = b.Abort()
			return fmt.Errorf("column %s: %w", schema.WriteColumns[i], err)
		}
	}
	return b.Send()
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
// of batch rows, as a steady ingest would; it returns samples per org.
func load(ctx context.Context, conn driver.Conn, g *gen.Generator, cfg gen.Config, batch int) *samples {
	s := newSamples(cfg)
	var c columns
	start, n := time.Now(), 0
	for {
		it, ok := g.Next()
		if ok {
			r := it.Row()
			c.add(&r)
			s.offer(&it)
			n++
		}
		if c.len() >= batch || (!ok && c.len() > 0) {
			if err := c.send(ctx, conn); err != nil {
				log.Fatalf("insert: %v", err)
			}
			c.reset()
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
