package query

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Selection compiles the filter parameters of a bulk read (the export
// endpoint) for org exactly as GET /v1/events reads them: the FROM clause,
// the WHERE condition (org and expiry included) with its {name:Type}
// parameters, and the read settings that FINAL relies on (see
// readSettings). The parameter values are in the escaped text form in which
// ClickHouse reads a {name:Type} value, over the native protocol and HTTP
// param_ alike (see chconn.Escape): send them as they are. Unknown or bad
// parameters are a *schema.Error naming them.
// It does not record the read: the caller audits it.
func (h *Handler) Selection(ctx context.Context, org string, q url.Values) (source, cond string, params, settings map[string]string, err error) {
	p, err := newParser(q.Encode(), h.cfg)
	if err != nil {
		return "", "", nil, nil, err
	}
	if who, ok := schema.PrincipalFrom(ctx); ok && who.Viewer != nil {
		p.scope = who.Viewer.Scope
	}
	f := p.filter()
	if err := p.err(); err != nil {
		return "", "", nil, nil, err
	}
	b := newBuilder()
	conds := where(b, org, f)
	set, err := h.store.probe(ctx)
	if err != nil {
		return "", "", nil, nil, err
	}
	settings = map[string]string{}
	for k, v := range set {
		if k != "max_execution_time" { // a bulk read lasts as long as it needs
			settings[k] = fmt.Sprint(v)
		}
	}
	params = make(map[string]string, len(b.params))
	for k, v := range b.params {
		params[k] = chconn.Escape(v)
	}
	return strings.TrimPrefix(from, "FROM "), strings.Join(conds, " AND "), params, settings, nil
}
