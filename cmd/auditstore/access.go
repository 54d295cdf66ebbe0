package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// access says who may see the operations endpoints, and which proxies
// the router believes.
type access struct {
	trustedProxies []string // nil: none
	metricsOnMain  bool     // /metrics on -listen (no -metrics-listen)
	metricsToken   string   // required on -listen (the operator token unless -metrics-token)
}

func newAccess(cfg config, operator string) access {
	a := access{trustedProxies: cfg.Security.TrustedProxies, metricsOnMain: cfg.Security.MetricsListen == "",
		metricsToken: cfg.Security.MetricsToken}
	if a.metricsToken == "" {
		a.metricsToken = operator
	}
	return a
}

// metricsAuth admits a request bearing the metrics token.
func (a access) metricsAuth(c *gin.Context) {
	if !bearer(c, a.metricsToken) {
		c.Header("WWW-Authenticate", `Bearer realm="auditstore metrics"`)
		_ = c.Error(schema.NewError(schema.KindUnauthenticated, "unauthorized", "/metrics needs the metrics token (or the operator token): Authorization: Bearer <token>"))
		c.Abort()
	}
}

// bearer reports whether the request carries token (constant time).
func bearer(c *gin.Context, token string) bool {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// serveMetrics serves /metrics alone on its own address (-metrics-listen),
// with the metrics token if one is set, until stop is called.
func serveMetrics(cfg config, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", cfg.Security.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", cfg.Security.MetricsListen, err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.NoRoute(httpx.NotFound)
	r.Use(httpx.Recover(log), httpx.Errors(log))
	h := []gin.HandlerFunc{gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))}
	if t := cfg.Security.MetricsToken; t != "" {
		h = append([]gin.HandlerFunc{access{metricsToken: t}.metricsAuth}, h...)
	}
	r.GET("/metrics", h...)
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "error", err)
		}
	}()
	log.Info("metrics serving", "listen", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
