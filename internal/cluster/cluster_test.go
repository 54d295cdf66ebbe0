package cluster

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chtest"
)

// Discover reads the shards from system.clusters of any node, and a shard's
// Replicas send a batch to the next replica when one is down.
func TestDiscoverAndReplicaFailover(t *testing.T) {
	c := chtest.NewCluster(t, 2)
	ctx := context.Background()
	topo, err := Discover(ctx, c.Nodes[1].Conn, chtest.ClusterName)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Shards) != 2 || topo.Replicated() || topo.Designated().Addr != c.Nodes[0].Addr {
		t.Fatalf("topology %+v: want 2 unreplicated shards, designated %s", topo, c.Nodes[0].Addr)
	}
	if _, err := Discover(ctx, c.Nodes[0].Conn, "no_such_cluster"); err == nil {
		t.Fatal("an unknown cluster was discovered")
	}

	if err := c.Nodes[0].Conn.Exec(ctx, "CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	c.Nodes[1].Stop(t)
	r := &Replicas{conns: []driver.Conn{c.Nodes[1].Conn, c.Nodes[0].Conn}}
	b, err := r.PrepareBatch(ctx, "INSERT INTO t")
	if err != nil {
		t.Fatalf("no failover to the live replica: %v", err)
	}
	if err := b.Append(uint8(7)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := c.Nodes[0].Conn.QueryRow(ctx, "SELECT count() FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows on the live replica=%d (%v), want 1", n, err)
	}
	if r.next != 1 {
		t.Errorf("next replica=%d, want the one that answered (1)", r.next)
	}
}
