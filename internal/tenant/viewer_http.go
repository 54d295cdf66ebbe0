package tenant

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// ViewerRoutes registers the viewer endpoints: the exchange of a viewer
// token for a session on open (the token is the credential, sent in the
// body), the others on api (which runs Middleware).
//
//	POST   /v1/viewer-tokens        (admin key) {"viewerId","ttlSeconds","filters","capabilities"} → 201 {"id","token",...}
//	POST   /v1/viewer-sessions      {"token"} → 201 {"session","expiresAt",...}
//	DELETE /v1/viewer-sessions/{id} (admin key) → 204; the token and its session are refused from then on
func (s *Service) ViewerRoutes(open, api gin.IRouter) {
	open.POST("/v1/viewer-sessions", s.handleExchangeViewer)
	api.POST("/v1/viewer-tokens", Require(schema.PermManageOrg), s.handleCreateViewer)
	api.DELETE("/v1/viewer-sessions/:id", Require(schema.PermManageOrg), s.handleRevokeViewer)
}

func (s *Service) handleCreateViewer(c *gin.Context) {
	p, _ := schema.PrincipalFrom(c.Request.Context())
	var g ViewerGrant
	if err := httpx.BindJSON(c, &g); err != nil {
		_ = c.Error(err)
		return
	}
	v, token, err := s.CreateViewerToken(c.Request.Context(), p.OrgID, g)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusCreated, struct {
		ViewerToken
		Token string `json:"token"`
	}{v, token})
}

func (s *Service) handleExchangeViewer(c *gin.Context) {
	var req struct {
		Token string `json:"token"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	a := schema.Attribution{IPAddress: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	v, session, err := s.ExchangeViewerToken(c.Request.Context(), a, req.Token)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, struct {
		ViewerToken
		Session string `json:"session"`
	}{v, session})
}

func (s *Service) handleRevokeViewer(c *gin.Context) {
	p, _ := schema.PrincipalFrom(c.Request.Context())
	if err := s.RevokeViewer(c.Request.Context(), p.OrgID, c.Param("id")); err != nil {
		_ = c.Error(err)
		return
	}
	c.Status(http.StatusNoContent)
}
