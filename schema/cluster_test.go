package schema

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// clusterDDL renders every statement a cluster node runs, in order.
func clusterDDL(t *testing.T, c ClusterDDL) string {
	t.Helper()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range ms {
		for i, s := range c.Rewrite(m).Statements {
			fmt.Fprintf(&b, "-- %04d_%s statement %d\n", m.Version, m.Name, i+1)
			if s.When != "" {
				fmt.Fprintf(&b, "-- when: %s\n", s.When)
			}
			b.WriteString(s.SQL + ";\n\n")
		}
	}
	b.WriteString("-- Distributed tables\n")
	for _, s := range c.DistributedDDL() {
		b.WriteString(s + ";\n")
	}
	return b.String()
}

func TestClusterDDLGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		ddl  ClusterDDL
	}{
		{"cluster_replicated.sql", ClusterDDL{Cluster: "auditstore", Replicated: true}},
		{"cluster_sharded.sql", ClusterDDL{Cluster: "auditstore"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := clusterDDL(t, tc.ddl)
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("cluster DDL differs from %s (run with -update after checking the diff):\n%s", path, got)
			}
		})
	}
}

// The rewrite must leave no name of a sharded table unrewritten and turn
// every MergeTree engine into a Replicated one with its own Keeper path.
func TestClusterDDLRewrite(t *testing.T) {
	ddl := clusterDDL(t, ClusterDDL{Cluster: "c", Replicated: true})
	body := ddl[:strings.Index(ddl, "-- Distributed tables")]
	for _, bad := range []string{" events ", " events\n", "'events'", " events_by_key ", "ENGINE = ReplacingMergeTree", "events_0007 "} {
		if strings.Contains(body, bad) {
			t.Errorf("rewritten migrations still hold %q", bad)
		}
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS events_local\n",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/events_local', '{replica}')",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/orgs', '{replica}', updated_at)",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_key_mv TO events_by_key_local AS",
		"EXCHANGE TABLES events_local AND events_0007_local",
		"name = 'events_local'",
		"CREATE OR REPLACE TABLE events AS events_local ENGINE = Distributed('c', currentDatabase(), 'events_local', " + ShardKey + ")",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("cluster DDL lacks %q", want)
		}
	}
}

func TestShardOfSpreadsAndIsStable(t *testing.T) {
	const n = 3
	counts := make([]int, n)
	for i := 0; i < 3000; i++ {
		id := uuid.New()
		s := ShardOf("big-org", id, n)
		if again := ShardOf("big-org", id, n); again != s {
			t.Fatalf("ShardOf not stable: %d then %d", s, again)
		}
		counts[s]++
	}
	for s, c := range counts {
		if c < 800 {
			t.Errorf("shard %d got %d of 3000 events of one org, want about 1000", s, c)
		}
	}
	if got := ShardOf("o", uuid.New(), 1); got != 0 {
		t.Errorf("one shard: got %d", got)
	}
}
