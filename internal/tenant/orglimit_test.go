package tenant

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/testkit"
	"github.com/auditstore/auditstore/schema"
)

// TestOrgLimit: an org running its most requests at once gets 429 with
// Retry-After and a code; another org is not affected.
func TestOrgLimit(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	entered, release := make(chan struct{}), make(chan struct{})
	r.Use(httpx.Errors(testkit.Quiet()), func(c *gin.Context) {
		p := schema.Principal{OrgID: c.GetHeader("X-Org"), Role: schema.RoleRead}
		c.Request = c.Request.WithContext(schema.WithPrincipal(c.Request.Context(), p))
	}, OrgLimit("too_many_queries", "queries", 2, 0, 3*time.Second))
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

// TestOrgLimitWaits: with a wait, a request beyond an org's limit waits
// for one of its org's to finish and is then served; at most max of an
// org's requests wait, the next is answered 429 at once; a waiter whose
// wait ends in vain is answered 429; another org is not affected.
func TestOrgLimitWaits(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	l := newOrgLimiter(2, time.Minute)
	r := gin.New()
	entered, release := make(chan struct{}), make(chan struct{})
	r.Use(httpx.Errors(testkit.Quiet()), func(c *gin.Context) {
		p := schema.Principal{OrgID: c.GetHeader("X-Org"), Role: schema.RoleRead}
		c.Request = c.Request.WithContext(schema.WithPrincipal(c.Request.Context(), p))
	}, l.handler("too_many_queries", "queries", 3*time.Second))
	r.GET("/q", func(c *gin.Context) {
		if c.GetHeader("X-Block") != "" {
			entered <- struct{}{}
			<-release
		}
		c.Status(http.StatusOK)
	})
	get := func(org string, block bool) int {
		req := httptest.NewRequest("GET", "/q", nil)
		req.Header.Set("X-Org", org)
		if block {
			req.Header.Set("X-Block", "1")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); get("a", true) }()
		<-entered
	}
	// Two more of org a wait (they will block too, once in).
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- get("a", true) }()
	}
	for l.waiters("a") != 2 {
		time.Sleep(time.Millisecond)
	}
	if code := get("a", false); code != http.StatusTooManyRequests {
		t.Fatalf("fifth request of org a, with 2 running and 2 waiting: %d, want 429 at once", code)
	}
	if code := get("b", false); code != http.StatusOK {
		t.Fatalf("org b while a is at its limit: %d", code)
	}
	// Each running request that ends lets a waiter in.
	release <- struct{}{}
	<-entered
	release <- struct{}{}
	<-entered
	if n := l.waiters("a"); n != 0 {
		t.Fatalf("waiters after two requests ended: %d, want 0", n)
	}
	close(release)
	wg.Wait()
	for range 2 {
		if code := <-codes; code != http.StatusOK {
			t.Fatalf("waiting request of org a: %d, want 200", code)
		}
	}
	if len(l.orgs) != 0 {
		t.Fatalf("entries left after all requests ended: %d", len(l.orgs))
	}

	// A wait that ends in vain takes no slot and leaves no waiter.
	short := newOrgLimiter(1, 20*time.Millisecond)
	short.orgs["a"] = &orgSlots{sem: make(chan struct{}, 1), refs: 1}
	short.orgs["a"].sem <- struct{}{}
	if short.acquire(t.Context(), "a") {
		t.Fatal("acquired a slot held for good")
	}
	if short.orgs["a"].refs != 1 || short.orgs["a"].waiting != 0 {
		t.Fatalf("after a vain wait: refs=%d waiting=%d, want 1, 0", short.orgs["a"].refs, short.orgs["a"].waiting)
	}
}
