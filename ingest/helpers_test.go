package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/internal/testkit"
	"github.com/auditstore/auditstore/schema"
)

func quiet() *slog.Logger { return testkit.Quiet() }

// fixedPlans gives every org the same plan.
type fixedPlans struct{ plan schema.Plan }

func (f fixedPlans) Plan(context.Context, string) (schema.Plan, error) { return f.plan, nil }

var proPlan = schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}

type harness struct {
	conn driver.Conn
	pipe *Pipeline
	h    http.Handler
	stop func()
}

// newHarness runs a pipeline into conn with its log in dir; requests carry
// the principal named by the X-Test-Org and X-Test-Role headers (the real
// authentication is tenant's, tested there and end to end).
func newHarness(tb testing.TB, conn driver.Conn, dir string, tweak func(*Config)) *harness {
	tb.Helper()
	return newHarnessBeforeRun(tb, conn, dir, tweak, nil)
}

// newHarnessBeforeRun is newHarness calling beforeRun, if set, between
// Open and Run.
func newHarnessBeforeRun(tb testing.TB, conn driver.Conn, dir string, tweak func(*Config), beforeRun func(*Pipeline)) *harness {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.WAL.Dir, cfg.WAL.Logger = dir, quiet()
	cfg.FlushInterval = 20 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	pipe, err := Open(conn, fixedPlans{proPlan}, cfg, quiet(), prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	if beforeRun != nil {
		beforeRun(pipe)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pipe.Run(ctx); close(done) }()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.Errors(quiet()), func(c *gin.Context) {
		p := schema.Principal{OrgID: c.GetHeader("X-Test-Org"), Role: schema.Role(c.GetHeader("X-Test-Role")), KeyID: "testkey"}
		if c.GetHeader("X-Test-Operator") != "" {
			p = schema.Principal{Operator: true}
		}
		c.Request = c.Request.WithContext(schema.WithPrincipal(c.Request.Context(), p))
	})
	pipe.Routes(r, tenant.Require)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			pipe.Close()
		})
	}
	tb.Cleanup(stop)
	return &harness{conn: conn, pipe: pipe, h: r, stop: stop}
}

func migrated(tb testing.TB) *chtest.DB { tb.Helper(); return testkit.Migrated(tb) }

type response struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func (h *harness) post(tb testing.TB, org string, body []byte, hdr map[string]string) response {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
	req.Header.Set("X-Test-Org", org)
	req.Header.Set("X-Test-Role", "ingest")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return response{code: w.Code, header: w.Header(), body: out, raw: w.Body.String()}
}

// operator sends a request as the operator (no body).
func (h *harness) operator(tb testing.TB, method, path string) response {
	tb.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("X-Test-Operator", "1")
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return response{code: w.Code, header: w.Header(), body: out, raw: w.Body.String()}
}

func (h *harness) flush(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.pipe.Flush(ctx); err != nil {
		tb.Fatalf("flush: %v", err)
	}
}

// event returns a valid wire event; id "" leaves the id out.
func event(i int, id string, withTime bool) map[string]any {
	e := map[string]any{
		"event":     map[string]any{"type": "create-secret", "metadata": map[string]any{"n": i, "path": "/a/b", "ü": "✓"}},
		"actor":     map[string]any{"type": "user", "metadata": map[string]any{"userId": fmt.Sprintf("u-%d", i%7), "email": "ada@example.com"}},
		"ipAddress": "203.0.113.7", "userAgentType": "cli", "traceId": fmt.Sprintf("t-%d", i),
		"resource": map[string]any{"type": "secret", "id": fmt.Sprintf("s-%d", i)},
	}
	if id != "" {
		e["id"] = id
	}
	if withTime {
		e["timestamp"] = time.Now().Add(-time.Duration(i) * time.Second).UTC().Format(time.RFC3339Nano)
	}
	return e
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func ndjson(tb testing.TB, events []map[string]any) []byte {
	var b bytes.Buffer
	for _, e := range events {
		b.Write(mustJSON(tb, e))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// stored returns, for org, the visible events' ids with their multiplicity
// as reads see them (FINAL folds identical rows), and the number of rows.
func stored(tb testing.TB, conn driver.Conn, org string) (ids map[string]int, rows uint64) {
	tb.Helper()
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"org": org}))
	r, err := conn.Query(ctx, "SELECT toString(id) FROM events FINAL WHERE org_id = {org:String} AND "+schema.NotExpired)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	ids = map[string]int{}
	for r.Next() {
		var id string
		if err := r.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids[id]++
		rows++
	}
	return ids, rows
}

func errDetails(resp response) []map[string]any {
	e, _ := resp.body["error"].(map[string]any)
	var out []map[string]any
	ds, _ := e["details"].([]any)
	for _, d := range ds {
		out = append(out, d.(map[string]any))
	}
	return out
}

func errCode(resp response) string {
	e, _ := resp.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// openConn connects to a ClickHouse we control (for outage tests).
func openConn(tb testing.TB, addr, database string) driver.Conn {
	tb.Helper()
	cfg := chconn.DefaultConfig()
	cfg.Addr, cfg.Database = addr, database
	conn, err := chconn.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

var _ = strings.Contains
