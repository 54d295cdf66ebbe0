package query

import (
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// aggShape says how to read a row of a compiled aggregate: is_top (UInt8),
// one String per group field, the bucket start (DateTime) when bucketed,
// the event count (UInt64), then one UInt64 per metric.
type aggShape struct {
	groups   []schema.Field
	bucketed bool
	metrics  []schema.Metric
}

// CompileAggregate compiles the figures of org's events under f grouped as
// a asks, at most maxRows rows plus one (so that the caller can tell that
// there were more). Rows come ordered by bucket, then the kept groups
// before "other", then by count descending and group values.
//
// With a.Top > 0 and a.GroupBy set, a subquery ranks the group value
// combinations by count over the whole range (ties by values) and keeps
// a.Top of them; every other row is folded into the "other" group, whose
// group values are empty and whose distinct counts are computed over all
// its events (not summed).
func CompileAggregate(org string, f schema.Filter, a schema.Aggregate, maxRows int) (Statement, aggShape) {
	b := newBuilder()
	w := joinWhere(where(b, org, f))
	cols := make([]string, 0, len(a.GroupBy))
	for _, g := range a.GroupBy {
		if c, ok := g.Column(); ok {
			cols = append(cols, c)
		}
	}
	shape := aggShape{groups: a.GroupBy, metrics: a.Metrics}
	var sel, group, order []string
	if a.Top > 0 && len(cols) > 0 {
		key := cols[0]
		if len(cols) > 1 {
			key = "(" + strings.Join(cols, ", ") + ")"
		}
		ranked := make([]string, len(cols))
		for i, c := range cols {
			ranked[i] = c + " ASC"
		}
		sub := "SELECT " + strings.Join(cols, ", ") + "\n  " + from + "\n  " +
			strings.ReplaceAll(w, "\n", "\n  ") + "\n  GROUP BY " + strings.Join(cols, ", ") +
			"\n  ORDER BY count() DESC, " + strings.Join(ranked, ", ") +
			"\n  LIMIT " + b.named("top", "UInt32", strconv.Itoa(a.Top))
		sel = append(sel, key+" IN (\n  "+sub+"\n) AS is_top")
		for i, c := range cols {
			sel = append(sel, "if(is_top, "+c+", '') AS g"+strconv.Itoa(i))
		}
		group = append(group, "is_top")
	} else {
		sel = append(sel, "1 AS is_top")
		for i, c := range cols {
			sel = append(sel, c+" AS g"+strconv.Itoa(i))
		}
	}
	for i := range cols {
		group = append(group, "g"+strconv.Itoa(i))
	}
	if expr, ok := a.Interval.Bucket(); ok {
		shape.bucketed = true
		sel = append(sel, expr+" AS t")
		group = append(group, "t")
		order = append(order, "t ASC")
	}
	sel = append(sel, "count() AS n")
	for i, m := range a.Metrics {
		if expr, ok := m.Expr(); ok {
			sel = append(sel, expr+" AS m"+strconv.Itoa(i))
		}
	}
	order = append(order, "is_top DESC", "n DESC")
	for i := range cols {
		order = append(order, "g"+strconv.Itoa(i)+" ASC")
	}
	sql := "SELECT " + strings.Join(sel, ",\n  ") + "\n" + from + "\n" + w
	if len(group) > 0 {
		sql += "\nGROUP BY " + strings.Join(group, ", ")
	}
	sql += "\nORDER BY " + strings.Join(order, ", ") +
		"\nLIMIT " + b.named("limit", "UInt32", strconv.Itoa(maxRows+1))
	return Statement{SQL: sql, Params: b.params}, shape
}
