package tenant

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// TestOrgLimit: an org running its most requests at once gets 429 with
// Retry-After and a code; another org is not affected.
func TestOrgLimit(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	entered, release := make(chan struct{}), make(chan struct{})
	r.Use(httpx.Errors(slog.New(slog.NewTextHandler(io.Discard, nil))), func(c *gin.Context) {
		p := schema.Principal{OrgID: c.GetHeader("X-Org"), Role: schema.RoleRead}
		c.Request = c.Request.WithContext(schema.WithPrincipal(c.Request.Context(), p))
	}, OrgLimit("too_many_queries", "queries", 2, 3*time.Second))
	r.GET("/q", func(c *gin.Context) {
		if c.GetHeader("X-Block") != "" {
			entered <- struct{}{}
			<-release
		}
		c.Status(http.StatusOK)
	})
	get := func(org string, block bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/q", nil)
		req.Header.Set("X-Org", org)
		if block {
			req.Header.Set("X-Block", "1")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); get("a", true) }()
		<-entered
	}
	w := get("a", false)
	var body httpx.ErrorBody
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3" || body.Error.Code != "too_many_queries" {
		t.Fatalf("third request of org a: %d Retry-After=%q %s, want 429, 3, too_many_queries", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := get("b", false); w.Code != http.StatusOK {
		t.Fatalf("org b while a is at its limit: %d", w.Code)
	}
	close(release)
	wg.Wait()
	if w := get("a", false); w.Code != http.StatusOK {
		t.Fatalf("org a after its requests ended: %d", w.Code)
	}
}
