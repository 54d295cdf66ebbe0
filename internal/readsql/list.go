package readsql

import (
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// selectEvents is the column list of StoredColumns.
var selectEvents = "SELECT " + strings.Join(schema.StoredColumns, ", ")

// List compiles one page of org's events under f in order s. In page mode
// (p.After nil) it selects p.Limit rows at p.Offset(); in keyset mode the
// p.Limit+1 rows after p.After, the extra row telling whether a next page
// exists.
func List(org string, f schema.Filter, s schema.Sort, p schema.Page) Statement {
	return ListAt(org, f, s, p.Limit, p.Offset(), p.After)
}

// ListAt compiles limit rows after skipping offset, or the limit+1 rows
// after a position (the paging planner's narrowed reads).
func ListAt(org string, f schema.Filter, s schema.Sort, limit, offset int, after *schema.Position) Statement {
	b := newBuilder()
	conds := where(b, org, f)
	keys := s.Keys()
	if after != nil {
		conds = append(conds, keyset(b, keys, *after))
		limit++
	}
	sql := selectEvents + "\n" + from + "\n" + joinWhere(conds) + "\n" + orderBy(keys) +
		"\nLIMIT " + b.named("limit", "UInt32", strconv.Itoa(limit))
	if offset > 0 {
		sql += " OFFSET " + b.named("offset", "UInt64", strconv.Itoa(offset))
	}
	return b.statement(sql)
}

// HourlyCounts compiles the number of org's events under f per UTC
// hour of their timestamp (hours without events absent), oldest first:
// the total of a list, and where in time each of its pages lies.
func HourlyCounts(org string, f schema.Filter) Statement {
	b := newBuilder()
	sql := "SELECT toStartOfHour(timestamp) AS hour, count() AS events\n" + from + "\n" + joinWhere(where(b, org, f)) +
		"\nGROUP BY hour\nORDER BY hour ASC"
	return b.statement(sql)
}

// Count compiles the number of org's events under f: the same
// conditions as List, so that totals and pages agree.
func Count(org string, f schema.Filter) Statement {
	b := newBuilder()
	sql := "SELECT count()\n" + from + "\n" + joinWhere(where(b, org, f))
	return b.statement(sql)
}

// Get compiles the lookup of one event of org by id. Should a client
// have reused an id with another timestamp, the newest wins.
func Get(org, id string) Statement {
	b := newBuilder()
	conds := where(b, org, schema.Filter{})
	conds = append(conds, schema.ColID+" = "+b.named("id", "UUID", id))
	sql := selectEvents + "\n" + from + "\n" + joinWhere(conds) + "\nORDER BY timestamp DESC\nLIMIT 1"
	return b.statement(sql)
}

// EventTypes compiles the catalog of event types of org's events
// under f: each type with its count and last timestamp, most frequent
// first, at most limit types.
func EventTypes(org string, f schema.Filter, limit int) Statement {
	b := newBuilder()
	col, _ := schema.FieldEventType.Column()
	sql := "SELECT " + col + ", count() AS events, max(timestamp) AS last_seen\n" + from + "\n" +
		joinWhere(where(b, org, f)) + "\nGROUP BY " + col + "\nORDER BY events DESC, " + col + " ASC" +
		"\nLIMIT " + b.named("limit", "UInt32", strconv.Itoa(limit))
	return b.statement(sql)
}
