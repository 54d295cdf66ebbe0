package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/query"
	"github.com/auditstore/auditstore/schema"
)

// lateRecorder records through the pipeline once it exists: the tenant
// service (the pipeline's plan source) needs a recorder first.
type lateRecorder struct{ p *ingest.Pipeline }

func (r *lateRecorder) Record(ctx context.Context, org string, e schema.Event) error {
	return r.p.Record(ctx, org, e)
}

// durableStack is the handler stack as the server wires it for reads:
// every query is recorded in the org's audit log through the ingest
// pipeline (write-ahead log, fsync, then ClickHouse) before it runs. The
// log lives in dir, on the disk the bench runs on.
func durableStack(ctx context.Context, conn driver.Conn, dir string, flush time.Duration, log0 *slog.Logger) (http.Handler, *ingest.Pipeline, func()) {
	rec := &lateRecorder{}
	tcfg := tenant.DefaultConfig()
	tcfg.AdminToken = "bench-admin-token-0123456789"
	tenants, err := tenant.New(conn, rec, tcfg, log0)
	if err != nil {
		log.Fatal(err)
	}
	icfg := ingest.DefaultConfig()
	icfg.WAL.Dir, icfg.WAL.Logger, icfg.FlushInterval = dir, log0, flush
	p, err := ingest.Open(conn, tenants, icfg, log0, prometheus.NewRegistry())
	if err != nil {
		log.Fatal(err)
	}
	rec.p = p
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(rctx) }()
	qh, err := query.New(conn, rec, query.DefaultConfig(), log0)
	if err != nil {
		log.Fatal(err)
	}
	r := gin.New()
	r.Use(httpx.Errors(log0), tenants.Middleware())
	qh.Routes(r, tenant.Require)
	// What authentication alone costs: the same middleware in front of an
	// empty answer.
	r.GET("/bench/auth", tenant.Require(schema.PermReadEvents), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	return r, p, func() { cancel(); wg.Wait(); _ = p.Close() }
}

