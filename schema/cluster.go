package schema

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/google/uuid"
)

// A cluster keeps the events (and the lookup table fed from them) in local
// tables on every shard, named <table>_local, and reads them through
// Distributed tables that keep today's names, so that every read (query,
// exports, streams, lake) runs unchanged. The small tables (orgs, keys,
// streams, cursors, sessions, lake state) are created on every node too but
// used on one designated node only (see README "Scaling out").

// ShardedTables are the tables split over the shards of a cluster: their
// local tables hold the rows, and each has a Distributed table of its own
// name for reads. events_0007 is the copy 0007 swaps in: it is local too.
var ShardedTables = []string{EventsTable, "events_by_key", HoursTable}

// localTables are the tables whose DDL a cluster rewrites to <table>_local.
var localTables = append(append([]string{}, ShardedTables...), "events_0007")

// LocalSuffix names the local table of a sharded table.
const LocalSuffix = "_local"

// ShardKey is the sharding expression of the Distributed tables. ShardOf
// computes the same in Go: the writer splits a batch by it and inserts each
// part into its shard's local table directly. Every copy of a re-sent event
// (same org, same id) hashes alike, so FINAL folds the copies on their
// shard; the id spreads one org's events over every shard.
const ShardKey = "xxHash64(concat(org_id, ':', toString(id)))"

// ShardOf returns the index (0-based, in shard_num order) of the shard of
// the event (org, id) in a cluster of n shards of weight 1, as a
// Distributed table with ShardKey would choose it.
func ShardOf(org string, id uuid.UUID, n int) int {
	if n <= 1 {
		return 0
	}
	return int(xxhash.Sum64String(org+":"+id.String()) % uint64(n))
}

// ClusterDDL says how a cluster's DDL is derived from the migrations.
type ClusterDDL struct {
	// Cluster is the name in the servers' remote_servers.
	Cluster string
	// Replicated makes the local tables Replicated*MergeTree, for clusters
	// with replicas and ClickHouse Keeper; else they are plain MergeTree.
	Replicated bool
}

var (
	localTableRE = regexp.MustCompile(`\b(` + strings.Join(localTables, "|") + `)\b`)
	engineRE     = regexp.MustCompile(`ENGINE\s*=\s*((?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing)?MergeTree)(?:\(([^)]*)\))?`)
	createRE     = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS (\w+)`)
	clusterName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// Validate reports a cluster name that cannot be written into DDL.
func (c ClusterDDL) Validate() error {
	if !clusterName.MatchString(c.Cluster) {
		return fmt.Errorf("cluster name %q: want letters, digits, _ . -", c.Cluster)
	}
	return nil
}

// Rewrite returns the statements of m as a cluster node runs them: the
// sharded tables (and every name of them, in guards too) become their local
// tables, and MergeTree engines become Replicated ones when c.Replicated.
// The Distributed tables are not part of it: see DistributedDDL.
func (c ClusterDDL) Rewrite(m Migration) Migration {
	out := m
	out.Statements = make([]Statement, len(m.Statements))
	for i, s := range m.Statements {
		out.Statements[i] = Statement{SQL: c.rewriteSQL(s.SQL), When: localTableRE.ReplaceAllString(s.When, "${1}"+LocalSuffix)}
	}
	return out
}

func (c ClusterDDL) rewriteSQL(sql string) string {
	table := ""
	if m := createRE.FindStringSubmatch(sql); m != nil {
		table = m[1]
	}
	sql = localTableRE.ReplaceAllString(sql, "${1}"+LocalSuffix)
	if !c.Replicated || table == "" {
		return sql
	}
	if isLocal(table) {
		table += LocalSuffix
	}
	return engineRE.ReplaceAllStringFunc(sql, func(e string) string {
		p := engineRE.FindStringSubmatch(e)
		args := fmt.Sprintf("'/clickhouse/tables/{shard}/{database}/%s', '{replica}'", table)
		if strings.TrimSpace(p[2]) != "" {
			args += ", " + p[2]
		}
		return "ENGINE = Replicated" + p[1] + "(" + args + ")"
	})
}

func isLocal(table string) bool {
	for _, t := range localTables {
		if t == table {
			return true
		}
	}
	return false
}

// DistributedDDL returns the statements that (re)create the Distributed
// table of every sharded table over its local table, with the local
// table's current columns. They run after the migrations on every node:
// a Distributed table holds no data (nothing is inserted through it), so
// replacing it is safe and follows every column a migration added.
func (c ClusterDDL) DistributedDDL() []string {
	var out []string
	for _, t := range ShardedTables {
		key := ", " + ShardKey
		if t == HoursTable {
			key = "" // its rows come from each shard's view, not through it; it has no id
		}
		out = append(out, fmt.Sprintf("CREATE OR REPLACE TABLE %s AS %s%s ENGINE = Distributed('%s', currentDatabase(), '%s%s'%s)",
			t, t, LocalSuffix, c.Cluster, t, LocalSuffix, key))
	}
	return out
}
