package readsql

import (
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// AggShape says how to read a row of a compiled aggregate: is_top (UInt8),
// one String per group field, the bucket start (DateTime) when bucketed,
// the event count (UInt64), one UInt64 per metric, then, when Stored, the
// kept rows it read (UInt64, see DayGroupsAggregate).
type AggShape struct {
	Groups   []schema.Field
	Bucketed bool
	Metrics  []schema.Metric
	Stored   bool
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
	return b.statement(sql + "\n" + aggOrder(b, len(cols), bucketed, maxRows)), shape
}

// aggOrder returns the ORDER BY and LIMIT of an aggregate of groups
// g0..g(groups-1): by bucket, the kept groups before "other", count
// descending, group values; at most maxRows rows plus one.
func aggOrder(b *builder, groups int, bucketed bool, maxRows int) string {
	var order []string
	if bucketed {
		order = append(order, "t ASC")
	}
	order = append(order, "is_top DESC", "n DESC")
	for i := range groups {
		order = append(order, "g"+strconv.Itoa(i)+" ASC")
	}
	return "ORDER BY " + strings.Join(order, ", ") + "\nLIMIT " + b.named("limit", "UInt32", strconv.Itoa(maxRows+1))
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
	var inner, group, metrics []string
	for i, c := range cols {
		k := "k" + strconv.Itoa(i)
		inner, group = append(inner, c+" AS "+k), append(group, k)
	}
	if bucket != "" {
		inner, group = append(inner, bucket+" AS t"), append(group, "t")
	}
	inner = append(inner, "count() AS c")
	for i, m := range a.Metrics {
		if fn, args, ok := m.Func(); ok {
			s := "s" + strconv.Itoa(i)
			inner = append(inner, fn+"State("+args+") AS "+s)
			metrics = append(metrics, fn+"Merge("+s+") AS m"+strconv.Itoa(i))
		}
	}
	src := "SELECT " + strings.Join(inner, ", ") + "\n" + from + "\n" + where + "\nGROUP BY " + strings.Join(group, ", ")
	return rankedSQL(b, src, len(cols), bucket != "", metrics, a.Top)
}

// rankedSQL ranks the value combinations k0..k(keys-1) of src (rows of the
// keys, the bucket t when bucketed, an event count c and the columns the
// metrics read) by their total count, keeps the first top and folds the
// others into one group: is_top, g0.., t, n (the count) and metrics.
func rankedSQL(b *builder, src string, keys int, bucketed bool, metrics []string, top int) string {
	var ks, ranked, outer, group []string
	for i := range keys {
		k := "k" + strconv.Itoa(i)
		ks, ranked = append(ks, k), append(ranked, k+" ASC")
		outer = append(outer, "if(is_top, "+k+", '') AS g"+strconv.Itoa(i))
		group = append(group, "g"+strconv.Itoa(i))
	}
	if bucketed {
		outer, group = append(outer, "t"), append(group, "t")
	}
	outer = append(append(outer, "sum(c) AS n"), metrics...)
	return "SELECT rk <= " + b.named("top", "UInt32", strconv.Itoa(top)) + " AS is_top,\n  " + strings.Join(outer, ",\n  ") +
		"\nFROM (\n  SELECT *, dense_rank() OVER (ORDER BY total DESC, " + strings.Join(ranked, ", ") + ") AS rk" +
		"\n  FROM (\n    SELECT *, sum(c) OVER (PARTITION BY " + strings.Join(ks, ", ") + ") AS total" +
		"\n    FROM (\n      " + strings.ReplaceAll(src, "\n", "\n      ") +
		"\n    )\n  )\n)\nGROUP BY is_top, " + strings.Join(group, ", ")
}
