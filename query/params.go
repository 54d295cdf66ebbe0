package query

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditstore/auditstore/schema"
)

// The query parameters, besides the filters named after schema's fields and
// metadata.<key>.
const (
	paramEmailPrefix   = "actorEmailPrefix"
	paramEmailContains = "actorEmailContains"
	paramFrom          = "from"
	paramTo            = "to"
	paramSort          = "sort"
	paramOrder         = "order"
	paramLimit         = "limit"
	paramPage          = "page"
	paramCursor        = "cursor"
	paramGroupBy       = "groupBy"
	paramInterval      = "interval"
	paramMetrics       = "metrics"
	paramTop           = "top"
	metadataPrefix     = "metadata."
)

// Bounds of what a request may ask; values beyond them are 400s.
const (
	maxErrors       = 20
	maxMetadataKeys = 20
	maxCursorBytes  = 2048
	minYear         = 1970
	maxYear         = 2299 // the end of DateTime64's range
)

// enumerated fields hold names that cannot contain a comma: a comma always
// separates values. The other (free-form) fields may hold commas, so a value
// with commas matches as a whole and as its parts.
var enumerated = map[schema.Field]bool{
	schema.FieldEventType: true, schema.FieldActorType: true,
	schema.FieldUserAgentType: true, schema.FieldResourceType: true,
}

// parser reads the query parameters of one request; problems accumulate
// and err reports them all, naming each parameter.
type parser struct {
	q     url.Values
	cfg   Config
	scope map[schema.Field][]string // the caller's fixed scope (a viewer's)
	used  map[string]bool
	errs  []schema.FieldError
}

// newParser parses a raw query string.
func newParser(raw string, cfg Config) (*parser, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, schema.Invalid("invalid_parameter", "the query string is malformed: use key=value pairs joined by '&', percent-encoded",
			schema.FieldError{Index: -1, Field: "", Code: "format", Message: "malformed query string"})
	}
	return &parser{q: q, cfg: cfg, used: map[string]bool{}}, nil
}

func (p *parser) bad(param, code, format string, args ...any) {
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, schema.FieldError{Index: -1, Field: safeName(param), Code: code, Message: fmt.Sprintf(format, args...)})
	}
}

// safeName bounds a client-chosen parameter name for an error message.
func safeName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// values returns all values of a parameter, split at commas when split.
func (p *parser) values(name string, split bool) []string {
	raw, ok := p.q[name]
	if !ok {
		return nil
	}
	p.used[name] = true
	var out []string
	for _, v := range raw {
		if split {
			out = append(out, strings.Split(v, ",")...)
		} else {
			out = append(out, v)
		}
	}
	if len(out) > p.cfg.MaxValues {
		p.bad(name, "too_many_values", "at most %d values", p.cfg.MaxValues)
		return nil
	}
	return out
}

// single returns the one value of a parameter; ok is false when absent or
// given more than once (a problem recorded).
func (p *parser) single(name string) (string, bool) {
	raw, ok := p.q[name]
	if !ok {
		return "", false
	}
	p.used[name] = true
	if len(raw) != 1 {
		p.bad(name, "repeated", "may be given only once")
		return "", false
	}
	return raw[0], true
}

// text checks a free-form value: non-empty, bounded, UTF-8; ctl says
// whether control characters may occur (they do in metadata, never in ids).
func (p *parser) text(name, v string, max int, ctl bool) bool {
	switch {
	case v == "":
		p.bad(name, "required", "must not be empty")
	case len(v) > max:
		p.bad(name, "too_long", "must be at most %d bytes, got %d", max, len(v))
	case !utf8.ValidString(v):
		p.bad(name, "utf8", "must be valid UTF-8")
	case !ctl && hasControl(v):
		p.bad(name, "pattern", "must not contain control characters")
	default:
		return true
	}
	return false
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) })
}

// filter reads the filter parameters. pathFields are set by the endpoint's
// path and refused as parameters.
func (p *parser) filter(pathFields ...schema.Field) schema.Filter {
	var f schema.Filter
	for _, field := range schema.MatchFields {
		name := string(field)
		if slices.Contains(pathFields, field) {
			if _, ok := p.q[name]; ok {
				p.used[name] = true
				p.bad(name, "set_by_path", "is given by the path of this endpoint")
			}
			continue
		}
		p.matchValues(&f, field)
	}
	for _, v := range p.values(paramEmailPrefix, false) {
		if p.text(paramEmailPrefix, v, schema.MaxEmailBytes, false) {
			f.EmailPrefixes = append(f.EmailPrefixes, asciiLower(v))
		}
	}
	for _, v := range p.values(paramEmailContains, false) {
		if p.text(paramEmailContains, v, schema.MaxEmailBytes, false) {
			f.EmailContains = append(f.EmailContains, asciiLower(v))
		}
	}
	p.ipValues(&f)
	f.From = p.time(paramFrom)
	f.To = p.time(paramTo)
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		p.bad(paramTo, "range", "must be after from")
	}
	p.metadata(&f)
	p.access(&f)
	f.Normalize()
	return f
}

