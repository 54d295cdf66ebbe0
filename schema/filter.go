package schema

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Field names an attribute of a stored event as the query API spells it:
// in filter parameters, sort keys and aggregate groups.
type Field string

// The fields of the query API.
const (
	FieldEventType     Field = "eventType"
	FieldActorType     Field = "actorType"
	FieldActorID       Field = "actorId"
	FieldActorEmail    Field = "actorEmail"
	FieldIPAddress     Field = "ipAddress"
	FieldUserAgentType Field = "userAgentType"
	FieldProjectID     Field = "projectId"
	FieldResourceType  Field = "resourceType"
	FieldResourceID    Field = "resourceId"
	FieldTraceID       Field = "traceId"
)

// KeysTable holds one row per event and key (a resource, an actor), sorted
// by org, key and time: the timelines' access path (sql/0003_query.sql).
const KeysTable = "events_by_key"

// The key kinds of KeysTable.
const (
	KeyResource = "resource" // key: resource type + "/" + resource id
	KeyActor    = "actor"    // key: actor id
)

// Columns of EventsTable that readers name directly.
const (
	ColOrgID         = "org_id"
	ColTimestamp     = "timestamp"
	ColID            = "id"
	ColEventMetadata = "event_metadata"
	// ColMetadataHashes holds a hash of each scalar leaf of event_metadata
	// at depth 1 or 2 (see sql/0007_events_monthly.sql), up to
	// MetadataHashDepth.
	ColMetadataHashes = "metadata_hashes"
	ColExpiresAt      = "expires_at"
)

// fieldColumns is the allow-list of the query API: the only column names
// a query compiler may put in SQL text for a field.
var fieldColumns = map[Field]string{
	FieldEventType:     "event_type",
	FieldActorType:     "actor_type",
	FieldActorID:       "actor_id",
	FieldActorEmail:    "actor_email",
	FieldIPAddress:     "ip_address",
	FieldUserAgentType: "user_agent_type",
	FieldProjectID:     "project_id",
	FieldResourceType:  "resource_type",
	FieldResourceID:    "resource_id",
	FieldTraceID:       "trace_id",
}

// Column returns the column of EventsTable that holds f; ok is false for a
// name outside the allow-list.
func (f Field) Column() (col string, ok bool) {
	col, ok = fieldColumns[f]
	return col, ok
}

// MatchFields are the fields a Filter matches by value, in the order
// compilers emit their conditions.
var MatchFields = []Field{
	FieldEventType, FieldActorType, FieldActorID, FieldActorEmail, FieldUserAgentType,
	FieldProjectID, FieldResourceType, FieldResourceID, FieldTraceID,
}

// GroupFields are the fields an Aggregate may group by.
var GroupFields = []Field{
	FieldEventType, FieldActorType, FieldActorID, FieldActorEmail, FieldUserAgentType,
	FieldProjectID, FieldResourceType, FieldIPAddress,
}

