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
	"github.com/auditstore/auditstore/exporter/stream"
	"github.com/auditstore/auditstore/ingest"

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
}

func newRouter(log *slog.Logger, h *health, reg *prometheus.Registry, rt routes) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.NoRoute(httpx.NotFound)
	r.NoMethod(httpx.MethodNotAllowed)
	r.Use(httpx.Recover(log), httpx.Errors(log))
	r.GET("/healthz", h.live)
	r.GET("/readyz", h.ready)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	r.GET("/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openapi.JSON) })

	api := r.Group("", rt.tenants.Middleware())
	rt.tenants.Routes(api)
	rt.pipe.Routes(api, tenant.Require)
	rt.queries.Routes(api)
	rt.exports.Routes(api, tenant.Require)
	rt.streams.Routes(api, tenant.Require)
	return r
}

// health answers the liveness and readiness probes.
type health struct {
	b    *backend
	pipe *ingest.Pipeline
}

func newHealth(b *backend, pipe *ingest.Pipeline) *health { return &health{b: b, pipe: pipe} }

// live answers 200 while the process runs.
func (h *health) live(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// ready answers 200 with the ClickHouse version when ClickHouse answers, and
// 503 with the reasons otherwise (the embedded engine died, a query failed).
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
	if len(reasons) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reasons": reasons})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "clickhouse": gin.H{"version": ver, "embedded": h.b.engine != nil}})
}
