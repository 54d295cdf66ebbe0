package migrate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/schema"
)

func clusterConfig(holder string) migrate.ClusterConfig {
	cfg := migrate.DefaultClusterConfig()
	cfg.DDL = schema.ClusterDDL{Cluster: chtest.ClusterName}
	cfg.Holder, cfg.Poll = holder, 50*time.Millisecond
	return cfg
}

func nodes(c *chtest.Cluster) []migrate.Conn {
	var out []migrate.Conn
	for _, conn := range c.Conns() {
		out = append(out, conn)
	}
	return out
}

// Two auditstore nodes start together on a 3-shard cluster: one migrates
// every node, the other waits, then finds nothing to do. Every node has its
// local tables, its own record, and Distributed tables over all shards; and
// the shard ClickHouse picks by the Distributed tables' key is the one
// schema.ShardOf picks in Go.
func TestRunClusterTwoNodesAtOnce(t *testing.T) {
	c := chtest.NewCluster(t, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = migrate.RunCluster(ctx, nodes(c), clusterConfig(fmt.Sprint("node", i)), quiet()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("auditstore node %d: %v", i, err)
		}
	}
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range c.Nodes {
		var recorded, versions uint64
		if err := n.Conn.QueryRow(ctx, "SELECT count(), uniqExact(version) FROM "+schema.MigrationsTable).Scan(&recorded, &versions); err != nil {
			t.Fatal(err)
		}
		if int(versions) != len(ms) || recorded != versions {
			t.Errorf("node %d: recorded=%d versions=%d, want each of %d migrations once", i, recorded, versions, len(ms))
		}
		var engine string
		if err := n.Conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'events'").Scan(&engine); err != nil {
			t.Fatal(err)
		}
		if engine != "Distributed" {
			t.Errorf("node %d: events engine=%s, want Distributed", i, engine)
		}
		var lock uint64
		if err := n.Conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = '"+migrate.LockTable+"'").Scan(&lock); err != nil {
			t.Fatal(err)
		}
		if lock != 0 {
			t.Errorf("node %d: the migration lock is left behind", i)
		}
	}

	// Insert through the Distributed table: ClickHouse shards by its key.
	const events = 300
	ids := make([]uuid.UUID, events)
	orgs := []string{"org-a", "org-b", "big"}
	b, err := c.Nodes[0].Conn.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_foreground_insert": 1})),
		"INSERT INTO events (org_id, timestamp, id, actor_id, received_at, expires_at)")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range ids {
		ids[i] = uuid.New()
		if err := b.Append(orgs[i%3], now, ids[i], "user-1", now, now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	for s, n := range c.Nodes {
		want := map[uuid.UUID]bool{}
		for i, id := range ids {
			if schema.ShardOf(orgs[i%3], id, len(c.Nodes)) == s {
				want[id] = true
			}
		}
		rows, err := n.Conn.Query(ctx, "SELECT id FROM events_local")
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			if !want[id] {
				t.Errorf("shard %d holds %s, which ShardOf puts elsewhere", s, id)
			}
			got++
		}
		rows.Close()
		if got != len(want) {
			t.Errorf("shard %d rows=%d, want %d (ShardOf)", s, got, len(want))
		}
		// The lookup table follows its events (the view runs on each shard).
		var keys uint64
		if err := n.Conn.QueryRow(ctx, "SELECT count() FROM events_by_key_local").Scan(&keys); err != nil {
			t.Fatal(err)
		}
		if int(keys) != len(want) {
			t.Errorf("shard %d events_by_key_local rows=%d, want %d (one actor row per event of the shard)", s, keys, len(want))
		}
	}
	var total uint64
	if err := c.Nodes[1].Conn.QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != events {
		t.Errorf("count through Distributed=%d, want %d", total, events)
	}
	// Migrating again is a no-op; a Distributed table left behind its
	// local table (a run stopped between the two) is brought up to date.
	if err := c.Nodes[2].Conn.Exec(ctx, "CREATE OR REPLACE TABLE events (org_id String) ENGINE = Distributed('"+chtest.ClusterName+"', currentDatabase(), 'events_local')"); err != nil {
		t.Fatal(err)
	}
	if err := migrate.RunCluster(ctx, nodes(c), clusterConfig("again"), quiet()); err != nil {
		t.Fatal(err)
	}
	var cols uint64
	if err := c.Nodes[2].Conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'events'").Scan(&cols); err != nil {
		t.Fatal(err)
	}
	var localCols uint64
	if err := c.Nodes[2].Conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'events_local'").Scan(&localCols); err != nil {
		t.Fatal(err)
	}
	if cols != localCols || cols < 20 {
		t.Errorf("events has %d columns after a re-run, events_local %d", cols, localCols)
	}
	if err := c.Nodes[2].Conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&total); err != nil || total != events {
		t.Errorf("count through the re-created Distributed table=%d (%v), want %d", total, err, events)
	}
}

// A lock left by a node that died while migrating is taken over once stale.
func TestRunClusterTakesOverStaleLock(t *testing.T) {
	c := chtest.NewCluster(t, 1)
	ctx := context.Background()
	if err := c.Nodes[0].Conn.Exec(ctx, "CREATE TABLE "+migrate.LockTable+" (holder String) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	cfg := clusterConfig("late")
	cfg.Stale = time.Second
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := migrate.RunCluster(tctx, nodes(c), cfg, quiet()); err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
}
