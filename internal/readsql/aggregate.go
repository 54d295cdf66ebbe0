package readsql

import (
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// AggShape says how to read a row of a compiled aggregate: is_top (UInt8),
// one String per group field, the bucket start (DateTime) when bucketed,
// the event count (UInt64), then one UInt64 per metric.
type AggShape struct {
	Groups   []schema.Field
	Bucketed bool
	Metrics  []schema.Metric
}

// Aggregate compiles the figures of org's events under f grouped as
// a asks, at most maxRows rows plus one (so that the caller can tell that
// there were more). Rows come ordered by bucket, then the kept groups
// before "other", then by count descending and group values.
//
// With a.Top > 0 and a.GroupBy set, the group value combinations are
// ranked by count over the whole range (ties by values) and all but the
// first a.Top are folded into one "other" group, whose group values are
// empty and whose distinct counts are computed over all its events (partial
// states merged, not summed). One pass over the events serves both.
func Aggregate(org string, f schema.Filter, a schema.Aggregate, maxRows int) (Statement, AggShape) {
	b := newBuilder()
	w := joinWhere(where(b, org, f))
	var cols []string
	for _, g := range a.GroupBy {
		if c, ok := g.Column(); ok {
			cols = append(cols, c)
		}
	}
	bucket, bucketed := a.Interval.Bucket()
	shape := AggShape{Groups: a.GroupBy, Bucketed: bucketed, Metrics: a.Metrics}
	var sql string
	if a.Top > 0 && len(cols) > 0 {
		sql = topSQL(b, w, cols, bucket, a)
	} else {
		sql = plainSQL(w, cols, bucket, a)
	}
	var order []string
	if bucketed {
		order = append(order, "t ASC")
	}
	order = append(order, "is_top DESC", "n DESC")
	for i := range cols {
		order = append(order, "g"+strconv.Itoa(i)+" ASC")
	}
	sql += "\nORDER BY " + strings.Join(order, ", ") + "\nLIMIT " + b.named("limit", "UInt32", strconv.Itoa(maxRows+1))
	return b.statement(sql), shape
}

// plainSQL groups the events directly.
func plainSQL(where string, cols []string, bucket string, a schema.Aggregate) string {
	sel := []string{"1 AS is_top"}
	var group []string
	for i, c := range cols {
		g := "g" + strconv.Itoa(i)
		sel, group = append(sel, c+" AS "+g), append(group, g)
	}
	if bucket != "" {
		sel, group = append(sel, bucket+" AS t"), append(group, "t")
	}
	sel = append(sel, "count() AS n")
	for i, m := range a.Metrics {
		if expr, ok := m.Expr(); ok {
			sel = append(sel, expr+" AS m"+strconv.Itoa(i))
		}
	}
	sql := "SELECT " + strings.Join(sel, ",\n  ") + "\n" + from + "\n" + where
	if len(group) > 0 {
		sql += "\nGROUP BY " + strings.Join(group, ", ")
	}
	return sql
}

// topSQL groups the events by value combination (and bucket) with partial
// metric states, ranks the combinations by their total count, and folds
// those ranked beyond a.Top.
func topSQL(b *builder, where string, cols []string, bucket string, a schema.Aggregate) string {
	var inner, keys, ranked, outer, group []string
	for i, c := range cols {
		k := "k" + strconv.Itoa(i)
		inner, keys, ranked = append(inner, c+" AS "+k), append(keys, k), append(ranked, k+" ASC")
		outer = append(outer, "if(is_top, "+k+", '') AS g"+strconv.Itoa(i))
		group = append(group, "g"+strconv.Itoa(i))
	}
	innerGroup := slicesClone(keys)
	if bucket != "" {
		inner, innerGroup = append(inner, bucket+" AS t"), append(innerGroup, "t")
		outer, group = append(outer, "t"), append(group, "t")
	}
	inner = append(inner, "count() AS c")
	outer = append(outer, "sum(c) AS n")
	for i, m := range a.Metrics {
		if fn, args, ok := m.Func(); ok {
			s := "s" + strconv.Itoa(i)
			inner = append(inner, fn+"State("+args+") AS "+s)
			outer = append(outer, fn+"Merge("+s+") AS m"+strconv.Itoa(i))
		}
	}
	return "SELECT rk <= " + b.named("top", "UInt32", strconv.Itoa(a.Top)) + " AS is_top,\n  " + strings.Join(outer, ",\n  ") +
		"\nFROM (\n  SELECT *, dense_rank() OVER (ORDER BY total DESC, " + strings.Join(ranked, ", ") + ") AS rk" +
		"\n  FROM (\n    SELECT *, sum(c) OVER (PARTITION BY " + strings.Join(keys, ", ") + ") AS total" +
		"\n    FROM (\n      SELECT " + strings.Join(inner, ", ") + "\n      " + from + "\n      " +
		strings.ReplaceAll(where, "\n", "\n      ") + "\n      GROUP BY " + strings.Join(innerGroup, ", ") +
		"\n    )\n  )\n)\nGROUP BY is_top, " + strings.Join(group, ", ")
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }
