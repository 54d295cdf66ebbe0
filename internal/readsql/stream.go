package readsql

import (
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Streams and the data lake read EventsTable per ingest node in ingest_seq
// order: "after the cursor, up to the node's confirmed watermark" sees
// every row once (see schema/sql/0005_ingest_seq.sql). They read without
// FINAL: each copy of a re-sent event has its own ingest_seq, and the
// destinations deduplicate by id.

// StreamColumns are the columns a stream reads, in the order its row type
// scans them.
const StreamColumns = "ingest_seq, id, timestamp, received_at, expires_at, org_id, event_type, event_metadata, " +
	"actor_type, actor_id, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, " +
	"ip_address, user_agent, user_agent_type, trace_id"

// StreamFilter is a stream's stored filter: the event types and actor
// types it admits (an empty list admits all), each value already checked
// against schema's rules.
type StreamFilter struct {
	EventTypes []string
	ActorTypes []string
}

// conds returns the conditions of f, its values as Array(String)
// parameters added to st.
func (f StreamFilter) conds(st *Statement) string {
	var s string
	if len(f.EventTypes) > 0 {
		s += " AND event_type IN {types:Array(String)}"
		st.Arrays["types"] = f.EventTypes
	}
	if len(f.ActorTypes) > 0 {
		s += " AND actor_type IN {actors:Array(String)}"
		st.Arrays["actors"] = f.ActorTypes
	}
	return s
}

// StreamBatch compiles the next batch of a stream of org: the events on
// node after cursor after up to upto that pass f, StreamColumns in
// ingest_seq order, at most limit.
func StreamBatch(org, node string, f StreamFilter, after, upto uint64, limit int) Statement {
	st := Statement{Params: map[string]string{"org": org, "node": node, "after": u64(after), "upto": u64(upto),
		"limit": strconv.Itoa(limit)}, Arrays: map[string][]string{}}
	st.SQL = "SELECT " + StreamColumns + " FROM " + schema.EventsTable +
		" WHERE org_id = {org:String} AND ingest_node = {node:String}" +
		" AND ingest_seq > {after:UInt64} AND ingest_seq <= {upto:UInt64} AND " + schema.NotExpired +
		f.conds(&st) + " ORDER BY ingest_seq LIMIT {limit:UInt32}"
	return st
}

// StreamLag compiles the count of a stream's events of org that pass f
// and lie after the cursors (node → ingest_seq), with the receive time of
// the oldest: count() (UInt64), min(received_at).
func StreamLag(org string, f StreamFilter, cursors map[string]uint64) Statement {
	nodes := make([]string, 0, len(cursors))
	seqs := make([]string, 0, len(cursors))
	for n, c := range cursors {
		nodes, seqs = append(nodes, n), append(seqs, u64(c))
	}
	st := Statement{Params: map[string]string{"org": org, "seqs": "[" + strings.Join(seqs, ",") + "]"},
		Arrays: map[string][]string{"nodes": nodes}}
	st.SQL = "SELECT count(), min(received_at) FROM " + schema.EventsTable +
		" WHERE org_id = {org:String} AND ingest_node IN {nodes:Array(String)}" +
		" AND ingest_seq > arrayElement({seqs:Array(UInt64)}, indexOf({nodes:Array(String)}, ingest_node))" +
		" AND " + schema.NotExpired + f.conds(&st)
	return st
}

// StreamStart compiles where a reader of org's events created at created
// starts on node, which had no cursor yet: the last ingest_seq up to upto
// of the events received before then (max(ingest_seq), 0 for none). An
// empty org means every org (a data-lake destination of the whole store).
func StreamStart(org, node string, created time.Time, upto uint64) Statement {
	st := Statement{Params: map[string]string{"node": node, "created": chconn.Time(created), "upto": u64(upto)}}
	scope := ""
	if org != "" {
		st.Params["org"] = org
		scope = "org_id = {org:String} AND "
	}
	st.SQL = "SELECT max(ingest_seq) FROM " + schema.EventsTable + " WHERE " + scope +
		"ingest_node = {node:String} AND ingest_seq <= {upto:UInt64} AND received_at < {created:" + typeTime + "}"
	return st
}
