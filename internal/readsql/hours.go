package readsql

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// The hour counts: exact numbers of events per UTC hour that a reader
// keeps and uses again while the hour has had no write (schema.HoursTable
// says when each hour of an org was last written). They answer the
// filters that narrow an org's events by time alone.

// TimeOnly reports whether f narrows the org's events by time alone (and
// leaves out the access records, or not: withAccess), which the hour
// counts answer. Any other condition, a viewer's scope included, is not.
func TimeOnly(f schema.Filter) (withAccess, ok bool) {
	if Narrows(f) || len(f.Scope) > 0 {
		return false, false
	}
	if len(f.ExcludeTypes) == 0 {
		return true, true
	}
	ex := slices.Clone(f.ExcludeTypes)
	slices.Sort(ex)
	access := slices.Clone(schema.AccessEventTypes)
	slices.Sort(access)
	return false, slices.Equal(ex, access)
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
	b := newBuilder()
	conds := []string{"org_id = " + b.named("org", typeString, org)}
	if !from.IsZero() {
		conds = append(conds, "hour >= "+b.named("from", typeHour, hourText(from)))
	}
	if !to.IsZero() {
		conds = append(conds, "hour < "+b.named("to", typeHour, hourText(to)))
	}
	sql := "SELECT hour, max(written) AS last, last < now64(6) - toIntervalSecond(" +
		b.named("settle", "UInt32", strconv.Itoa(int(settle.Seconds()))) + ") AS settled, now64(3) AS now\n" +
		"FROM " + schema.HoursTable + "\n" + joinWhere(conds) + "\nGROUP BY hour\nORDER BY hour ASC"
	return b.statement(sql)
}

// Span is a time range [From, To); a zero bound is open.
type Span struct{ From, To time.Time }

// HourPieces compiles the events of org within spans, per UTC hour, as
// Count counts them (FINAL, expired events left out): hour (DateTime),
// events (UInt64), access (UInt64: of them, the store's access records),
// expires (DateTime64(3): the earliest expiry among them), oldest first.
func HourPieces(org string, spans []Span) Statement {
	b := newBuilder()
	conds := []string{
		schema.ColOrgID + " = " + b.named("org", typeString, org),
		schema.NotExpired,
	}
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
			or = nil // one span is all time
			break
		}
		or = append(or, "("+strings.Join(and, " AND ")+")")
	}
	if c := orGroup(or); c != "" {
		conds = append(conds, c)
	}
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
