package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/schema"
)

// lateRecorder records through the pipeline once it exists (the tenant
// service, the pipeline's plan source, needs a recorder first).
type lateRecorder struct{ p *ingest.Pipeline }

func (r *lateRecorder) Record(ctx context.Context, org string, e schema.Event) error {
	return r.p.Record(ctx, org, e)
}

// measureInProcess runs the one-event-per-request shape against the
// ingest handler stack built in this process (tenant middleware, the
// pipeline's routes, a write-ahead log under work, a private engine), once
// per value of the pipeline's MaxConcurrentRequests, which the server
// binary does not expose: each request holds one of those slots until its
// record is durable, so the slots bound how many requests share an fsync.
func measureInProcess(ctx context.Context, work string, seed uint64, counts []int, d time.Duration, orgs int, slots []int) []singleResult {
	e := benchutil.Engine(ctx, filepath.Join(work, "inprocess-ch"))
	defer e.Stop(context.Background())
	ccfg := chconn.DefaultConfig()
	ccfg.Addr = e.Addr()
	conn := benchutil.OpenMigrated(ctx, ccfg)
	defer conn.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := newGenerator(seed)
	var out []singleResult
	for si, n := range slots {
		rec := &lateRecorder{}
		tcfg := tenant.DefaultConfig()
		tcfg.AdminToken = "bench-admin-token-0123456789"
		tenants, err := tenant.New(conn, rec, tcfg, quiet)
		if err != nil {
			log.Fatal(err)
		}
		icfg := ingest.DefaultConfig()
		icfg.WAL.Dir, icfg.WAL.Logger = filepath.Join(work, fmt.Sprintf("inprocess-wal-%d", si)), quiet
		icfg.MaxConcurrentRequests = n
		p, err := ingest.Open(conn, tenants, icfg, quiet, prometheus.NewRegistry())
		if err != nil {
			log.Fatal(err)
		}
		rec.p = p
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(rctx) }()
		keys := make([]string, orgs)
		for i := range keys {
			org := fmt.Sprintf("org-%03d", i)
			if _, err := tenants.CreateOrg(ctx, tenant.Attribution{}, org, "pro"); err != nil && schema.KindOf(err) != schema.KindConflict {
				log.Fatal(err)
			}
			if _, keys[i], err = tenants.CreateKey(ctx, tenant.Attribution{}, org, "ingest", "bench"); err != nil {
				log.Fatal(err)
			}
		}
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		r.Use(httpx.Errors(quiet), tenants.Middleware())
		p.Routes(r, tenant.Require)
		srv := httptest.NewServer(r)
		for ci, c := range counts {
			project := fmt.Sprintf("bench-inproc-%d-%d", si, ci)
			run := runSingle(srv.URL, keys, newTemplates(g, 4096, project), c, d)
			verifySingle(ctx, conn, project, &run)
			run.setup = fmt.Sprintf("in process, %d slots", n)
			log.Printf("%s, %d clients: %.0f requests/s, p50 %s p99 %s, %d acknowledged, %d stored once", run.setup, c,
				float64(run.acked)/run.elapsed.Seconds(), pct(run.latencies, 0.50), pct(run.latencies, 0.99), len(run.ids), run.storedOnce)
			out = append(out, run.singleResult)
		}
		srv.Close()
		cancel()
		wg.Wait()
		_ = p.Close()
	}
	return out
}