func (p *parser) matchValues(f *schema.Filter, field schema.Field) {
	name := string(field)
	raw := p.values(name, false)
	for _, whole := range raw {
		parts := strings.Split(whole, ",")
		if !enumerated[field] && len(parts) > 1 {
			parts = append(parts, whole)
		}
		for _, v := range parts {
			if v == "" && len(parts) > 1 && !enumerated[field] {
				continue // "a," is the value "a" (and "a," itself)
			}
			if p.matchValue(name, field, v) {
				f.Add(field, v)
			}
		}
	}
	if n := len(f.Match[field]); n > p.cfg.MaxValues {
		p.bad(name, "too_many_values", "at most %d values", p.cfg.MaxValues)
		delete(f.Match, field)
	}
}

func (p *parser) matchValue(name string, field schema.Field, v string) bool {
	switch field {
	case schema.FieldEventType, schema.FieldResourceType:
		if !schema.ValidEventType(v) {
			p.bad(name, "pattern", "%q must match %s", truncate(v), schema.EventTypePattern)
			return false
		}
	case schema.FieldActorType:
		if !slices.Contains(schema.ActorTypes, v) {
			p.bad(name, "enum", "%q is not one of %s", truncate(v), strings.Join(schema.ActorTypes, ", "))
			return false
		}
	case schema.FieldUserAgentType:
		if !schema.UserAgentTypePattern.MatchString(v) {
			p.bad(name, "pattern", "%q must match %s", truncate(v), schema.UserAgentTypePattern)
			return false
		}
	case schema.FieldActorEmail:
		return p.text(name, v, schema.MaxEmailBytes, false)
	default:
		return p.text(name, v, p.cfg.MaxValueBytes, false)
	}
	return true
}