// breakdownTable breaks the newest page of an org's last 30 days (the
// most asked page) into its parts, each timed on its own: HTTP alone,
// HTTP and authentication, the audit record's durable write, the page's
// SQL with and without FINAL, the total's count with and without FINAL,
// both as served (side by side), and the JSON encoding of the answer; and
// the whole request with and without the audit record. Then the whole
// request through three stacks interleaved (wholeInterleaved): as served,
// with the records held in the write-ahead log, and with them discarded.
func breakdownTable(ctx context.Context, rep *strings.Builder, conn driver.Conn, plain http.Handler, keys map[string]string,
	g *gen.Generator, samp *samples, now time.Time, runs int, rng *rand.Rand, log0 *slog.Logger) {
	dir, err := os.MkdirTemp("", "auditstore-bench-query-wal-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	durable, pipe, stop := durableStack(ctx, conn, filepath.Join(dir, "wal"), ingest.DefaultConfig().FlushInterval, log0)
	defer stop()
	// The same stack whose records stay in its write-ahead log for the
	// whole run (a flush interval longer than the run): it tells the
	// records' cost in this process from their INSERTs' cost in ClickHouse.
	held, _, stopHeld := durableStack(ctx, conn, filepath.Join(dir, "wal-held"), 24*time.Hour, log0)
	defer stopHeld()
	srvDurable, srvHeld, srvPlain := httptest.NewServer(durable), httptest.NewServer(held), httptest.NewServer(plain)
	defer srvDurable.Close()
	defer srvHeld.Close()
	defer srvPlain.Close()
	bare := gin.New()
	bare.GET("/bench/bare", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	srvBare := httptest.NewServer(bare)
	defer srvBare.Close()
	client := &http.Client{Timeout: time.Minute}

	get := func(base, path, key string) []byte {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err != nil {
			log.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			log.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return body
	}
	page := "/v1/events?" + enc("from", rfc(now.Add(-30*24*time.Hour)), "limit", "50")
	set := clickhouse.Settings{}
	for k, v := range readsql.ReadSettingsText() {
		set[k] = v
	}
	run := func(st readsql.Statement, final bool) {
		sql := st.SQL
		if !final {
			sql = strings.ReplaceAll(sql, " FINAL", "")
		}
		rows, err := conn.Query(clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters(st.Wire())), clickhouse.WithSettings(set)), sql)
		if err != nil {
			log.Fatalf("breakdown: %v", err)
		}
		for rows.Next() {
		}
		rows.Close()
	}
	// The statements of the newest page (query/list.go, newestPage): the
	// page from the last day, the total from the whole range, side by side.
	rowsSt := func(org string) readsql.Statement {
		return readsql.List(org, schema.Filter{From: now.Add(-24 * time.Hour)}, schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
	}
	countSt := func(org string) readsql.Statement {
		return readsql.Count(org, schema.Filter{From: now.Add(-30 * 24 * time.Hour)})
	}
	var answers sync.Map // org -> decoded page, for the JSON row
	parts := []struct {
		name string
		do   func(org string)
		prep func(org string) // before the clock starts, if set
	}{
		{"whole request as served: HTTP, authentication, audit record (durable), page + total, JSON", func(org string) {
			get(srvDurable.URL, page, keys[org])
		}, nil},
		{"whole request, audit record discarded (the shapes above)", func(org string) {
			get(srvPlain.URL, page, keys[org])
		}, nil},
		{"HTTP alone (an empty answer, no middleware)", func(string) { get(srvBare.URL, "/bench/bare", "") }, nil},
		{"HTTP + authentication (an empty answer behind the tenant middleware)", func(org string) {
			get(srvDurable.URL, "/bench/auth", keys[org])
		}, nil},
		{"audit record alone (ingest pipeline: write-ahead log append + fsync)", func(org string) {
			e := schema.Attribution{}.Event(schema.EventQuery, nil, map[string]any{"endpoint": "GET /v1/events"}, time.Now())
			if err := pipe.Record(ctx, org, e); err != nil {
				log.Fatal(err)
			}
		}, nil},
		{"SQL as served: page rows (last day) and total (30 days) side by side, FINAL", func(org string) {
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); run(countSt(org), true) }()
			run(rowsSt(org), true)
			wg.Wait()
		}, nil},
		{"SQL: page rows alone, FINAL", func(org string) { run(rowsSt(org), true) }, nil},
		{"SQL: page rows alone, no FINAL", func(org string) { run(rowsSt(org), false) }, nil},
		{"SQL: total alone, FINAL", func(org string) { run(countSt(org), true) }, nil},
		{"SQL: total alone, no FINAL", func(org string) { run(countSt(org), false) }, nil},
		{"JSON encoding of the answer (50 events, in process)", func(org string) {
			v, _ := answers.Load(org)
			if _, err := json.Marshal(v); err != nil {
				log.Fatal(err)
			}
		}, func(org string) {
			if _, ok := answers.Load(org); !ok {
				var res query.ListResponse
				if err := json.Unmarshal(get(srvPlain.URL, page, keys[org]), &res); err != nil {
					log.Fatal(err)
				}
				answers.Store(org, res)
			}
		}},
	}
	largest := g.Orgs()[0].ID
	drawn := pickWeighted(g, samp, rng)
	fmt.Fprintf(rep, "\nWhere the newest page's time goes (`GET /v1/events?from=<30 days ago>&limit=50`, with its total): each part "+
		"timed on its own, %d times after 3 warm-ups, at orgs drawn by size and at the largest org. The parts run one after "+
		"another, so they add up only roughly (the page and the total run side by side when served). The durable stack records "+
		"each query through a real ingest pipeline (write-ahead log in %s, then ClickHouse). Load average before: %s.\n\n",
		runs, dir, benchutil.LoadAverage())
	// Each stack keeps its own hour counts, and an org's first page counts
	// its whole range: the durable stacks, new here, read every org's page
	// once (the plain one too, which the shapes above drew orgs from), so
	// the whole requests are timed on the same footing.
	for _, o := range g.Orgs() {
		for _, srv := range []*httptest.Server{srvDurable, srvHeld, srvPlain} {
			get(srv.URL, page, keys[o.ID])
		}
	}
	fmt.Fprintf(rep, "| part | p50 | p99 | p50 largest org | p99 largest org |\n|---|---|---|---|---|\n")
	for _, part := range parts {
		var cells []string
		for _, pick := range []func() string{drawn, func() string { return largest }} {
			var d []time.Duration
			for i := -3; i < runs; i++ {
				org := pick()
				if part.prep != nil {
					part.prep(org)
				}
				start := time.Now()
				part.do(org)
				if i >= 0 {
					d = append(d, time.Since(start))
				}
			}
			cells = append(cells, fineMS(pct(d, 50)), fineMS(pct(d, 99)))
		}
		fmt.Fprintf(rep, "| %s | %s |\n", part.name, strings.Join(cells, " | "))
		log.Printf("breakdown: %s: %s", part.name, strings.Join(cells, " "))
	}
	wholeInterleaved(rep, []stackURL{{"as served (records inserted every 200 ms)", srvDurable.URL},
		{"records held in the write-ahead log (never inserted during the run)", srvHeld.URL},
		{"records discarded", srvPlain.URL}}, func(base, org string) { get(base, page, keys[org]) },
		drawn, largest, runs)
}

type stackURL struct{ name, url string }

// wholeInterleaved times the whole newest-page request through each stack
// in one loop: every iteration sends the same org's request through each,
// in an order rotated by one each time, so the stacks share the machine's
// moments alike; a part timed on its own (above) does not.
func wholeInterleaved(rep *strings.Builder, stacks []stackURL, get func(base, org string), drawn func() string, largest string, runs int) {
	fmt.Fprintf(rep, "\nThe whole request through each stack, interleaved (%d rounds after 3 warm-ups; each round sends the same org's "+
		"request through every stack, the order rotated each round). Load average before: %s.\n\n", runs, benchutil.LoadAverage())
	fmt.Fprintf(rep, "| audit record | p50 | p99 | p50 largest org | p99 largest org |\n|---|---|---|---|---|\n")
	cells := make([][]string, len(stacks))
	for _, pick := range []func() string{drawn, func() string { return largest }} {
		d := make([][]time.Duration, len(stacks))
		for i := -3; i < runs; i++ {
			org := pick()
			for k := range stacks {
				j := (k + i + 3) % len(stacks)
				start := time.Now()
				get(stacks[j].url, org)
				if i >= 0 {
					d[j] = append(d[j], time.Since(start))
				}
			}
		}
		for j := range stacks {
			cells[j] = append(cells[j], fineMS(pct(d[j], 50)), fineMS(pct(d[j], 99)))
		}
	}
	for j, s := range stacks {
		fmt.Fprintf(rep, "| %s | %s |\n", s.name, strings.Join(cells[j], " | "))
		log.Printf("breakdown, interleaved: %s: %s", s.name, strings.Join(cells[j], " "))
	}
}

func fineMS(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
