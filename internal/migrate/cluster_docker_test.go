package migrate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/ory/dockertest/v3"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/schema"
)

// The Replicated DDL against real ClickHouse servers: one shard of two
// replicas with ClickHouse Keeper, in Docker. An event inserted into one
// replica's events_local with a token reaches the other (and its
// events_by_key_local), and the same insert retried on the other replica
// is deduplicated there (the block's token is in Keeper). Skipped where no
// Docker engine answers: the embedded engine has no Keeper client, so
// there the golden files (schema/testdata/cluster_replicated.sql) are what
// checks this DDL.
func TestRunClusterReplicatedDocker(t *testing.T) {
	pool, err := dockertest.NewPool("")
	if err != nil || pool.Client.Ping() != nil {
		t.Skip("no Docker engine answers: Replicated tables need ClickHouse Keeper, which the embedded engine cannot use; the golden files check the Replicated DDL here")
	}
	pool.MaxWait = 3 * time.Minute
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	network, err := pool.CreateNetwork("auditstore-cluster-" + suffix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.RemoveNetwork(network) })
	dir := t.TempDir()
	keeperName := "keeper-" + suffix
	replicas := []string{"ch-r1-" + suffix, "ch-r2-" + suffix}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keeperConf := write("keeper.xml", fmt.Sprintf(`<clickhouse><listen_host>0.0.0.0</listen_host><keeper_server>
<tcp_port>9181</tcp_port><server_id>1</server_id>
<log_storage_path>/var/lib/clickhouse-keeper/log</log_storage_path><snapshot_storage_path>/var/lib/clickhouse-keeper/snapshots</snapshot_storage_path>
<raft_configuration><server><id>1</id><hostname>%s</hostname><port>9234</port></server></raft_configuration>
</keeper_server></clickhouse>`, keeperName))
	keeper, err := pool.RunWithOptions(&dockertest.RunOptions{Repository: "clickhouse/clickhouse-keeper", Tag: chtest.ImageTag,
		Name: keeperName, Hostname: keeperName, Networks: []*dockertest.Network{network},
		Mounts: []string{keeperConf + ":/etc/clickhouse-keeper/keeper_config.xml:ro"}})
	if err != nil {
		t.Fatalf("start keeper: %v", err)
	}
	t.Cleanup(func() { _ = pool.Purge(keeper) })
	clusterConf := write("cluster.xml", fmt.Sprintf(`<clickhouse><remote_servers><docker><shard><internal_replication>true</internal_replication>
<replica><host>%s</host><port>9000</port></replica><replica><host>%s</host><port>9000</port></replica>
</shard></docker></remote_servers><zookeeper><node><host>%s</host><port>9181</port></node></zookeeper></clickhouse>`,
		replicas[0], replicas[1], keeperName))
	var conns []driver.Conn
	for i, name := range replicas {
		macros := write(fmt.Sprintf("macros%d.xml", i), fmt.Sprintf(`<clickhouse><macros><shard>1</shard><replica>%s</replica></macros></clickhouse>`, name))
		res, err := pool.RunWithOptions(&dockertest.RunOptions{Repository: chtest.ImageRepository, Tag: chtest.ImageTag,
			Name: name, Hostname: name, Networks: []*dockertest.Network{network},
			Env: []string{"CLICKHOUSE_SKIP_USER_SETUP=1"},
			Mounts: []string{clusterConf + ":/etc/clickhouse-server/config.d/cluster.xml:ro",
				macros + ":/etc/clickhouse-server/config.d/macros.xml:ro"}})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() { _ = pool.Purge(res) })
		cfg := chconn.DefaultConfig()
		cfg.Addr, cfg.Database = res.GetHostPort("9000/tcp"), "auditstore"
		var conn driver.Conn
		if err := pool.Retry(func() error {
			var err error
			conn, err = chconn.Open(context.Background(), cfg)
			return err
		}); err != nil {
			t.Fatalf("connect to %s: %v", name, err)
		}
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	ctx := context.Background()
	mcfg := migrate.DefaultClusterConfig()
	mcfg.DDL = schema.ClusterDDL{Cluster: "docker", Replicated: true}
	if err := migrate.RunCluster(ctx, []migrate.Conn{conns[0], conns[1]}, mcfg, quiet()); err != nil {
		t.Fatal(err)
	}
	insert := func(conn driver.Conn, ids []uuid.UUID) {
		ictx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"insert_deduplicate": 1, "insert_deduplication_token": "docker-test-s1"}))
		b, err := conn.PrepareBatch(ictx, "INSERT INTO events_local (org_id, timestamp, id, actor_id, received_at, expires_at)")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		for _, id := range ids {
			if err := b.Append("acme", now, id, "u1", now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	insert(conns[0], ids)
	insert(conns[1], ids) // a retry on the other replica
	for i, conn := range conns {
		for _, table := range []string{"events_local", "events_by_key_local"} {
			if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+table); err != nil {
				t.Fatal(err)
			}
			var n uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != uint64(len(ids)) {
				t.Errorf("replica %d %s rows=%d, want %d (replicated once, the retry deduplicated)", i+1, table, n, len(ids))
			}
		}
		var engine string
		if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'orgs'").Scan(&engine); err != nil {
			t.Fatal(err)
		}
		if engine != "ReplicatedReplacingMergeTree" {
			t.Errorf("replica %d orgs engine=%s, want ReplicatedReplacingMergeTree", i+1, engine)
		}
	}
}
