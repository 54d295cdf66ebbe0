package query

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// Recorder durably records an audit event of an org (each read is one);
// an error means it was not recorded and the read is refused.
type Recorder interface {
	Record(ctx context.Context, org string, e schema.Event) error
}

// Guard admits only principals holding a permission (the tenant
// middleware's Require, wired in cmd).
type Guard func(schema.Permission) gin.HandlerFunc

// Handler serves the query endpoints: it binds a request, parses it with
// readsql, has the Reader run it, and answers.
type Handler struct {
	read *Reader
	rec  Recorder
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
}

// New returns the handler of the query endpoints, reading events through
// conn and recording each query as an audit-log.query event of the org
// through rec.
func New(conn Conn, rec Recorder, cfg Config, log *slog.Logger) (*Handler, error) {
	if conn == nil || rec == nil || log == nil {
		return nil, errors.New("query: conn, recorder and logger are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := cfg.CursorKey
	if len(key) == 0 {
		key = make([]byte, MinCursorKeyBytes)
		_, _ = rand.Read(key) // never fails (crypto/rand)
		log.Info("query: no cursor key configured; cursors will not survive a restart nor work across instances")
	}
	return &Handler{read: NewReader(conn, cfg, key), rec: rec, cfg: cfg, log: log, now: time.Now}, nil
}

// Routes registers the query endpoints on r, which must already run the
// tenant middleware; each needs the events:read permission, checked by
// require.
func (h *Handler) Routes(r gin.IRouter, require Guard) {
	g := r.Group("", require(schema.PermReadEvents))
	g.GET("/v1/events", h.listEvents)
	g.GET("/v1/events/:id", h.getEvent)
	g.GET("/v1/resources/:type/:id/events", h.resourceEvents)
	g.GET("/v1/traces/:traceId/events", h.traceEvents)
	g.GET("/v1/event-types", h.eventTypes)
	g.GET("/v1/aggregates", h.aggregates)
	g.POST("/v1/read-sessions", h.startSession)
}

func randRead(b []byte) { _, _ = rand.Read(b) } // never fails (crypto/rand)

// request is what every handler starts from: the caller and the parsed
// query string.
type request struct {
	c    *gin.Context
	who  schema.Principal
	p    *readsql.Parser
	path map[string]string // path parameters, for the audit event
}

func (h *Handler) begin(c *gin.Context) (*request, bool) {
	who, _ := schema.PrincipalFrom(c.Request.Context())
	p, err := readsql.NewParser(c.Request.URL.RawQuery, h.cfg.limits())
	if err != nil {
		_ = c.Error(err)
		return nil, false
	}
	if who.Viewer != nil {
		p.SetScope(who.Viewer.Scope)
	}
	return &request{c: c, who: who, p: p, path: map[string]string{}}, true
}

// pathValue checks a path parameter like the filter parameter of field.
func (r *request) pathValue(name string, field schema.Field) string {
	v := r.c.Param(name)
	r.path[name] = v
	if !r.p.MatchValue(name, field, v) {
		return ""
	}
	return v
}

func (h *Handler) listEvents(c *gin.Context) {
	r, ok := h.begin(c)
	if !ok {
		return
	}
	h.list(r, r.p.Filter())
}

func (h *Handler) resourceEvents(c *gin.Context) {
	r, ok := h.begin(c)
	if !ok {
		return
	}
	typ := r.pathValue("type", schema.FieldResourceType)
	id := r.pathValue("id", schema.FieldResourceID)
	f := r.p.Filter(schema.FieldResourceType, schema.FieldResourceID)
	f.Add(schema.FieldResourceType, typ)
	f.Add(schema.FieldResourceID, id)
	f.Normalize()
	h.list(r, f)
}

func (h *Handler) traceEvents(c *gin.Context) {
	r, ok := h.begin(c)
	if !ok {
		return
	}
	trace := r.pathValue("traceId", schema.FieldTraceID)
	f := r.p.Filter(schema.FieldTraceID)
	f.Add(schema.FieldTraceID, trace)
	f.Normalize()
	h.list(r, f)
}

// ListResponse is the body of the list endpoints. Page mode fills Total,
// Page and Pages; cursor mode leaves them null. NextCursor is null on the
// last page.
type ListResponse struct {
	Events     []schema.StoredEvent `json:"events"`
	Total      *uint64              `json:"total"`
	Page       *int                 `json:"page"`
	Pages      *uint64              `json:"pages"`
	NextCursor *string              `json:"nextCursor"`
	// Truncated is true on a page cut short by the server's page byte
	// bound (MaxPageBytes): the rest follows from NextCursor.
	Truncated bool `json:"truncated,omitempty"`
}

func (h *Handler) list(r *request, f schema.Filter) {
	s, pg, cursor := r.p.Listing()
	bind := binding(r.who.OrgID, f, s)
	if cursor != "" && r.p.OK() {
		pos, err := h.read.cursors.decode(bind, cursor)
		if err != nil {
			_ = r.c.Error(err)
			return
		}
		pg.After = &pos
	}
	if !h.ready(r) {
		return
	}
	res, err := h.read.Page(r.c.Request.Context(), r.who.OrgID, f, s, pg, bind)
	answer(r.c, res, err)
}

// answer writes res, or hands err to the error middleware.
func answer(c *gin.Context, res any, err error) {
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (h *Handler) getEvent(c *gin.Context) {
	r, ok := h.begin(c)
	if !ok {
		return
	}
	id := c.Param("id")
	r.path["id"] = id
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		r.p.Bad("id", "uuid", "must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
	}
	if !h.ready(r) {
		return
	}
	var scope map[schema.Field][]string
	if r.who.Viewer != nil {
		scope = r.who.Viewer.Scope
	}
	ev, err := h.read.Event(c.Request.Context(), r.who.OrgID, u.String(), scope)
	answer(c, ev, err)
}

func (h *Handler) eventTypes(c *gin.Context) {
	r, ok := h.begin(c)
	if !ok {
		return
	}
	f := r.p.Filter()
	if !h.ready(r) {
		return
	}
	types, truncated, err := h.read.EventTypes(c.Request.Context(), r.who.OrgID, f)
	answer(c, gin.H{"eventTypes": types, "truncated": truncated}, err)
}

func (h *Handler) aggregates(c *gin.Context) {
	r, ok := h.begin(c)
	if !ok {
		return
	}
	f := r.p.Filter()
	a := r.p.Aggregate()
	if !h.ready(r) {
		return
	}
	groups, err := h.read.Aggregate(c.Request.Context(), r.who.OrgID, f, a)
	answer(c, gin.H{"groups": groups}, err)
}
