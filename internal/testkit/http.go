package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// The headers Router reads the caller's principal from, in place of a
// credential: X-Test-Org and X-Test-Role name an org key's org and role;
// X-Test-Operator: 1 makes the caller the operator.
const (
	HeaderOrg      = "X-Test-Org"
	HeaderRole     = "X-Test-Role"
	HeaderOperator = "X-Test-Operator"
)

// Router returns a gin engine with the error middleware and a principal
// taken from the test headers (key id "key-1").
func Router(log *slog.Logger) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.Errors(log), func(c *gin.Context) {
		p := schema.Principal{OrgID: c.GetHeader(HeaderOrg), Role: schema.Role(c.GetHeader(HeaderRole)), KeyID: "key-1"}
		if c.GetHeader(HeaderOperator) == "1" {
			p = schema.Principal{Operator: true}
		}
		c.Request = c.Request.WithContext(schema.WithPrincipal(c.Request.Context(), p))
	})
	return r
}

// Do calls h with body as JSON (none when nil), as an admin key of org, or
// as the operator when org is "operator". It returns the status, the JSON
// answer (nil when not an object) and the raw body.
//
// A GET that fails with 500 because the shared embedded engine aborted
// under it (chDB does, now and then) is asked again once the engine is
// back, at most twice, and the test log says so: a read changes nothing,
// and the test is about the handler, not the engine's defect.
func Do(tb testing.TB, h http.Handler, org, method, path string, body any) (int, map[string]any, string) {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		before := chtest.Restarts()
		code, out, raw := do(tb, h, org, method, path, body)
		if code != http.StatusInternalServerError || method != http.MethodGet || attempt == 3 || !chtest.DiedSince(before) {
			return code, out, raw
		}
		tb.Logf("GET %s: 500 while the embedded engine died and restarted; asking again", path)
	}
}

func do(tb testing.TB, h http.Handler, org, method, path string, body any) (int, map[string]any, string) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if org == "operator" {
		req.Header.Set(HeaderOperator, "1")
	} else {
		req.Header.Set(HeaderOrg, org)
		req.Header.Set(HeaderRole, "admin")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out, w.Body.String()
}

// Background runs run until the returned stop is called (also at the end
// of the test); stop returns once run has.
func Background(tb testing.TB, run func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	tb.Cleanup(stop)
	return stop
}
