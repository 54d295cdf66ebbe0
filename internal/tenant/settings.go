package tenant

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// An org's settings: today one, the trace link-out of the web console. The
// org's admin key (or the operator) sets it; any credential of the org,
// viewer sessions included, reads it, since the console is a client of the
// public API.

// TracePlaceholder is where a trace id goes in a trace URL template.
const TracePlaceholder = "{traceId}"

// MaxTraceURLBytes bounds a trace URL template.
const MaxTraceURLBytes = 2048

// Settings are an org's settings as the API shows them.
type Settings struct {
	// TraceURL links a trace id to the org's execution-log tool: the org's
	// own template, else the server's default ("" : none).
	TraceURL string `json:"traceUrl"`
}

func invalidTraceURL(msg string) error {
	return schema.Invalid("invalid_trace_url", "traceUrl: "+msg,
		schema.FieldError{Index: -1, Field: "traceUrl", Code: "invalid", Message: msg})
}

// CheckTraceURL validates a trace URL template: an absolute http(s) URL of
// at most MaxTraceURLBytes, without credentials, spaces or control
// characters, holding TracePlaceholder exactly once after its host (a trace
// id chooses no host). The console puts the trace id in URL-escaped. ""
// (no template) is valid.
func CheckTraceURL(tpl string) error {
	if tpl == "" {
		return nil
	}
	if len(tpl) > MaxTraceURLBytes {
		return invalidTraceURL(fmt.Sprintf("at most %d bytes", MaxTraceURLBytes))
	}
	if !utf8.ValidString(tpl) || strings.ContainsFunc(tpl, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return invalidTraceURL("must be text without spaces or control characters")
	}
	if n := strings.Count(tpl, TracePlaceholder); n != 1 {
		return invalidTraceURL(fmt.Sprintf("must hold %s exactly once (found %d)", TracePlaceholder, n))
	}
	u, err := url.Parse(strings.Replace(tpl, TracePlaceholder, "t", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return invalidTraceURL("must be an absolute http or https URL, e.g. https://logs.example.com/search?trace={traceId}")
	}
	if u.User != nil {
		return invalidTraceURL("must not carry credentials")
	}
	// The authority ends at the first '/', '?' or '#' after "//": the
	// placeholder must come after it.
	rest := tpl[strings.Index(tpl, "//")+2:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 || strings.Index(rest, TracePlaceholder) < end {
		return invalidTraceURL("the trace id must go in the path, query or fragment, not the host")
	}
	return nil
}

// Settings returns org's settings as a console shows them.
func (s *Service) Settings(ctx context.Context, org string) (Settings, error) {
	o, err := s.Org(ctx, org)
	if err != nil {
		return Settings{}, err
	}
	if o.TraceURL != "" {
		return Settings{TraceURL: o.TraceURL}, nil
	}
	return Settings{TraceURL: s.cfg.DefaultTraceURL}, nil
}

// SetTraceURL sets org's trace URL template ("" : back to the server's
// default). The change and its audit record (org.update-settings) are one
// outcome (recordOrUndo).
func (s *Service) SetTraceURL(ctx context.Context, a Attribution, id, tpl string) (schema.Org, error) {
	if err := CheckTraceURL(tpl); err != nil {
		return schema.Org{}, err
	}
	return s.changeOrg(ctx, a, id, "org.update-settings", func(o *schema.Org) map[string]any {
		old := o.TraceURL
		o.TraceURL = tpl
		return map[string]any{"traceUrl": tpl, "previousTraceUrl": old}
	})
}

// freshOrg reads an org from ClickHouse, not the cache: a change of one of
// its fields keeps what another instance wrote to the others.
func (s *Service) freshOrg(ctx context.Context, id string) (schema.Org, error) {
	if err := checkOrgID(id); err != nil {
		return schema.Org{}, schema.NotFound("org_not_found", fmt.Sprintf("no org %q", truncateName(id)))
	}
	m, err := s.store.orgsWhere(ctx, "id = {id:String}", clickhouse.Parameters{"id": id})
	if err != nil {
		return schema.Org{}, err
	}
	o, ok := m[id]
	if !ok {
		return schema.Org{}, schema.NotFound("org_not_found", fmt.Sprintf("no org %q", id))
	}
	return o, nil
}

// SettingsRoutes registers the settings endpoints on r, which must already
// run Middleware.
//
//	GET   /v1/settings            (any key or viewer session of an org) → 200 {"traceUrl"}
//	PATCH /v1/orgs/{org}/settings (the org's admin key, or the operator) {"traceUrl"} → 200 the org
func (s *Service) SettingsRoutes(r gin.IRouter) {
	r.GET("/v1/settings", s.handleGetSettings)
	r.PATCH("/v1/orgs/:org/settings", s.handleSetSettings)
}

func (s *Service) handleGetSettings(c *gin.Context) {
	p, _ := schema.PrincipalFrom(c.Request.Context())
	if p.OrgID == "" {
		_ = c.Error(&schema.Error{Kind: schema.KindForbidden, Code: "forbidden",
			Message: "settings belong to an org: use a key or viewer session of the org"})
		return
	}
	st, err := s.Settings(c.Request.Context(), p.OrgID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, st)
}

func (s *Service) handleSetSettings(c *gin.Context) {
	org := c.Param("org")
	if p, _ := schema.PrincipalFrom(c.Request.Context()); !p.CanManage(org) {
		_ = c.Error(&schema.Error{Kind: schema.KindForbidden, Code: "forbidden",
			Message: "only the operator or an admin key of this org may change its settings"})
		return
	}
	var req struct {
		TraceURL *string `json:"traceUrl"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	if req.TraceURL == nil {
		_ = c.Error(invalidTraceURL(`required: a URL template, or "" for the server's default`))
		return
	}
	o, err := s.SetTraceURL(c.Request.Context(), attribution(c), org, *req.TraceURL)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, o)
}
