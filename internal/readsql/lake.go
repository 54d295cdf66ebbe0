package readsql

import (
	"maps"
	"time"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Selection is a set of events named by a WHERE condition over
// EventsTable, its values in Params: what a data-lake step or backfill
// writes. Org "" selects every org (a destination of the whole store).
type Selection struct {
	Where  string
	Params map[string]string
}

func scoped(org, w string, p map[string]string) string {
	if org == "" {
		return w
	}
	p["org"] = org
	return "org_id = {org:String} AND " + w
}

// LakeStep selects the events of org on node after..upto (ingest_seq)
// received since created: a continuous delivery's step.
func LakeStep(org, node string, after, upto uint64, created time.Time) Selection {
	p := map[string]string{"node": node, "after": u64(after), "upto": u64(upto), "created": chconn.Time(created)}
	w := "ingest_node = {node:String} AND ingest_seq > {after:UInt64} AND ingest_seq <= {upto:UInt64}" +
		" AND received_at >= {created:" + typeTime + "} AND " + schema.NotExpired
	return Selection{Where: scoped(org, w, p), Params: p}
}

// LakeBackfill selects the events of org with a timestamp in [from, to)
// received before created: those the continuous delivery never sees.
func LakeBackfill(org string, from, to, created time.Time) Selection {
	p := map[string]string{"bfrom": chconn.Time(from), "bto": chconn.Time(to), "created": chconn.Time(created)}
	w := "timestamp >= {bfrom:" + typeTime + "} AND timestamp < {bto:" + typeTime + "} AND received_at < {created:" +
		typeTime + "} AND " + schema.NotExpired
	return Selection{Where: scoped(org, w, p), Params: p}
}

func (s Selection) statement(sql string) Statement {
	return Statement{SQL: sql, Params: maps.Clone(s.Params)}
}

// Select compiles the events of s as columns (our own SELECT list: the
// export schema or the OCSF mapping), for a file write.
func (s Selection) Select(columns string) Statement {
	return s.statement("SELECT " + columns + " FROM " + schema.EventsTable + " WHERE " + s.Where)
}

// Partitions compiles the count of the events of s per partition, the
// partition given by expr over the stored columns (our own expression; its
// literals already parameters of the caller): part (String), count().
func (s Selection) Partitions(expr string) Statement {
	return s.statement("SELECT " + expr + " AS part, count() FROM " + schema.EventsTable +
		" WHERE " + s.Where + " GROUP BY part ORDER BY part")
}

// Pending compiles the count of the events of s and the receive time of
// the oldest: count() (UInt64), min(received_at).
func (s Selection) Pending() Statement {
	return s.statement("SELECT count(), min(received_at) FROM " + schema.EventsTable + " WHERE " + s.Where)
}

// Nth compiles the ingest_seq of the n-th (from 1) of the events of s in
// ingest_seq order: where a step of n events ends.
func (s Selection) Nth(n uint64) Statement {
	st := s.statement("SELECT ingest_seq FROM " + schema.EventsTable + " WHERE " + s.Where +
		" ORDER BY ingest_seq LIMIT 1 OFFSET {off:UInt64}")
	st.Params["off"] = u64(n - 1)
	return st
}