// truncate bounds a client value quoted in an error message.
func truncate(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func (p *parser) ipValues(f *schema.Filter) {
	name := string(schema.FieldIPAddress)
	for _, v := range p.values(name, true) {
		if strings.Contains(v, "/") {
			pfx, err := netip.ParsePrefix(v)
			if err != nil || pfx.Addr().Zone() != "" {
				p.bad(name, "ip_range", "%q is not an IPv4 or IPv6 range in CIDR form (e.g. 10.0.0.0/8)", truncate(v))
				continue
			}
			f.IPRanges = append(f.IPRanges, schema.NormalizePrefix(pfx))
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			p.bad(name, "ip_address", "%q is not an IPv4 or IPv6 address without zone, nor a CIDR range", truncate(v))
			continue
		}
		f.IPs = append(f.IPs, a.Unmap())
	}
}

func (p *parser) time(name string) time.Time {
	v, ok := p.single(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		p.bad(name, "timestamp_format", "must be an RFC 3339 time, e.g. 2026-05-01T00:00:00Z")
		return time.Time{}
	}
	if y := t.UTC().Year(); y < minYear || y > maxYear {
		p.bad(name, "range", "must be between the years %d and %d", minYear, maxYear)
		return time.Time{}
	}
	return t.UTC()
}

func (p *parser) metadata(f *schema.Filter) {
	var names []string
	for name := range p.q {
		if strings.HasPrefix(name, metadataPrefix) || name == "metadata" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > maxMetadataKeys {
		for _, n := range names {
			p.used[n] = true
		}
		p.bad(names[maxMetadataKeys], "too_many_values", "at most %d metadata filters", maxMetadataKeys)
		return
	}
	for _, name := range names {
		key := strings.TrimPrefix(name, metadataPrefix)
		vals := p.values(name, false)
		if name == "metadata" || !schema.MetadataKeyPattern.MatchString(key) {
			p.bad(name, "pattern", "metadata filters are metadata.<key>=<value> with a key matching %s", schema.MetadataKeyPattern)
			continue
		}
		m := schema.MetadataMatch{Path: strings.Split(key, ".")}
		for _, v := range vals {
			// An empty value is meaningful here: it matches the empty string.
			if v == "" || p.text(name, v, p.cfg.MaxValueBytes, true) {
				m.Values = append(m.Values, v)
			}
		}
		if len(m.Values) > 0 {
			f.Metadata = append(f.Metadata, m)
		}
	}
}

// intParam reads a whole number within [lo, hi]; def when absent.
func (p *parser) intParam(name string, def, lo, hi int) int {
	v, ok := p.single(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.bad(name, "range", "must be a whole number from %d to %d", lo, hi)
		return def
	}
	return n
}

// listing reads sort, order, limit, page and cursor. The cursor is returned
// undecoded: its check needs the org and the filter.
func (p *parser) listing() (schema.Sort, schema.Page, string) {
	s := schema.DefaultSort()
	if v, ok := p.single(paramSort); ok {
		if !slices.Contains(schema.SortFields, schema.SortField(v)) {
			p.bad(paramSort, "enum", "must be timestamp, eventType or actor")
		} else {
			s = schema.Sort{By: schema.SortField(v), Desc: v == string(schema.SortTimestamp)}
		}
	}
	if v, ok := p.single(paramOrder); ok {
		switch v {
		case "asc", "desc":
			s.Desc = v == "desc"
		default:
			p.bad(paramOrder, "enum", "must be asc or desc")
		}
	}
	pg := schema.Page{Limit: p.intParam(paramLimit, schema.DefaultPageLimit, 1, schema.MaxPageLimit)}
	cursor, hasCursor := p.single(paramCursor)
	if _, hasPage := p.q[paramPage]; hasPage && hasCursor {
		p.used[paramPage] = true
		p.bad(paramPage, "conflict", "give either page or cursor, not both")
		return s, pg, ""
	}
	if hasCursor {
		if cursor == "" || len(cursor) > maxCursorBytes {
			p.bad(paramCursor, "invalid_cursor", "is not a cursor this server issued")
		}
		return s, pg, cursor
	}
	pg.Number = p.intParam(paramPage, 1, 1, 1<<30)
	if pg.Offset() > p.cfg.MaxOffset {
		p.bad(paramPage, "too_deep", "page mode reaches at most %d events deep; use nextCursor to go further", p.cfg.MaxOffset)
		pg.Number = 1
	}
	return s, pg, ""
}

// aggregate reads groupBy, interval, metrics and top.
func (p *parser) aggregate() schema.Aggregate {
	var a schema.Aggregate
	for _, v := range p.values(paramGroupBy, true) {
		f := schema.Field(v)
		switch {
		case !slices.Contains(schema.GroupFields, f):
			p.bad(paramGroupBy, "enum", "%q is not one of %s", truncate(v), joinFields(schema.GroupFields))
		case slices.Contains(a.GroupBy, f):
			p.bad(paramGroupBy, "repeated", "%q is given twice", v)
		default:
			a.GroupBy = append(a.GroupBy, f)
		}
	}
	if len(a.GroupBy) > schema.MaxGroupBy {
		p.bad(paramGroupBy, "too_many_values", "at most %d fields", schema.MaxGroupBy)
	}
	if v, ok := p.single(paramInterval); ok {
		if !slices.Contains(schema.Intervals, schema.Interval(v)) {
			p.bad(paramInterval, "enum", "must be minute, hour, day, week or month")
		} else {
			a.Interval = schema.Interval(v)
		}
	}
	for _, v := range p.values(paramMetrics, true) {
		m := schema.Metric(v)
		switch {
		case !slices.Contains(schema.Metrics, m):
			p.bad(paramMetrics, "enum", "%q is not one of count, actors, resources, ips", truncate(v))
		case slices.Contains(a.Metrics, m):
			p.bad(paramMetrics, "repeated", "%q is given twice", v)
		default:
			a.Metrics = append(a.Metrics, m)
		}
	}
	if len(a.Metrics) == 0 {
		a.Metrics = []schema.Metric{schema.MetricCount}
	}
	a.Top = p.intParam(paramTop, 0, 1, schema.MaxTop)
	if a.Top > 0 && len(a.GroupBy) == 0 {
		p.bad(paramTop, "requires", "needs groupBy")
	}
	return a
}

func joinFields(fs []schema.Field) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// err reports every problem found and every parameter the endpoint does
// not take, or nil.
func (p *parser) err() error {
	invalid := len(p.errs)
	var unknown []string
	for name := range p.q {
		if !p.used[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		p.bad(name, "unknown_parameter", "is not a parameter of this endpoint")
	}
	switch {
	case len(p.errs) == 0:
		return nil
	case invalid == 0:
		return schema.Invalid("unknown_parameter", fmt.Sprintf("unknown query parameter %q", p.errs[0].Field), p.errs...)
	case len(p.errs) == 1:
		return schema.Invalid("invalid_parameter", fmt.Sprintf("query parameter %q: %s", p.errs[0].Field, p.errs[0].Message), p.errs...)
	default:
		return schema.Invalid("invalid_parameter", fmt.Sprintf("%d query parameters are invalid, the first %q: %s",
			len(p.errs), p.errs[0].Field, p.errs[0].Message), p.errs...)
	}
}