// MetadataKeyPattern is what a metadata filter key must match: one to eight
// names of 1-64 letters, digits, '_' or '-', separated by dots; each dot
// goes one level deeper into event.metadata ("a.b" is {"a": {"b": ...}}),
// so a key that itself contains a dot cannot be addressed.
var MetadataKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$`)

// MetadataMatch selects events whose event.metadata holds, at Path, one of
// Values. A JSON string matches a value equal to it; a JSON number matches a
// value that parses as the same number (3 matches "3", "3.0" and "3e0");
// true and false match "true" and "false"; null, objects and arrays match
// nothing.
type MetadataMatch struct {
	Path   []string
	Values []string
}

// MetadataHashDepth is the deepest metadata path ColMetadataHashes covers.
const MetadataHashDepth = 2

// Key returns the dotted form of the path, as the parameter names it.
func (m MetadataMatch) Key() string { return strings.Join(m.Path, ".") }

// Filter selects events of one org. Conditions on different fields combine
// with AND; the values given for one field combine with OR. A nil or empty
// list does not restrict. The org is not part of a Filter: it always comes
// from the caller's credential.
type Filter struct {
	// Match holds, per field of MatchFields, the values the field may equal.
	Match map[Field][]string
	// EmailPrefixes and EmailContains match actor emails case-insensitively
	// for ASCII letters (other characters exactly): the email starts with,
	// or contains, one of them. They are stored lowercased.
	EmailPrefixes []string
	EmailContains []string
	// IPs and IPRanges match the client address: equal to one of IPs, or
	// within one of IPRanges. An IPv4 range matches IPv4 addresses only, an
	// IPv6 range IPv6 addresses only (IPv4-mapped ranges are unmapped).
	IPs      []netip.Addr
	IPRanges []netip.Prefix
	// From (inclusive) and To (exclusive) bound the event timestamp; zero
	// means unbounded. Timestamps are stored in milliseconds: Normalize
	// rounds both up to the next millisecond, which keeps the meaning.
	From, To time.Time
	// Metadata conditions all hold (AND across keys).
	Metadata []MetadataMatch
	// ExcludeTypes are event types left out (the access records, unless a
	// request asks for them).
	ExcludeTypes []string
	// Scope holds the fixed conditions of the caller's credential (a
	// viewer's, see Viewer): per field, the values allowed, AND-ed with
	// Match.
	Scope map[Field][]string
}

// Add appends values to the Match list of f.
func (f *Filter) Add(field Field, values ...string) {
	if f.Match == nil {
		f.Match = map[Field][]string{}
	}
	f.Match[field] = append(f.Match[field], values...)
}

// Normalize puts f in canonical form: value lists sorted without
// duplicates, metadata conditions merged per key and sorted, ranges masked,
// times in UTC rounded up to the millisecond. Two filters that select the
// same events by the same conditions normalize to equal values.
func (f *Filter) Normalize() {
	for k, vs := range f.Match {
		if len(vs) == 0 {
			delete(f.Match, k)
			continue
		}
		f.Match[k] = sortedSet(vs)
	}
	f.ExcludeTypes = sortedSet(f.ExcludeTypes)
	for k, vs := range f.Scope {
		f.Scope[k] = sortedSet(vs)
	}
	f.EmailPrefixes = sortedSet(f.EmailPrefixes)
	f.EmailContains = sortedSet(f.EmailContains)
	for i, a := range f.IPs {
		f.IPs[i] = a.Unmap()
	}
	slices.SortFunc(f.IPs, netip.Addr.Compare)
	f.IPs = slices.Compact(f.IPs)
	for i, p := range f.IPRanges {
		f.IPRanges[i] = NormalizePrefix(p)
	}
	slices.SortFunc(f.IPRanges, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	f.IPRanges = slices.Compact(f.IPRanges)
	f.From, f.To = ceilMilli(f.From), ceilMilli(f.To)
	byKey := map[string]int{}
	var md []MetadataMatch
	for _, m := range f.Metadata {
		if i, ok := byKey[m.Key()]; ok {
			md[i].Values = append(md[i].Values, m.Values...)
			continue
		}
		byKey[m.Key()] = len(md)
		md = append(md, MetadataMatch{Path: slices.Clone(m.Path), Values: slices.Clone(m.Values)})
	}
	for i := range md {
		md[i].Values = sortedSet(md[i].Values)
	}
	slices.SortFunc(md, func(a, b MetadataMatch) int { return strings.Compare(a.Key(), b.Key()) })
	f.Metadata = md
}

// NormalizePrefix masks p and turns an IPv4-mapped IPv6 range of at least
// 96 bits into the IPv4 range it covers, since stored addresses are unmapped.
func NormalizePrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

func sortedSet(vs []string) []string {
	if len(vs) == 0 {
		return nil
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return slices.Compact(vs)
}

func ceilMilli(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	t = t.UTC()
	if r := t.Truncate(time.Millisecond); !r.Equal(t) {
		return r.Add(time.Millisecond)
	}
	return t
}

// SortField is what a list of events is ordered by.
type SortField string

// The sort fields. Sorting by actor orders by actor id.
const (
	SortTimestamp SortField = "timestamp"
	SortEventType SortField = "eventType"
	SortActor     SortField = "actor"
)

// SortFields lists the valid sort fields.
var SortFields = []SortField{SortTimestamp, SortEventType, SortActor}

// Sort orders a list of events. The order is total: ties are broken by
// timestamp and then id (both descending, or both ascending when sorting by
// timestamp ascending), so that pages never overlap or skip.
type Sort struct {
	By   SortField
	Desc bool
}

// DefaultSort is newest first.
func DefaultSort() Sort { return Sort{By: SortTimestamp, Desc: true} }

// SortKey is one term of the total order of a Sort.
type SortKey struct {
	Column string
	Desc   bool
}

// Keys returns the ORDER BY terms of s; the first is the sort field
// itself, the last is always the event id.
func (s Sort) Keys() []SortKey {
	switch s.By {
	case SortEventType:
		return []SortKey{{fieldColumns[FieldEventType], s.Desc}, {ColTimestamp, true}, {ColID, true}}
	case SortActor:
		return []SortKey{{fieldColumns[FieldActorID], s.Desc}, {ColTimestamp, true}, {ColID, true}}
	default:
		return []SortKey{{ColTimestamp, s.Desc}, {ColID, s.Desc}}
	}
}

// Position is the place of one event in a Sort: its sort value (the event
// type or actor id; empty when sorting by timestamp), timestamp and id.
type Position struct {
	Value     string
	Timestamp time.Time
	ID        uuid.UUID
}

// Paging limits.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 1000
)

// Page selects a window of a sorted list: the page Number (1-based) of
// Limit events, or, with After set, the Limit events that follow After
// (keyset paging, stable while events arrive).
type Page struct {
	Limit  int
	Number int
	After  *Position
	// NoTotal: the caller does not need the total of page mode (it asks
	// for it apart, or not at all); a reader may then leave it out where
	// that saves a scan of the whole range.
	NoTotal bool
}

// Offset is the number of events before the page in page mode.
func (p Page) Offset() int {
	if p.After != nil || p.Number < 1 {
		return 0
	}
	return (p.Number - 1) * p.Limit
}

// Interval is the width of the time buckets of an Aggregate; "" for none.
// Buckets start at the UTC minute, hour, day, Monday or first of the month.
type Interval string

// The intervals.
const (
	IntervalNone   Interval = ""
	IntervalMinute Interval = "minute"
	IntervalHour   Interval = "hour"
	IntervalDay    Interval = "day"
	IntervalWeek   Interval = "week"
	IntervalMonth  Interval = "month"
)

// Intervals lists the valid intervals.
var Intervals = []Interval{IntervalMinute, IntervalHour, IntervalDay, IntervalWeek, IntervalMonth}

var intervalBuckets = map[Interval]string{
	IntervalMinute: "toStartOfMinute(timestamp)",
	IntervalHour:   "toStartOfHour(timestamp)",
	IntervalDay:    "toStartOfDay(timestamp)",
	IntervalWeek:   "toMonday(timestamp)",
	IntervalMonth:  "toStartOfMonth(timestamp)",
}

// Bucket returns the SQL expression (UTC DateTime) of the bucket start of an
// event for iv; ok is false for IntervalNone or an unknown interval.
func (iv Interval) Bucket() (expr string, ok bool) {
	e, ok := intervalBuckets[iv]
	if !ok {
		return "", false
	}
	return "toDateTime(" + e + ", 'UTC')", true
}

// Metric is a figure computed per aggregate group. The distinct counts are
// exact and ignore empty values.
type Metric string

// The metrics.
const (
	MetricCount     Metric = "count"     // events
	MetricActors    Metric = "actors"    // distinct actor ids
	MetricResources Metric = "resources" // distinct (resource type, resource id)
	MetricIPs       Metric = "ips"       // distinct client addresses
)

// Metrics lists the valid metrics.
var Metrics = []Metric{MetricCount, MetricActors, MetricResources, MetricIPs}

// metricFuncs are the aggregate function and arguments of each metric.
var metricFuncs = map[Metric][2]string{
	MetricCount:     {"count", ""},
	MetricActors:    {"uniqExactIf", "actor_id, actor_id != ''"},
	MetricResources: {"uniqExactIf", "resource_type, resource_id, resource_id != ''"},
	MetricIPs:       {"uniqExactIf", "ip_address, ip_address != ''"},
}

// Expr returns the SQL aggregate expression of m; ok is false for an
// unknown metric.
func (m Metric) Expr() (expr string, ok bool) {
	f, ok := metricFuncs[m]
	return f[0] + "(" + f[1] + ")", ok
}

// Func returns the aggregate function of m and its arguments, for
// compilers that combine partial states (fn+"State(args)", then
// fn+"Merge(state)"); ok is false for an unknown metric.
func (m Metric) Func() (fn, args string, ok bool) {
	f, ok := metricFuncs[m]
	return f[0], f[1], ok
}

// Aggregate limits.
const (
	MaxGroupBy = 3
	MaxTop     = 1000
)

// Aggregate asks for figures per group of events: events are grouped by
// the values of GroupBy (up to MaxGroupBy fields) and, when Interval is
// set, by time bucket. With Top > 0 only the Top groups with the most
// events over the whole range are kept (ties broken by group values), and
// all others are folded into one "other" group.
type Aggregate struct {
	GroupBy  []Field
	Interval Interval
	Metrics  []Metric
	Top      int
}
