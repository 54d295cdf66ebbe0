package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/schema"
)

// On a ClickHouse cluster the writer splits each batch by shard
// (schema.ShardOf: every copy of an event goes to the same shard) and
// inserts each part into its shard's local table directly, not through a
// Distributed table's background queue. The parts are inserted at once,
// each retried on its own with its own token (the batch's and "-s<shard
// number>", the same on every retry and replay: a replay splits the same
// records the same way), and the log is committed only when every shard
// confirmed its part. A shard that is down delays only its part: the others
// are inserted, the log keeps the batch and takes new events meanwhile, and
// the retried part lands when the shard is back (a part a shard had taken
// before a restart is deduplicated there by its token).

// target is where an INSERT goes: one server, or one shard of a cluster.
type target struct {
	conn  Conn
	sql   string
	shard int         // shard number (1-based); 0 for a single server
	state *shardState // nil for a single server
}

// failed records the outcome of an INSERT for the shard's health.
func (t target) failed(err error) {
	if t.state == nil {
		return
	}
	t.state.mu.Lock()
	defer t.state.mu.Unlock()
	if err == nil {
		t.state.failing.Set(0)
	} else {
		t.state.failing.Set(1)
	}
	switch {
	case err == nil:
		t.state.failingSince, t.state.lastErr = time.Time{}, nil
	case t.state.failingSince.IsZero():
		t.state.failingSince, t.state.lastErr = time.Now(), err
	default:
		t.state.lastErr = err
	}
}

type shardState struct {
	failing      prometheus.Gauge
	mu           sync.Mutex
	failingSince time.Time
	lastErr      error
}

type shardSet struct {
	conns  []Conn
	states []*shardState
}

// UseShards makes the pipeline insert into the shards of a cluster, in
// shard order (conns[i] is a replica of shard number i+1), instead of the
// connection Open was given. Call it before Run. The shard count must stay
// the same while the log holds events (see README "Scaling out").
func (p *Pipeline) UseShards(conns []Conn) error {
	if len(conns) == 0 {
		return errors.New("ingest: no shards")
	}
	s := &shardSet{conns: conns}
	for i := range conns {
		g := p.m.shardFailing.WithLabelValues(strconv.Itoa(i + 1))
		g.Set(0)
		s.states = append(s.states, &shardState{failing: g})
	}
	p.shards = s
	return nil
}

// ShardHealth returns, per failing shard, why its inserts fail (readyz).
func (p *Pipeline) ShardHealth() []string {
	if p.shards == nil {
		return nil
	}
	var out []string
	for i, st := range p.shards.states {
		st.mu.Lock()
		if !st.failingSince.IsZero() {
			out = append(out, fmt.Sprintf("shard %d: inserts failing since %s (its part of the batch waits in the write-ahead log): %v",
				i+1, st.failingSince.UTC().Format(time.RFC3339), st.lastErr))
		}
		st.mu.Unlock()
	}
	return out
}

// insertAll inserts the batch of rec: into the server, or split over the
// shards. It returns how many events were quarantined, and false when ctx
// ended first.
func (p *Pipeline) insertAll(ctx context.Context, cols *columns, rec *inflight) (int, bool) {
	if p.shards == nil {
		return p.insertOrIsolate(ctx, target{conn: p.conn, sql: insertSQL}, cols, rec, "")
	}
	parts := splitByShard(cols, len(p.shards.conns))
	quarantined := make([]int, len(parts))
	oks := make([]bool, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		if part.len() == 0 {
			oks[i] = true
			continue
		}
		to := target{conn: p.shards.conns[i], sql: shardInsertSQL, shard: i + 1, state: p.shards.states[i]}
		wg.Go(func() {
			quarantined[i], oks[i] = p.insertOrIsolate(ctx, to, part, rec, fmt.Sprintf("-s%d", i+1))
		})
	}
	wg.Wait()
	n := 0
	for i := range parts {
		if !oks[i] {
			return 0, false
		}
		n += quarantined[i]
	}
	return n, true
}

// splitByShard returns the rows of c for each of n shards, in their order.
func splitByShard(c *columns, n int) []*columns {
	parts := make([]*columns, n)
	for i := range parts {
		parts[i] = &columns{}
	}
	for i := 0; i < c.len(); i++ {
		parts[schema.ShardOf(c.org[i], c.id[i], n)].appendFrom(c, i)
	}
	return parts
}

// appendFrom appends row i of c.
func (c *columns) appendFrom(src *columns, i int) {
	c.org = append(c.org, src.org[i])
	c.ts = append(c.ts, src.ts[i])
	c.id = append(c.id, src.id[i])
	for j := range c.str {
		c.str[j] = append(c.str[j], src.str[j][i])
		c.totalBytes += len(src.str[j][i])
	}
	c.received = append(c.received, src.received[i])
	c.expires = append(c.expires, src.expires[i])
	c.hashes = append(c.hashes, src.hashes[i])
	c.node = append(c.node, src.node[i])
	c.seq = append(c.seq, src.seq[i])
}
