package tenant

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// maxTokenBytes bounds the Authorization header we look at.
const maxTokenBytes = 512

// Middleware returns the middleware that resolves the request's bearer
// token once and puts the principal in the request context
// (schema.PrincipalFrom). Failures answer 401 in the error shape.
func (s *Service) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, err := bearer(c.GetHeader("Authorization"))
		if err == nil {
			var p schema.Principal
			if p, err = s.AuthenticateFrom(c.Request.Context(), token, c.ClientIP()); err == nil {
				c.Request = c.Request.WithContext(schema.WithPrincipal(c.Request.Context(), p))
				c.Next()
				return
			}
		}
		if schema.KindOf(err) == schema.KindUnauthenticated {
			c.Header("WWW-Authenticate", `Bearer realm="auditstore"`)
		}
		_ = c.Error(err)
		c.Abort()
	}
}

func bearer(h string) (string, error) {
	if h == "" {
		return "", errNoCredential
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errMalformed
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenBytes {
		return "", errMalformed
	}
	return token, nil
}

// Require returns the middleware that refuses, with 403, a principal
// without perm. It must follow Middleware.
func Require(perm schema.Permission) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := schema.PrincipalFrom(c.Request.Context())
		if !ok {
			_ = c.Error(errNoCredential)
			c.Abort()
			return
		}
		if !p.Can(perm) {
			_ = c.Error(forbidden(p, perm))
			c.Abort()
			return
		}
		c.Next()
	}
}

func forbidden(p schema.Principal, perm schema.Permission) error {
	who := "the admin token (which manages orgs; use an org API key)"
	if !p.Operator {
		who = fmt.Sprintf("a key with role %q", p.Role)
	}
	return &schema.Error{Kind: schema.KindForbidden, Code: "forbidden",
		Message: fmt.Sprintf("%s may not do this (needs %s)", who, perm)}
}

// attribution describes the caller of c for audit events.
func attribution(c *gin.Context) Attribution {
	p, _ := schema.PrincipalFrom(c.Request.Context())
	return Attribution{Attribution: schema.Attribution{Principal: p, IPAddress: c.ClientIP(), UserAgent: c.Request.UserAgent()}}
}

// Routes registers the org and key endpoints on r, which must already run
// Middleware.
func (s *Service) Routes(r gin.IRouter) {
	r.POST("/v1/orgs", Require(schema.PermOperate), s.handleCreateOrg)
	r.GET("/v1/orgs/:org", s.handleGetOrg)
	r.PATCH("/v1/orgs/:org", Require(schema.PermOperate), s.handleUpdateOrg)
	r.POST("/v1/orgs/:org/keys", s.handleCreateKey)
	r.GET("/v1/orgs/:org/keys", s.handleListKeys)
	r.DELETE("/v1/orgs/:org/keys/:key", s.handleRevokeKey)
	s.SettingsRoutes(r)
}

// canManage refuses (403) a principal that may not manage org's keys.
func canManage(c *gin.Context, org string) bool {
	p, _ := schema.PrincipalFrom(c.Request.Context())
	if p.CanManage(org) {
		return true
	}
	_ = c.Error(&schema.Error{Kind: schema.KindForbidden, Code: "forbidden",
		Message: "only the operator or an admin key of this org may manage its keys"})
	return false
}

func (s *Service) handleCreateOrg(c *gin.Context) {
	var req struct {
		ID   string `json:"id"`
		Plan string `json:"plan"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	o, err := s.CreateOrg(c.Request.Context(), attribution(c), req.ID, req.Plan)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusCreated, o)
}

func (s *Service) handleGetOrg(c *gin.Context) {
	org := c.Param("org")
	if !canManage(c, org) {
		return
	}
	o, err := s.Org(c.Request.Context(), org)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if !s.recordRead(c, org, schema.EventOrgRead, &schema.Resource{Type: "org", ID: org}) {
		return
	}
	c.JSON(http.StatusOK, o)
}

// recordRead records a read of org's configuration before it is answered;
// when that fails, the read is refused (503).
func (s *Service) recordRead(c *gin.Context, org, typ string, res *schema.Resource) bool {
	md := map[string]any{"endpoint": c.Request.Method + " " + c.FullPath()}
	if err := s.rec.Record(c.Request.Context(), org, attribution(c).event(typ, res, md)); err != nil {
		s.log.Error("read refused: recording it in the audit log failed", "org", org, "type", typ, "error", err)
		_ = c.Error(schema.ErrAuditUnavailable)
		return false
	}
	return true
}

func (s *Service) handleUpdateOrg(c *gin.Context) {
	var req struct {
		Plan string `json:"plan"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	o, err := s.SetPlan(c.Request.Context(), attribution(c), c.Param("org"), req.Plan)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (s *Service) handleCreateKey(c *gin.Context) {
	org := c.Param("org")
	if !canManage(c, org) {
		return
	}
	var req struct {
		Role string `json:"role"`
		Name string `json:"name"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	k, token, err := s.CreateKey(c.Request.Context(), attribution(c), org, req.Role, req.Name)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusCreated, struct {
		schema.APIKey
		Key string `json:"key"`
	}{k, token})
}

func (s *Service) handleListKeys(c *gin.Context) {
	org := c.Param("org")
	if !canManage(c, org) {
		return
	}
	keys, err := s.Keys(c.Request.Context(), org)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if !s.recordRead(c, org, schema.EventKeyList, &schema.Resource{Type: "org", ID: org}) {
		return
	}
	c.JSON(http.StatusOK, gin.H{"keys": keys})
}

func (s *Service) handleRevokeKey(c *gin.Context) {
	org := c.Param("org")
	if !canManage(c, org) {
		return
	}
	if err := s.RevokeKey(c.Request.Context(), attribution(c), org, c.Param("key")); err != nil {
		_ = c.Error(err)
		return
	}
	c.Status(http.StatusNoContent)
}
