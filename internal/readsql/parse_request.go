package readsql

import (
	"slices"
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// access completes f with the caller's fixed scope and, unless the request
// asks for access records (includeAccess=true, or an eventType naming one),
// the condition that leaves them out.
func (p *Parser) access(f *schema.Filter) {
	include := false
	if v, ok := p.single(ParamIncludeAccess); ok {
		switch v {
		case "true":
			include = true
		case "false":
		default:
			p.bad(ParamIncludeAccess, "enum", "must be true or false")
		}
	}
	if slices.ContainsFunc(f.Match[schema.FieldEventType], schema.IsAccessEventType) {
		include = true
	}
	if !include {
		f.ExcludeTypes = slices.Clone(schema.AccessEventTypes)
	}
	if len(p.scope) > 0 {
		f.Scope = make(map[schema.Field][]string, len(p.scope))
		for k, vs := range p.scope {
			f.Scope[k] = slices.Clone(vs)
		}
	}
}

// intParam reads a whole number within [lo, hi]; def when absent.
func (p *Parser) intParam(name string, def, lo, hi int) int {
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

// Listing reads sort, order, limit, page and cursor. The cursor is returned
// undecoded: its check needs the org and the filter.
func (p *Parser) Listing() (schema.Sort, schema.Page, string) {
	s := schema.DefaultSort()
	if v, ok := p.single(ParamSort); ok {
		if !slices.Contains(schema.SortFields, schema.SortField(v)) {
			p.bad(ParamSort, "enum", "must be timestamp, eventType or actor")
		} else {
			s = schema.Sort{By: schema.SortField(v), Desc: v == string(schema.SortTimestamp)}
		}
	}
	if v, ok := p.single(ParamOrder); ok {
		switch v {
		case "asc", "desc":
			s.Desc = v == "desc"
		default:
			p.bad(ParamOrder, "enum", "must be asc or desc")
		}
	}
	pg := schema.Page{Limit: p.intParam(ParamLimit, schema.DefaultPageLimit, 1, schema.MaxPageLimit)}
	if v, ok := p.single(ParamTotal); ok {
		switch v {
		case "true":
		case "false":
			pg.NoTotal = true
		default:
			p.bad(ParamTotal, "enum", "must be true or false")
		}
	}
	cursor, hasCursor := p.single(ParamCursor)
	if _, hasPage := p.q[ParamPage]; hasPage && hasCursor {
		p.used[ParamPage] = true
		p.bad(ParamPage, "conflict", "give either page or cursor, not both")
		return s, pg, ""
	}
	if hasCursor {
		if cursor == "" || len(cursor) > maxCursorBytes {
			p.bad(ParamCursor, "invalid_cursor", "is not a cursor this server issued")
		}
		return s, pg, cursor
	}
	pg.Number = p.intParam(ParamPage, 1, 1, 1<<30)
	if pg.Offset() > p.cfg.MaxOffset {
		p.bad(ParamPage, "too_deep", "page mode reaches at most %d events deep; use nextCursor to go further", p.cfg.MaxOffset)
		pg.Number = 1
	}
	return s, pg, ""
}

// Aggregate reads groupBy, interval, metrics and top.
func (p *Parser) Aggregate() schema.Aggregate {
	var a schema.Aggregate
	for _, v := range p.values(ParamGroupBy, true) {
		f := schema.Field(v)
		switch {
		case !slices.Contains(schema.GroupFields, f):
			p.bad(ParamGroupBy, "enum", "%q is not one of %s", truncate(v), joinFields(schema.GroupFields))
		case slices.Contains(a.GroupBy, f):
			p.bad(ParamGroupBy, "repeated", "%q is given twice", v)
		default:
			a.GroupBy = append(a.GroupBy, f)
		}
	}
	if len(a.GroupBy) > schema.MaxGroupBy {
		p.bad(ParamGroupBy, "too_many_values", "at most %d fields", schema.MaxGroupBy)
	}
	if v, ok := p.single(ParamInterval); ok {
		if !slices.Contains(schema.Intervals, schema.Interval(v)) {
			p.bad(ParamInterval, "enum", "must be minute, hour, day, week or month")
		} else {
			a.Interval = schema.Interval(v)
		}
	}
	for _, v := range p.values(ParamMetrics, true) {
		m := schema.Metric(v)
		switch {
		case !slices.Contains(schema.Metrics, m):
			p.bad(ParamMetrics, "enum", "%q is not one of count, actors, resources, ips", truncate(v))
		case slices.Contains(a.Metrics, m):
			p.bad(ParamMetrics, "repeated", "%q is given twice", v)
		default:
			a.Metrics = append(a.Metrics, m)
		}
	}
	if len(a.Metrics) == 0 {
		a.Metrics = []schema.Metric{schema.MetricCount}
	}
	a.Top = p.intParam(ParamTop, 0, 1, schema.MaxTop)
	if a.Top > 0 && len(a.GroupBy) == 0 {
		p.bad(ParamTop, "requires", "needs groupBy")
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
