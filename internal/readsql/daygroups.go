package readsql

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// The day groups: partial aggregates of whole UTC days that a reader keeps
// in schema.DayGroupsTable (see migration 0013) and uses again while the
// day has had no write since.

// DayGroupsFit reports whether the aggregate a of f may be answered from
// day groups: events counted per group of one to schema.MaxGroupBy fields
// over the whole range (no time buckets, no distinct counts), for a range
// narrowed by time alone (the access records left out or not). Filtered
// aggregates are left out so that the table holds a few shapes per org,
// not one per filter an analyst tries.
func DayGroupsFit(f schema.Filter, a schema.Aggregate) bool {
	if len(a.GroupBy) == 0 || len(a.GroupBy) > schema.MaxGroupBy || a.Interval != schema.IntervalNone || !TimeOnly(f) {
		return false
	}
	for _, g := range a.GroupBy {
		if _, ok := g.Column(); !ok {
			return false
		}
	}
	return !slices.ContainsFunc(a.Metrics, func(m schema.Metric) bool { return m != schema.MetricCount })
}

// DayShape returns the key of the day groups of f grouped by groupBy: a
// digest of f's conditions besides time, as compiled (FilterKey), and of
// the group columns.
func DayShape(f schema.Filter, groupBy []schema.Field) string {
	f.From, f.To = time.Time{}, time.Time{}
	k := FilterKey(f)
	h := sha256.New()
	h.Write(k[:])
	for _, g := range groupBy {
		c, _ := g.Column()
		h.Write([]byte(strconv.Itoa(len(c)) + ":" + c))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// typeDay is the type of DayGroupsTable's day.
const typeDay = "Date"

// dayText renders the UTC day of t as a Date parameter.
func dayText(t time.Time) string { return t.UTC().Format("2006-01-02") }

// DayMarks compiles, like HourMarks, when each UTC day of org's events in
// [from, to) (whole days) was last written, one row per day written at
// least once, oldest first: day (Date), last (DateTime64(6): the latest
// write of its hours), settled (UInt8: older than settle by the server's
// clock), now (DateTime64(3): the server's clock).
func DayMarks(org string, from, to time.Time, settle time.Duration) Statement {
	return marks(org, "toDate(hour) AS day", "day", from, to, settle)
}

// DayRuns compiles the markers of the runs kept for org's aggregate shape
// of blocks starting in [from, to): day (Date: the block's first day),
// days (UInt16: its length), run (UInt64: see DayRunID), computed
// (DateTime64(3)), mark (DateTime64(6): the block's latest write when it
// was counted), rows (UInt64: the run's group rows), expires
// (DateTime64(3): the earliest expiry among the block's events).
func DayRuns(org, shape string, from, to time.Time) Statement {
	b := newBuilder()
	conds := dayConds(b, org, shape, 0, from, to)
	return b.statement("SELECT day, days, run, computed, mark, rows, expires\nFROM " + schema.DayGroupsTable + "\n" + joinWhere(conds))
}

// Block is a run of whole UTC days counted as one: Days days from Start (a
// UTC midnight whose day number since 1970 is a multiple of Days).
type Block struct {
	Start time.Time
	Days  int
}

// DayRunID is the run of block b within a count written under base
// (DayGroupsWrite): each block of a count has a run of its own, so that a
// set of runs names blocks and counts at once.
func DayRunID(base uint64, b Block) uint64 {
	return base ^ uint64(b.Start.Unix()/86400) ^ uint64(b.Days)<<32
}

// dayRunSQL is DayRunID in SQL, of the row's block (day, days).
func dayRunSQL(base, days string) string {
	return "bitXor(bitXor(" + base + ", toUInt64(toUInt16(day))), bitShiftLeft(toUInt64(" + days + "), 32))"
}

// dayConds returns the conditions of DayGroupsTable's rows of kind (0:
// markers, 1: groups) of org's shape whose block starts in [from, to), in
// the order of its key.
func dayConds(b *builder, org, shape string, kind int, from, to time.Time) []string {
	return []string{
		"org_id = " + b.named("org", typeString, org),
		"shape = " + b.named("shape", typeString, shape),
		"kind = " + strconv.Itoa(kind),
		"day >= " + b.named("dayFrom", typeDay, dayText(from)),
		"day < " + b.named("dayTo", typeDay, dayText(to)),
	}
}

// groupCols returns the columns of groupBy, padded with ” to
// schema.MaxGroupBy.
func groupCols(groupBy []schema.Field) []string {
	out := make([]string, schema.MaxGroupBy)
	for i := range out {
		out[i] = "''"
		if i < len(groupBy) {
			out[i], _ = groupBy[i].Column()
		}
	}
	return out
}

// DayGroupsWrite compiles the group rows of a count (its runs: DayRunID
// of run and each block) of blocks of days days starting at starts (oldest
// first): org's events under f (its time range left out) counted per block
// and group, with FINAL and without the expired events, as Aggregate
// counts them; each row carries the earliest expiry among its events.
func DayGroupsWrite(org, shape string, run uint64, computed time.Time, f schema.Filter, groupBy []schema.Field, days int, starts []time.Time) Statement {
	b := newBuilder()
	var spans []Span // runs of consecutive blocks as one span each
	for _, d := range starts {
		spans = AppendSpan(spans, Span{From: d, To: d.AddDate(0, 0, days)})
	}
	f.From, f.To = time.Time{}, time.Time{}
	conds := where(b, org, f)
	conds = append(conds, inSpans(b, spans))
	n := b.named("days", "UInt16", strconv.Itoa(days))
	sel := []string{b.named("org", typeString, org), b.named("shape", typeString, shape),
		"toDate(" + schema.ColTimestamp + ") - (toUInt16(toDate(" + schema.ColTimestamp + ")) % " + n + ") AS day", n,
		dayRunSQL(b.named("run", typeUInt64, u64(run)), n), "1", b.named("computed", typeTime, chconn.Time(computed))}
	group := []string{"day"}
	for i, c := range groupCols(groupBy) {
		g := "g" + strconv.Itoa(i)
		sel, group = append(sel, c+" AS "+g), append(group, g)
	}
	sel = append(sel, "count() AS n", "min(expires_at) AS expires")
	return b.statement("INSERT INTO " + schema.DayGroupsTable + " (org_id, shape, day, days, run, kind, computed, g0, g1, g2, n, expires)\n" +
		"SELECT " + strings.Join(sel, ", ") + "\n" + from + "\n" + joinWhere(conds) + "\nGROUP BY " + strings.Join(group, ", "))
}

// DayRunRows compiles what the count under run wrote for org's shape in
// blocks of days days starting in [from, to), per block: day (Date: its
// first day), rows (UInt64: its group rows), expires (DateTime64(3): the
// earliest expiry among them).
func DayRunRows(org, shape string, run uint64, days int, from, to time.Time) Statement {
	b := newBuilder()
	n := b.named("days", "UInt16", strconv.Itoa(days))
	conds := append(dayConds(b, org, shape, 1, from, to), "days = "+n, "run = "+dayRunSQL(b.named("run", typeUInt64, u64(run)), n))
	return b.statement("SELECT day, count() AS rows, min(expires) AS expires\nFROM " + schema.DayGroupsTable + "\n" +
		joinWhere(conds) + "\nGROUP BY day")
}

// DayMarker is the marker of one block of a count.
type DayMarker struct {
	Day     time.Time // its first day's UTC midnight
	Days    int       // its length
	Mark    time.Time // the block's latest write when it was counted
	Rows    uint64    // the run's group rows of the block
	Expires time.Time // the earliest expiry among the block's events
}

// DayMarkers compiles the markers of the blocks of the count under run:
// written once its rows are, they make the blocks' runs readable (DayRuns).
func DayMarkers(org, shape string, run uint64, computed time.Time, ms []DayMarker) Statement {
	b := newBuilder()
	head := b.named("org", typeString, org) + ", " + b.named("shape", typeString, shape) + ", "
	tail := ", 0, " + b.named("computed", typeTime, chconn.Time(computed))
	sel := make([]string, len(ms))
	for i, m := range ms {
		sel[i] = "SELECT " + head + b.param("day", typeDay, dayText(m.Day)) + ", " + b.param("days", "UInt16", strconv.Itoa(m.Days)) + ", " +
			b.param("run", typeUInt64, u64(DayRunID(run, Block{m.Day, m.Days}))) + tail + ", " +
			b.param("mark", "DateTime64(6, 'UTC')", m.Mark.UTC().Format("2006-01-02 15:04:05.000000")) + ", " +
			b.param("rows", typeUInt64, u64(m.Rows)) + ", " + b.param("expires", typeTime, chconn.Time(m.Expires))
	}
	return b.statement("INSERT INTO " + schema.DayGroupsTable + " (org_id, shape, day, days, run, kind, computed, mark, rows, expires)\n" +
		strings.Join(sel, "\nUNION ALL\n"))
}

// DayGroupsAggregate compiles, like Aggregate, the figures of org's events
// under f grouped as a asks (DayGroupsFit), at most maxRows rows plus one:
// the group rows of the runs kept for blocks of whole days starting within
// [first, last] (a run per block, see DayRunID), and the events of the live spans (the rest
// of the range) grouped as they are read. It answers as Aggregate does,
// row for row, with one more column: stored (UInt64), whose sum over the
// rows is the number of kept rows read, which the caller checks against
// the runs' markers (AggShape.Stored).
func DayGroupsAggregate(org, shape string, f schema.Filter, a schema.Aggregate, runs []uint64, first, last time.Time,
	live []Span, maxRows int) (Statement, AggShape) {
	b := newBuilder()
	n := len(a.GroupBy)
	var keys, stored, read []string
	cols := groupCols(a.GroupBy)
	for i := range n {
		k := "k" + strconv.Itoa(i)
		keys = append(keys, k)
		stored = append(stored, "g"+strconv.Itoa(i)+" AS "+k)
		read = append(read, cols[i]+" AS "+k)
	}
	var parts []string
	if len(runs) > 0 {
		ids := make([]string, len(runs))
		for i, r := range runs {
			ids[i] = u64(r)
		}
		conds := append(dayConds(b, org, shape, 1, first, last.AddDate(0, 0, 1)), b.in("run", "run", typeUInt64, ids))
		parts = append(parts, "SELECT "+strings.Join(stored, ", ")+", n AS c, 1 AS r\nFROM "+schema.DayGroupsTable+"\n"+joinWhere(conds))
	}
	if len(live) > 0 {
		lf := f
		lf.From, lf.To = time.Time{}, time.Time{}
		conds := append(where(b, org, lf), inSpans(b, live))
		parts = append(parts, "SELECT "+strings.Join(read, ", ")+", count() AS c, 0 AS r\n"+from+"\n"+joinWhere(conds)+
			"\nGROUP BY "+strings.Join(keys, ", "))
	}
	src := "SELECT " + strings.Join(keys, ", ") + ", sum(c) AS c, sum(r) AS r\nFROM (\n  " +
		strings.ReplaceAll(strings.Join(parts, "\nUNION ALL\n"), "\n", "\n  ") + "\n)\nGROUP BY " + strings.Join(keys, ", ")
	metrics := make([]string, len(a.Metrics))
	for i := range a.Metrics {
		metrics[i] = "sum(c) AS m" + strconv.Itoa(i)
	}
	metrics = append(metrics, "sum(r) AS stored")
	var sql string
	if a.Top > 0 {
		sql = rankedSQL(b, src, n, false, metrics, a.Top)
	} else {
		sel := []string{"1 AS is_top"}
		var gs []string
		for i, k := range keys {
			g := "g" + strconv.Itoa(i)
			sel, gs = append(sel, k+" AS "+g), append(gs, g)
		}
		sel = append(append(sel, "sum(c) AS n"), metrics...)
		sql = "SELECT " + strings.Join(sel, ",\n  ") + "\nFROM (\n  " + strings.ReplaceAll(src, "\n", "\n  ") + "\n)\nGROUP BY " + strings.Join(gs, ", ")
	}
	return b.statement(sql + "\n" + aggOrder(b, n, false, maxRows)), AggShape{Groups: a.GroupBy, Metrics: a.Metrics, Stored: true}
}
