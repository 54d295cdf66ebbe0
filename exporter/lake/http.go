package lake

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// Routes registers the data-lake endpoints on r, which must already
// authenticate. An org's admin key (org:manage) manages its org's
// destinations; the operator token manages the destinations that receive
// every org. Each sees only its own: another scope's destination answers 404.
//
//	POST   /v1/lake/destinations                 create      → 201 the destination
//	GET    /v1/lake/destinations                 list        → 200 {"destinations": [...]}
//	GET    /v1/lake/destinations/{id}            one, with status
//	PATCH  /v1/lake/destinations/{id}            change (name, target, paused)
//	DELETE /v1/lake/destinations/{id}            delete      → 204
//	POST   /v1/lake/destinations/{id}/backfills  deliver a time range's older events → 202 the backfill
//	GET    /v1/lake/destinations/{id}/backfills  list        → 200 {"backfills": [...]}
func (s *Service) Routes(r gin.IRouter) {
	g := r.Group("/v1/lake/destinations", authorize)
	g.POST("", s.handleCreate)
	g.GET("", s.handleList)
	g.GET("/:id", s.handleGet)
	g.PATCH("/:id", s.handleUpdate)
	g.DELETE("/:id", s.handleDelete)
	g.POST("/:id/backfills", s.handleBackfill)
	g.GET("/:id/backfills", s.handleBackfills)
}

// authorize admits the operator and principals holding org:manage.
func authorize(c *gin.Context) {
	p, ok := schema.PrincipalFrom(c.Request.Context())
	if ok && (p.Operator || (p.OrgID != "" && p.Can(schema.PermManageOrg))) {
		c.Next()
		return
	}
	_ = c.Error(schema.NewError(schema.KindForbidden, "forbidden",
		"data-lake destinations are managed with an org's admin key, or the operator token for every org's"))
	c.Abort()
}

// caller returns the caller's scope ("" for the operator) and attribution.
func caller(c *gin.Context) (string, schema.Attribution) {
	p, _ := schema.PrincipalFrom(c.Request.Context())
	org := p.OrgID
	if p.Operator {
		org = ""
	}
	return org, schema.Attribution{Principal: p, IPAddress: c.ClientIP(), UserAgent: c.Request.UserAgent()}
}

func (s *Service) handleCreate(c *gin.Context) {
	org, a := caller(c)
	var req CreateRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	d, err := s.Create(c.Request.Context(), a, org, req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusCreated, d)
}

func (s *Service) handleList(c *gin.Context) {
	org, _ := caller(c)
	ds, err := s.List(c.Request.Context(), org)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"destinations": ds})
}

func (s *Service) handleGet(c *gin.Context) {
	org, _ := caller(c)
	d, err := s.Get(c.Request.Context(), org, c.Param("id"))
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, d)
}

func (s *Service) handleUpdate(c *gin.Context) {
	org, a := caller(c)
	var req UpdateRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	d, err := s.Update(c.Request.Context(), a, org, c.Param("id"), req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, d)
}

func (s *Service) handleDelete(c *gin.Context) {
	org, a := caller(c)
	if err := s.Delete(c.Request.Context(), a, org, c.Param("id")); err != nil {
		_ = c.Error(err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Service) handleBackfill(c *gin.Context) {
	org, a := caller(c)
	var req BackfillRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	b, err := s.Backfill(c.Request.Context(), a, org, c.Param("id"), req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusAccepted, b)
}

func (s *Service) handleBackfills(c *gin.Context) {
	org, _ := caller(c)
	bs, err := s.Backfills(c.Request.Context(), org, c.Param("id"))
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"backfills": bs})
}
