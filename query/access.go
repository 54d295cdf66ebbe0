package query

import (
	"slices"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// paramIncludeAccess asks for the store's own access records (reads of the
// log), which every list, count and aggregate leaves out by default.
const paramIncludeAccess = "includeAccess"

// access completes f with the caller's fixed scope and, unless the request
// asks for access records (includeAccess=true, or an eventType naming one),
// the condition that leaves them out.
func (p *parser) access(f *schema.Filter) {
	include := false
	if v, ok := p.single(paramIncludeAccess); ok {
		switch v {
		case "true":
			include = true
		case "false":
		default:
			p.bad(paramIncludeAccess, "enum", "must be true or false")
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

// inScope reports whether a stored row lies within a viewer's fixed scope.
func inScope(scope map[schema.Field][]string, r *schema.Row) bool {
	for field, allowed := range scope {
		var v string
		switch field {
		case schema.FieldResourceType:
			v = r.ResourceType
		case schema.FieldResourceID:
			v = r.ResourceID
		case schema.FieldProjectID:
			v = r.ProjectID
		case schema.FieldActorID:
			v = r.ActorID
		default:
			return false
		}
		if !slices.Contains(allowed, v) {
			return false
		}
	}
	return true
}

// scopeConds returns the conditions of f's exclusions and fixed scope.
func scopeConds(b *builder, f schema.Filter) []string {
	var conds []string
	if len(f.ExcludeTypes) > 0 {
		col, _ := schema.FieldEventType.Column()
		ps := make([]string, len(f.ExcludeTypes))
		for i, t := range f.ExcludeTypes {
			ps[i] = b.param("excludeType", typeString, t)
		}
		conds = append(conds, col+" NOT IN ("+strings.Join(ps, ", ")+")")
	}
	for _, field := range schema.MatchFields {
		vs, ok := f.Scope[field]
		col, known := field.Column()
		if !ok || !known {
			continue
		}
		if len(vs) == 0 {
			conds = append(conds, "0") // a scope that allows nothing
			continue
		}
		conds = append(conds, b.in(col, "scope_"+string(field), typeString, vs))
	}
	return conds
}
