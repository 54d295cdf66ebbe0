package stream

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// Routes registers the stream endpoints on r, which must already
// authenticate; require (tenant.Require) admits principals holding a
// permission: every endpoint needs org:manage (an org's admin key). The org
// is always the caller's: another org's stream answers 404.
//
//	POST   /v1/streams           create          → 201 the stream
//	GET    /v1/streams           list            → 200 {"streams": [...]}
//	GET    /v1/streams/{id}      one, with status
//	PATCH  /v1/streams/{id}      change (name, config, filter, paused)
//	DELETE /v1/streams/{id}      delete          → 204
//	POST   /v1/streams/{id}/test send one sample event → 200 {"ok", "status", "answer", "error", "durationMs"}
func (s *Service) Routes(r gin.IRouter, require func(schema.Permission) gin.HandlerFunc) {
	g := r.Group("/v1/streams", require(schema.PermManageOrg))
	g.POST("", s.handleCreate)
	g.GET("", s.handleList)
	g.GET("/:id", s.handleGet)
	g.PATCH("/:id", s.handleUpdate)
	g.DELETE("/:id", s.handleDelete)
	g.POST("/:id/test", s.handleTest)
}

// caller returns the caller's org and attribution; ok is false (and the
// error attached) when there is no org principal.
func caller(c *gin.Context) (string, schema.Attribution, bool) {
	p, ok := schema.PrincipalFrom(c.Request.Context())
	if !ok || p.OrgID == "" {
		_ = c.Error(schema.NewError(schema.KindForbidden, "forbidden", "streams belong to an org: use an admin key of the org"))
		return "", schema.Attribution{}, false
	}
	return p.OrgID, schema.Attribution{Principal: p, IPAddress: c.ClientIP(), UserAgent: c.Request.UserAgent()}, true
}

func (s *Service) handleCreate(c *gin.Context) {
	org, a, ok := caller(c)
	if !ok {
		return
	}
	var req CreateRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	st, err := s.Create(c.Request.Context(), a, org, req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusCreated, st)
}

func (s *Service) handleList(c *gin.Context) {
	org, a, ok := caller(c)
	if !ok {
		return
	}
	sts, err := s.List(c.Request.Context(), org)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if !s.recordRead(c, a, org, schema.EventStreamList, nil) {
		return
	}
	c.JSON(http.StatusOK, gin.H{"streams": sts})
}

func (s *Service) handleGet(c *gin.Context) {
	org, a, ok := caller(c)
	if !ok {
		return
	}
	st, err := s.Get(c.Request.Context(), org, c.Param("id"))
	if err != nil {
		_ = c.Error(err)
		return
	}
	if !s.recordRead(c, a, org, schema.EventStreamRead, &schema.Resource{Type: "stream", ID: st.ID, Name: st.Name}) {
		return
	}
	c.JSON(http.StatusOK, st)
}

// recordRead records a read of org's streams before it is answered; when
// that fails, the read is refused (503).
func (s *Service) recordRead(c *gin.Context, a schema.Attribution, org, typ string, res *schema.Resource) bool {
	md := map[string]any{"endpoint": c.Request.Method + " " + c.FullPath()}
	if err := s.rec.Record(c.Request.Context(), org, a.Event(typ, res, md, s.now())); err != nil {
		s.log.Error("read refused: recording it in the audit log failed", "org", org, "type", typ, "error", err)
		_ = c.Error(schema.ErrAuditUnavailable)
		return false
	}
	return true
}

func (s *Service) handleUpdate(c *gin.Context) {
	org, a, ok := caller(c)
	if !ok {
		return
	}
	var req UpdateRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	st, err := s.Update(c.Request.Context(), a, org, c.Param("id"), req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *Service) handleDelete(c *gin.Context) {
	org, a, ok := caller(c)
	if !ok {
		return
	}
	if err := s.Delete(c.Request.Context(), a, org, c.Param("id")); err != nil {
		_ = c.Error(err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Service) handleTest(c *gin.Context) {
	org, a, ok := caller(c)
	if !ok {
		return
	}
	res, err := s.Test(c.Request.Context(), a, org, c.Param("id"))
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, res)
}
