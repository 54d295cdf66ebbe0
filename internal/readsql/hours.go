package readsql

import (
	"crypto/sha256"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// The hour counts: exact numbers of events per UTC hour under a filter
// that a reader keeps and uses again while the hour has had no write
// (schema.HoursTable says when each hour of an org was last written).

// HourFilter splits f for the hour counts: rest holds its conditions
// besides time (a viewer's scope included), which key the counts, and
// withAccess says whether the store's access records are counted (the
// counts keep them apart, so one count serves both). ok is false when f
// leaves out other event types than the access records'.
func HourFilter(f schema.Filter) (rest schema.Filter, withAccess, ok bool) {
	rest = f
	rest.From, rest.To, rest.ExcludeTypes = time.Time{}, time.Time{}, nil
	if len(f.ExcludeTypes) == 0 {
		return rest, true, true
	}
	ex := slices.Clone(f.ExcludeTypes)
	slices.Sort(ex)
	access := slices.Clone(schema.AccessEventTypes)
	slices.Sort(access)
	return rest, false, slices.Equal(ex, access)
}

// TimeOnly reports whether f narrows the org's events by time alone (and
// leaves out the access records, or not).
func TimeOnly(f schema.Filter) bool {
	_, _, ok := HourFilter(f)
	return ok && !Narrows(f) && len(f.Scope) == 0
}

// FilterKey returns a digest of f's conditions as compiled (SQL,
// parameters and arrays, each length-prefixed, so that no value can pass
// for another split of the same text): two filters share it only when they
// compile to the same conditions, and so select the same events of an org.
func FilterKey(f schema.Filter) [sha256.Size]byte {
	st := Count("", f)
	h := sha256.New()
	put := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s)) + ":"))
		h.Write([]byte(s))
	}
	put(st.SQL)
	for _, n := range slices.Sorted(maps.Keys(st.Params)) {
		put(n)
		put(st.Params[n])
	}
	for _, n := range slices.Sorted(maps.Keys(st.Arrays)) {
		put(n)
		put(strconv.Itoa(len(st.Arrays[n])))
		for _, v := range st.Arrays[n] {
			put(v)
		}
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// Narrows reports whether f has a condition on the events besides time,
// the access records' exclusion and a viewer's scope.
func Narrows(f schema.Filter) bool {
	return len(f.Match)+len(f.EmailPrefixes)+len(f.EmailContains)+len(f.IPs)+len(f.IPRanges)+len(f.Metadata) > 0
}

// HourMarks compiles when each hour of org's events in [from, to) (whole
// hours; a zero bound is open) was last written, one row per hour written at least once,
// oldest first: hour (DateTime), last (DateTime64(6): the latest write),
// settled (UInt8: the latest write is older than settle by the server's
// clock, so its events are visible), now (DateTime64(3): the server's
// clock).
func HourMarks(org string, from, to time.Time, settle time.Duration) Statement {
	return marks(org, "hour", "hour", from, to, settle)
}

// marks compiles the latest write of each period of org's events in [from,
// to) (a zero bound is open): sel selects the period from the hour of
// HoursTable, named as group.
func marks(org, sel, group string, from, to time.Time, settle time.Duration) Statement {
	b := newBuilder()
	conds := []string{"org_id = " + b.named("org", typeString, org)}
	if !from.IsZero() {
		conds = append(conds, "hour >= "+b.named("from", typeHour, hourText(from)))
	}
	if !to.IsZero() {
		conds = append(conds, "hour < "+b.named("to", typeHour, hourText(to)))
	}
	sql := "SELECT " + sel + ", max(written) AS last, last < now64(6) - toIntervalSecond(" +
		b.named("settle", "UInt32", strconv.Itoa(int(settle.Seconds()))) + ") AS settled, now64(3) AS now\n" +
		"FROM " + schema.HoursTable + "\n" + joinWhere(conds) + "\nGROUP BY " + group + "\nORDER BY " + group + " ASC"
	return b.statement(sql)
}

// Span is a time range [From, To); a zero bound is open.
type Span struct{ From, To time.Time }

// AppendSpan appends s to spans (in time order), extending the last span
// instead when s starts where it ends.
func AppendSpan(spans []Span, s Span) []Span {
	if n := len(spans); n > 0 && spans[n-1].To.Equal(s.From) {
		spans[n-1].To = s.To
		return spans
	}
	return append(spans, s)
}

// HourPieces compiles the events of org under rest (conditions besides
// time, see HourFilter) within spans, per UTC hour, as Count counts them
// (FINAL, expired events left out): hour (DateTime), events (UInt64),
// access (UInt64: of them, the store's access records), expires
// (DateTime64(3): the earliest expiry among them), oldest first.
func HourPieces(org string, rest schema.Filter, spans []Span) Statement {
	b := newBuilder()
	conds := spansWhere(b, org, rest, spans)
	col, _ := schema.FieldEventType.Column()
	sql := "SELECT toStartOfHour(timestamp) AS hour, count() AS events, countIf(" +
		b.in(col, "access", typeString, schema.AccessEventTypes) + ") AS access, min(expires_at) AS expires\n" +
		from + "\n" + joinWhere(conds) + "\nGROUP BY hour\nORDER BY hour ASC"
	return b.statement(sql)
}

// typeHour is the type of HoursTable's hour.
const typeHour = "DateTime('UTC')"

// hourText renders t, truncated to its hour, as a DateTime parameter.
func hourText(t time.Time) string { return t.UTC().Truncate(time.Hour).Format("2006-01-02 15:04:05") }

// HourTypePieces compiles, like HourPieces, the events of org under rest
// within spans per UTC hour and event type: hour (DateTime), event_type
// (String), events (UInt64), last (DateTime64(3): the latest event's
// time), expires (DateTime64(3): the earliest expiry among them), oldest
// hour first, at most maxRows rows plus one (so that the caller can tell
// that there were more). The event-type catalog adds them up.
func HourTypePieces(org string, rest schema.Filter, spans []Span, maxRows int) Statement {
	b := newBuilder()
	conds := spansWhere(b, org, rest, spans)
	col, _ := schema.FieldEventType.Column()
	sql := "SELECT toStartOfHour(timestamp) AS hour, " + col + ", count() AS events, max(timestamp) AS last, min(expires_at) AS expires\n" +
		from + "\n" + joinWhere(conds) + "\nGROUP BY hour, " + col + "\nORDER BY hour ASC" +
		"\nLIMIT " + b.named("limit", "UInt32", strconv.Itoa(maxRows+1))
	return b.statement(sql)
}

// spansWhere returns the conditions of org's events under rest (its time
// range and exclusions left out) within spans.
func spansWhere(b *builder, org string, rest schema.Filter, spans []Span) []string {
	rest.From, rest.To, rest.ExcludeTypes = time.Time{}, time.Time{}, nil
	conds := where(b, org, rest)
	if c := inSpans(b, spans); c != "" {
		conds = append(conds, c)
	}
	return conds
}

// inSpans returns the condition that the timestamp lies in one of spans,
// "" when one of them is all time.
func inSpans(b *builder, spans []Span) string {
	var or []string
	for _, s := range spans {
		var and []string
		if !s.From.IsZero() {
			and = append(and, schema.ColTimestamp+" >= "+b.param("from", typeTime, chconn.Time(s.From)))
		}
		if !s.To.IsZero() {
			and = append(and, schema.ColTimestamp+" < "+b.param("to", typeTime, chconn.Time(s.To)))
		}
		if len(and) == 0 {
			return "" // one span is all time
		}
		or = append(or, "("+strings.Join(and, " AND ")+")")
	}
	return orGroup(or)
}
