package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
)

// limits are the settings that keep one tenant, or one kind of work, from
// taking what the others need.
type limits struct {
	// Conns are the sizes of the ClickHouse connection pools, one per kind
	// of work, so that reads cannot take the connections ingest and
	// authentication need.
	Conns poolSizes
	// QueryTimeout bounds a query (ClickHouse max_execution_time too);
	// ExportTimeout an export.
	QueryTimeout, ExportTimeout time.Duration
	// MaxQueries and MaxExports bound what one org runs at once (429 beyond).
	MaxQueries, MaxExports int
	// MaxPageBytes bounds the events of one page of a list.
	MaxPageBytes int
}

// poolSizes are the connections of each ClickHouse pool.
type poolSizes struct {
	Ingest int // inserts of the ingest pipeline
	Auth   int // keys, orgs, migrations, readiness
	Query  int // the query endpoints
	Export int // NDJSON exports
	Stream int // stream configuration and the reads of deliveries
	Lake   int // data-lake destinations and the writes of their files
}

func (p poolSizes) String() string {
	return fmt.Sprintf("ingest=%d,auth=%d,query=%d,export=%d,stream=%d,lake=%d", p.Ingest, p.Auth, p.Query, p.Export, p.Stream, p.Lake)
}

var defaultPools = poolSizes{Ingest: 4, Auth: 4, Query: 16, Export: 8, Stream: 4, Lake: 2}

// parsePools reads "ingest=4,auth=4,query=16,export=8,stream=4,lake=2"; pools left
// out keep their default.
func parsePools(s string) (poolSizes, error) {
	p := defaultPools
	dst := map[string]*int{"ingest": &p.Ingest, "auth": &p.Auth, "query": &p.Query, "export": &p.Export, "stream": &p.Stream, "lake": &p.Lake}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(val)
		d := dst[name]
		if !ok || d == nil || err != nil || n < 1 || n > 1000 {
			return poolSizes{}, fmt.Errorf("want pool=connections with pools ingest, auth, query, export, stream, lake and 1-1000 connections, got %q", part)
		}
		*d = n
	}
	return p, nil
}

// parseLimits reads the limits' flags.
func parseLimits(vals map[string]*string) (limits, error) {
	var (
		l   limits
		err error
	)
	if l.Conns, err = parsePools(*vals["clickhouse-conns"]); err != nil {
		return l, fmt.Errorf("-clickhouse-conns: %w", err)
	}
	for _, f := range []struct {
		flag string
		dst  *time.Duration
	}{{"query-timeout", &l.QueryTimeout}, {"export-timeout", &l.ExportTimeout}} {
		if *f.dst, err = time.ParseDuration(*vals[f.flag]); err != nil || *f.dst < time.Second {
			return l, fmt.Errorf("-%s: want a duration of at least 1s, e.g. 30s", f.flag)
		}
	}
	for _, f := range []struct {
		flag string
		dst  *int
	}{{"max-queries-per-org", &l.MaxQueries}, {"max-exports-per-org", &l.MaxExports}, {"max-page-bytes", &l.MaxPageBytes}} {
		if *f.dst, err = strconv.Atoi(*vals[f.flag]); err != nil || *f.dst <= 0 {
			return l, fmt.Errorf("-%s: want a positive whole number, got %q", f.flag, *vals[f.flag])
		}
	}
	return l, nil
}

// pools are the ClickHouse connection pools of the server, one per kind
// of work (see poolSizes).
type pools struct {
	ingest, auth, query, export, stream, lake driver.Conn
}

// openPools opens the pools other than auth (the backend's own).
func openPools(ctx context.Context, ch chconn.Config, auth driver.Conn, sizes poolSizes) (*pools, error) {
	p := &pools{auth: auth}
	for _, pool := range []struct {
		dst *driver.Conn
		n   int
	}{{&p.ingest, sizes.Ingest}, {&p.query, sizes.Query}, {&p.export, sizes.Export}, {&p.stream, sizes.Stream}, {&p.lake, sizes.Lake}} {
		cfg := ch
		cfg.MaxOpenConns = pool.n
		conn, err := chconn.Open(ctx, cfg)
		if err != nil {
			p.close()
			return nil, err
		}
		*pool.dst = conn
	}
	return p, nil
}

// close closes the pools it opened (not auth).
func (p *pools) close() {
	for _, c := range []driver.Conn{p.ingest, p.query, p.export, p.stream, p.lake} {
		if c != nil {
			c.Close()
		}
	}
}
