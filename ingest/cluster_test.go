package ingest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/schema"
)

// migratedCluster starts a 3-shard cluster of embedded engines, migrated,
// with merges stopped on every shard's local tables.
func migratedCluster(tb testing.TB) *chtest.Cluster {
	tb.Helper()
	c := chtest.NewCluster(tb, 3)
	var nodes []migrate.Conn
	for _, conn := range c.Conns() {
		nodes = append(nodes, conn)
	}
	cfg := migrate.DefaultClusterConfig()
	cfg.DDL = schema.ClusterDDL{Cluster: chtest.ClusterName}
	if err := migrate.RunCluster(context.Background(), nodes, cfg, quiet()); err != nil {
		tb.Fatal(err)
	}
	for _, conn := range c.Conns() {
		for _, table := range []string{"events_local", "events_by_key_local"} {
			if err := conn.Exec(context.Background(), "SYSTEM STOP MERGES "+table); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return c
}

func useShards(c *chtest.Cluster) func(*Pipeline) {
	return func(p *Pipeline) {
		var conns []Conn
		for _, conn := range c.Conns() {
			conns = append(conns, conn)
		}
		if err := p.UseShards(conns); err != nil {
			panic(err)
		}
	}
}

// shardCounts returns the rows of org in each shard's local events table.
func shardCounts(tb testing.TB, c *chtest.Cluster, org string) []uint64 {
	tb.Helper()
	out := make([]uint64, len(c.Nodes))
	for i, n := range c.Nodes {
		if err := n.Conn.QueryRow(context.Background(), "SELECT count() FROM events_local WHERE org_id = '"+org+"'").Scan(&out[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func wantShardCounts(org string, ids []string, shards int) []uint64 {
	out := make([]uint64, shards)
	for _, id := range ids {
		out[schema.ShardOf(org, uuid.MustParse(id), shards)]++
	}
	return out
}

func postN(tb testing.TB, h *harness, org string, ids *[]string, n int) []map[string]any {
	tb.Helper()
	var batch []map[string]any
	for i := 0; i < n; i++ {
		*ids = append(*ids, uuid.NewString())
		batch = append(batch, event(len(*ids), (*ids)[len(*ids)-1], true))
	}
	if resp := h.post(tb, org, mustJSON(tb, batch), nil); resp.code != 202 {
		tb.Fatalf("post: %d %s", resp.code, resp.raw)
	}
	return batch
}

// On a cluster, a batch is split by shard and each part goes to its shard's
// local table with its own token. The server stops (as if killed) after one
// shard confirmed its part of the first batch; the restart replays the
// batch with the same per-shard tokens: every event is stored exactly once
// on disk (raw counts, without FINAL), in events and events_by_key, each
// on the shard schema.ShardOf names; re-sent events fold on their shard.
func TestClusterCrashMidBatchStoresEachEventOnce(t *testing.T) {
	c := migratedCluster(t)
	dir := t.TempDir()
	var mu sync.Mutex
	crashed := make(chan struct{})
	fired := false
	hook := func(token string) bool {
		mu.Lock()
		defer mu.Unlock()
		if fired || !strings.HasSuffix(token, "-s2") {
			return false
		}
		fired = true
		close(crashed)
		return true
	}
	h := newHarnessBeforeRun(t, c.Nodes[0].Conn, dir, nil, func(p *Pipeline) { useShards(c)(p); p.crashAfter = hook })
	var ids []string
	first := postN(t, h, "acme", &ids, 60)
	select {
	case <-crashed:
	case <-time.After(time.Minute):
		t.Fatal("no batch inserted into shard 2 within a minute")
	}
	postN(t, h, "acme", &ids, 40) // acknowledged after the crash
	h.stop()
	if got := h.pipe.wal.Committed(); got != 0 {
		t.Fatalf("committed=%d after the crash, want 0", got)
	}

	h2 := newHarnessBeforeRun(t, c.Nodes[0].Conn, dir, nil, useShards(c))
	// A client re-sends 20 events it had sent (same ids and times) through
	// the restarted node: they fold with their copies on the same shard.
	if resp := h2.post(t, "acme", mustJSON(t, first[:20]), nil); resp.code != 202 {
		t.Fatalf("re-send: %d %s", resp.code, resp.raw)
	}
	h2.flush(t)
	events, byKey := rawCounts(t, c.Nodes[1].Conn, "acme")
	for _, id := range ids[20:] {
		if events[id] != 1 || byKey[id] != 2 {
			t.Errorf("event %s: %d rows in events, %d in events_by_key; want 1 and 2 (raw)", id, events[id], byKey[id])
		}
	}
	if len(events) != len(ids) {
		t.Errorf("events holds %d ids, want %d", len(events), len(ids))
	}
	got, rows := stored(t, c.Nodes[2].Conn, "acme")
	if len(got) != len(ids) || int(rows) != len(ids) {
		t.Errorf("read with FINAL through Distributed: %d ids in %d rows, want %d once each", len(got), rows, len(ids))
	}
	// Raw per shard: re-sent copies (different received time, so not
	// deduplicated by token) sit beside their originals on the same shard.
	want := wantShardCounts("acme", append(append([]string{}, ids...), ids[:20]...), len(c.Nodes))
	if gotShards := shardCounts(t, c, "acme"); !equalCounts(gotShards, want) {
		t.Errorf("rows per shard=%v, want %v (schema.ShardOf)", gotShards, want)
	}
}

func equalCounts(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// One shard's engine stops during ingest: ingest keeps acknowledging into
// the log, the other shards receive their parts, the pipeline's health names
// the shard, and everything lands exactly once when it is back.
func TestClusterShardDownDelaysOnlyItsPart(t *testing.T) {
	c := migratedCluster(t)
	h := newHarnessBeforeRun(t, c.Nodes[0].Conn, t.TempDir(), nil, useShards(c))
	var ids []string
	postN(t, h, "acme", &ids, 30)
	h.flush(t)

	c.Nodes[2].Stop(t)
	var during []string
	for i := 0; i < 5; i++ {
		postN(t, h, "acme", &during, 20)
	}
	ids = append(ids, during...)
	// Shards 1 and 2 receive their parts of the batches while shard 3 is
	// down (the batch in flight: the others wait in the log behind it).
	want := wantShardCounts("acme", ids, 3)
	deadline := time.Now().Add(time.Minute)
	for {
		got := make([]uint64, 2)
		for i := range got {
			if err := c.Nodes[i].Conn.QueryRow(context.Background(), "SELECT count() FROM events_local WHERE org_id = 'acme'").Scan(&got[i]); err != nil {
				t.Fatal(err)
			}
		}
		inFirst := wantShardCounts("acme", ids[:30], 3)
		if got[0] > inFirst[0] && got[1] > inFirst[1] {
			break // parts of batches sent while shard 3 was down landed
		}
		if time.Now().After(deadline) {
			t.Fatalf("shards 1 and 2 hold %v rows with shard 3 down, want more than %v", got, inFirst[:2])
		}
		time.Sleep(100 * time.Millisecond)
	}
	health := strings.Join(h.pipe.Health(), "; ")
	for !strings.Contains(health, "shard 3") {
		if time.Now().After(deadline) {
			t.Fatalf("health does not name shard 3: %q", health)
		}
		time.Sleep(100 * time.Millisecond)
		health = strings.Join(h.pipe.Health(), "; ")
	}
	if h.pipe.wal.Committed() >= h.pipe.wal.Durable() {
		t.Fatal("the log was committed past events shard 3 has not confirmed")
	}
	if v := gauge(t, h.pipe.m.shardFailing.WithLabelValues("3")); v != 1 {
		t.Errorf("auditstore_ingest_shard_failing{shard=3}=%v with shard 3 down, want 1", v)
	}
	if v := gauge(t, h.pipe.m.shardFailing.WithLabelValues("1")); v != 0 {
		t.Errorf("auditstore_ingest_shard_failing{shard=1}=%v, want 0", v)
	}

	c.Nodes[2].Start(t)
	h.flush(t)
	if got := shardCounts(t, c, "acme"); !equalCounts(got, want) {
		t.Errorf("rows per shard after shard 3 came back=%v, want %v", got, want)
	}
	events, _ := rawCounts(t, c.Nodes[0].Conn, "acme")
	for _, id := range ids {
		if events[id] != 1 {
			t.Errorf("event %s: %d rows, want 1", id, events[id])
		}
	}
	if len(h.pipe.Health()) != 0 || len(h.pipe.ShardHealth()) != 0 {
		t.Errorf("health after recovery: %v %v", h.pipe.Health(), h.pipe.ShardHealth())
	}
	if v := gauge(t, h.pipe.m.shardFailing.WithLabelValues("3")); v != 0 {
		t.Errorf("auditstore_ingest_shard_failing{shard=3}=%v after recovery, want 0", v)
	}
}

func gauge(tb testing.TB, g prometheus.Gauge) float64 {
	tb.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
