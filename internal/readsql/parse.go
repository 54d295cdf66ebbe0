package readsql

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditstore/auditstore/schema"
)

// The query parameters, besides the filters named after schema's fields and
// metadata.<key>.
const (
	ParamEmailPrefix   = "actorEmailPrefix"
	ParamEmailContains = "actorEmailContains"
	ParamFrom          = "from"
	ParamTo            = "to"
	ParamSort          = "sort"
	ParamOrder         = "order"
	ParamLimit         = "limit"
	ParamPage          = "page"
	ParamCursor        = "cursor"
	// ParamTotal = false: page mode may answer without the total (null),
	// for a caller that asks for it apart (the console draws the newest
	// page before its total over a large range).
	ParamTotal    = "total"
	ParamGroupBy  = "groupBy"
	ParamInterval = "interval"
	ParamMetrics  = "metrics"
	ParamTop      = "top"
	// ParamIncludeAccess asks for the store's own access records (reads of
	// the log), which every list, count, aggregate and export leaves out by
	// default.
	ParamIncludeAccess = "includeAccess"
	metadataPrefix     = "metadata."
)

// Limits bound what a request may ask; values beyond them are 400s.
type Limits struct {
	// MaxValueBytes bounds each filter value. Default 16 KiB, the longest
	// string event metadata may hold.
	MaxValueBytes int
	// MaxValues bounds the values of one filter parameter. Default 100.
	MaxValues int
	// MaxOffset bounds page mode: (page-1)*limit may not exceed it.
	// Default 100,000.
	MaxOffset int
}

// DefaultLimits returns the defaults.
func DefaultLimits() Limits {
	return Limits{MaxValueBytes: 16 << 10, MaxValues: 100, MaxOffset: 100_000}
}

// Validate reports limits that cannot work.
func (l Limits) Validate() error {
	if l.MaxValueBytes <= 0 || l.MaxValues <= 0 || l.MaxOffset < 0 {
		return errors.New("readsql: max value bytes and max values must be positive, max offset not negative")
	}
	return nil
}

// ParseFilter reads the filter parameters of q (every parameter of a list
// but the paging ones; an export's), completed with a viewer's fixed
// scope (nil for none) and the exclusion of access records. Unknown or bad
// parameters are one *schema.Error naming each of them. It is the one
// reading of a filter: query's endpoints go through the same Parser.
func ParseFilter(q url.Values, lim Limits, scope map[schema.Field][]string) (schema.Filter, error) {
	p := NewParserValues(q, lim)
	p.SetScope(scope)
	f := p.Filter()
	return f, p.Err()
}

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

// Parser reads the query parameters of one request; problems accumulate
// and Err reports them all, naming each parameter.
type Parser struct {
	q     url.Values
	cfg   Limits
	scope map[schema.Field][]string // the caller's fixed scope (a viewer's)
	used  map[string]bool
	errs  []schema.FieldError
}

// NewParser parses a raw query string.
func NewParser(raw string, lim Limits) (*Parser, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, schema.Invalid("invalid_parameter", "the query string is malformed: use key=value pairs joined by '&', percent-encoded",
			schema.FieldError{Index: -1, Field: "", Code: "format", Message: "malformed query string"})
	}
	return NewParserValues(q, lim), nil
}

// NewParserValues reads parsed query parameters.
func NewParserValues(q url.Values, lim Limits) *Parser {
	return &Parser{q: q, cfg: lim, used: map[string]bool{}}
}

// SetScope sets the caller's fixed scope (a viewer's), which Filter adds
// to every filter; nil for none.
func (p *Parser) SetScope(scope map[schema.Field][]string) { p.scope = scope }

// Values returns the query parameters.
func (p *Parser) Values() url.Values { return p.q }

// OK reports whether no problem was found so far.
func (p *Parser) OK() bool { return len(p.errs) == 0 }

// Bad records a problem with parameter param.
func (p *Parser) Bad(param, code, format string, args ...any) { p.bad(param, code, format, args...) }

func (p *Parser) bad(param, code, format string, args ...any) {
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
func (p *Parser) values(name string, split bool) []string {
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
func (p *Parser) single(name string) (string, bool) {
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
func (p *Parser) text(name, v string, max int, ctl bool) bool {
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

// Filter reads the filter parameters. pathFields are set by the endpoint's
// path and refused as parameters.
func (p *Parser) Filter(pathFields ...schema.Field) schema.Filter {
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
	for _, v := range p.values(ParamEmailPrefix, false) {
		if p.text(ParamEmailPrefix, v, schema.MaxEmailBytes, false) {
			f.EmailPrefixes = append(f.EmailPrefixes, asciiLower(v))
		}
	}
	for _, v := range p.values(ParamEmailContains, false) {
		if p.text(ParamEmailContains, v, schema.MaxEmailBytes, false) {
			f.EmailContains = append(f.EmailContains, asciiLower(v))
		}
	}
	p.ipValues(&f)
	f.From = p.time(ParamFrom)
	f.To = p.time(ParamTo)
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		p.bad(ParamTo, "range", "must be after from")
	}
	p.metadata(&f)
	p.access(&f)
	f.Normalize()
	return f
}

func (p *Parser) matchValues(f *schema.Filter, field schema.Field) {
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

// MatchValue checks a value of field (given as parameter or path segment
// name) like the filter parameter of field, recording a problem if bad.
func (p *Parser) MatchValue(name string, field schema.Field, v string) bool {
	return p.matchValue(name, field, v)
}

func (p *Parser) matchValue(name string, field schema.Field, v string) bool {
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

func (p *Parser) ipValues(f *schema.Filter) {
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

func (p *Parser) time(name string) time.Time {
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

func (p *Parser) metadata(f *schema.Filter) {
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

// Err reports every problem found and every parameter the endpoint does
// not take, or nil.
func (p *Parser) Err() error {
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
