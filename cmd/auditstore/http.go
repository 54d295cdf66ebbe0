package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/auditstore/auditstore/exporter"
	"github.com/auditstore/auditstore/exporter/lake"
	"github.com/auditstore/auditstore/exporter/stream"
	"github.com/auditstore/auditstore/ingest"

	"github.com/auditstore/auditstore/internal/console"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/openapi"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/query"
)

// routes are the feature packages whose endpoints the router serves.
type routes struct {
	tenants *tenant.Service
	pipe    *ingest.Pipeline
	queries *query.Handler
	exports *exporter.Exporter
	streams *stream.Service
	access  access // who sees what of the operations endpoints
	// bodyTimeout and writeTimeout bound reading bodies and writing answers.
	bodyTimeout, writeTimeout time.Duration
	limits                    limits
	lakes                     *lake.Service
	console                   *console.Handler // nil when the console is off
}

func newRouter(log *slog.Logger, h *health, reg *prometheus.Registry, rt routes) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// The client address of audit records is the connection's, unless it
	// comes through a proxy the operator trusts (-trusted-proxies).
	if err := r.SetTrustedProxies(rt.access.trustedProxies); err != nil {
		panic(err) // validated by parseSecurity
	}
	r.HandleMethodNotAllowed = true
	r.NoRoute(httpx.NotFound)
	r.NoMethod(httpx.MethodNotAllowed)
	r.Use(httpx.Recover(log), httpx.Errors(log), httpx.Deadlines(rt.bodyTimeout, rt.writeTimeout))
	r.GET("/healthz", h.live)
	r.GET("/readyz", h.ready)
	if rt.access.metricsOnMain {
		r.GET("/metrics", rt.access.metricsAuth, gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	}

	if rt.console != nil {
		for _, p := range rt.console.Paths() {
			r.GET(p, gin.WrapH(rt.console))
			r.HEAD(p, gin.WrapH(rt.console))
		}
	}
	r.GET("/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openapi.JSON) })

	api := r.Group("", rt.tenants.Middleware())
	rt.tenants.Routes(api)
	rt.tenants.ViewerRoutes(r, api)
	rt.pipe.Routes(api, tenant.Require)
	// Reads are limited per org: a query beyond waits up to 2 s for one of
	// its org's to finish (a page firing a few reads at once gets them all
	// answered), then 429; an export beyond is answered 429 at once.
	rt.queries.Routes(api.Group("", tenant.OrgLimit("too_many_queries", "queries", rt.limits.MaxQueries, 2*time.Second, time.Second)), tenant.Require)
	rt.exports.Routes(api.Group("", tenant.OrgLimit("too_many_exports", "exports", rt.limits.MaxExports, 0, 5*time.Second)), tenant.Require)
	rt.streams.Routes(api, tenant.Require)
	rt.lakes.Routes(api)
	return r
}

// health answers the liveness and readiness probes.
type health struct {
	b        *backend
	pipe     *ingest.Pipeline
	operator string // the operator token: it alone sees the reasons
}

func newHealth(b *backend, pipe *ingest.Pipeline, operator string) *health {
	return &health{b: b, pipe: pipe, operator: operator}
}

// live answers 200 while the process runs.
func (h *health) live(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// ready answers 200 when ClickHouse answers ("degraded" when the pipeline
// needs the operator, e.g. a quarantine), and 503 otherwise. Anyone learns
// only that status; the operator token (Authorization: Bearer) also gets
// the ClickHouse version, the reasons (the embedded engine died, a query
// failed, the write-ahead log cannot write) and the warnings, whose text
// may name internal addresses.
func (h *health) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	var reasons []string
	if e := h.b.engine; e != nil {
		if err := e.Err(); err != nil {
			reasons = append(reasons, err.Error())
		}
	}
	reasons = append(reasons, h.pipe.Health()...)
	var ver string
	if h.b.engine == nil || h.b.engine.Err() == nil {
		if err := h.b.conn.QueryRow(ctx, "SELECT version()").Scan(&ver); err != nil {
			reasons = append(reasons, fmt.Sprintf("clickhouse does not answer: %v", err))
		}
	}
	if !bearer(c, h.operator) {
		switch {
		case len(reasons) > 0:
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
		case len(h.pipe.Degraded()) > 0:
			c.JSON(http.StatusOK, gin.H{"status": "degraded"})
		default:
			c.JSON(http.StatusOK, gin.H{"status": "ready"})
		}
		return
	}
	if len(reasons) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reasons": reasons})
		return
	}
	ch := gin.H{"version": ver, "embedded": h.b.engine != nil}
	if warnings := h.pipe.Degraded(); len(warnings) > 0 {
		// Serving, but something needs the operator (the quarantine).
		c.JSON(http.StatusOK, gin.H{"status": "degraded", "warnings": warnings, "clickhouse": ch})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "clickhouse": ch})
}
