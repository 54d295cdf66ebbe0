package query

import (
	"net/url"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// ready reports the parameter problems, then records the query in the
// org's audit log: a query that cannot be recorded is not run.
func (h *Handler) ready(r *request) bool {
	if err := r.p.Err(); err != nil {
		_ = r.c.Error(err)
		return false
	}
	if h.inSession(r) {
		return true
	}
	md := map[string]any{"endpoint": r.c.Request.Method + " " + r.c.FullPath()}
	if len(r.path) > 0 {
		md["path"] = r.path
	}
	if q := r.p.Values(); len(q) > 0 {
		md["params"] = auditParams(q)
	}
	a := schema.Attribution{Principal: r.who, IPAddress: r.c.ClientIP(), UserAgent: r.c.Request.UserAgent()}
	if err := h.rec.Record(r.c.Request.Context(), r.who.OrgID, a.Event(schema.EventQuery, nil, md, h.now())); err != nil {
		h.log.Error("query refused: recording it in the audit log failed",
			"org", r.who.OrgID, "endpoint", md["endpoint"], "error", err)
		_ = r.c.Error(errAuditUnavailable)
		return false
	}
	return true
}

var errAuditUnavailable = schema.Unavailable("audit_unavailable",
	"the query could not be recorded in the audit log, so it was not run; retry later")

// Bounds of the parameters copied into an audit event.
const (
	auditValueBytes = 256
	auditValues     = 20
)

func auditParams(q url.Values) map[string][]string {
	out := make(map[string][]string, len(q))
	for k, vs := range q {
		if len(vs) > auditValues {
			vs = vs[:auditValues]
		}
		cp := make([]string, len(vs))
		for i, v := range vs {
			if len(v) > auditValueBytes {
				v = v[:auditValueBytes] + "…"
			}
			cp[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
		out[k] = cp
	}
	return out
}
