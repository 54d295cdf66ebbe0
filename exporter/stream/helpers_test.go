package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/servertest"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/internal/testkit"
	"github.com/auditstore/auditstore/schema"
)

const testNode = "node-test"

var testKey = []byte("0123456789abcdef0123456789abcdef")

// fakeWM is a watermark the test moves; memRecorder keeps audit events.
type (
	fakeWM      = testkit.Watermark
	memRecorder = testkit.Recorder
)

// testTLS trusts the certificate every httptest TLS server uses.
func testTLS() *tls.Config {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: pool}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Key = testKey
	cfg.AllowPrivate = true
	cfg.TLS = testTLS()
	cfg.Hostname = "test-host"
	// A request that times out is an ambiguous failure the worker must
	// retry, so it sends the batch again: tests counting duplicates would
	// fail on a busy machine (the race detector, parallel packages) if the
	// in-process destinations' answers could miss the deadline. Tests of
	// timeouts set their own.
	cfg.RequestTimeout = 20 * time.Second
	cfg.PollInterval = 20 * time.Millisecond
	cfg.RefreshInterval = 100 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.BreakerFailures, cfg.BreakerOpen, cfg.BreakerMaxOpen = 5, 200*time.Millisecond, time.Second
	cfg.FailingProbe = 300 * time.Millisecond
	cfg.LagInterval, cfg.CursorSaveInterval = 50*time.Millisecond, 50*time.Millisecond
	return cfg
}

// harness is a stream service on a fresh database, with its routes.
type harness struct {
	db    *chtest.DB
	wm    *fakeWM
	rec   *memRecorder
	logs  *servertest.SyncBuffer
	reg   *prometheus.Registry
	svc   *Service
	h     http.Handler
	stop  func()
	seq   uint64 // last ingest_seq inserted
	clock sync.Mutex
}

func migrated(tb testing.TB) *chtest.DB { tb.Helper(); return testkit.Migrated(tb) }

func newHarness(tb testing.TB, tweak func(*Config)) *harness {
	tb.Helper()
	h := &harness{db: migrated(tb), wm: &fakeWM{Node: testNode}, rec: &memRecorder{}, logs: &servertest.SyncBuffer{}}
	h.start(tb, tweak)
	return h
}

// start runs a (new) service on the harness's database.
func (h *harness) start(tb testing.TB, tweak func(*Config)) {
	tb.Helper()
	cfg := testConfig()
	if tweak != nil {
		tweak(&cfg)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.reg = prometheus.NewRegistry()
	svc, err := New(h.db.Conn, h.wm, h.rec, cfg, log, h.reg)
	if err != nil {
		tb.Fatal(err)
	}
	h.svc = svc
	r := testkit.Router(log)
	svc.Routes(r, tenant.Require)
	h.h = r
	h.stop = testkit.Background(tb, svc.Run)
}

// do calls the API as an admin key of org.
func (h *harness) do(tb testing.TB, org, method, path string, body any) (int, map[string]any, string) {
	tb.Helper()
	return testkit.Do(tb, h.h, org, method, path, body)
}

// mustCreate creates a stream and returns its id.
func (h *harness) mustCreate(tb testing.TB, org string, body map[string]any) string {
	tb.Helper()
	code, out, raw := h.do(tb, org, "POST", "/v1/streams", body)
	if code != http.StatusCreated {
		tb.Fatalf("create stream: %d %s", code, raw)
	}
	return out["id"].(string)
}

// status returns a stream's status as the API shows it.
func (h *harness) status(tb testing.TB, org, id string) map[string]any {
	tb.Helper()
	code, out, raw := h.do(tb, org, "GET", "/v1/streams/"+id, nil)
	if code != http.StatusOK {
		tb.Fatalf("get stream: %d %s", code, raw)
	}
	st, _ := out["status"].(map[string]any)
	return st
}

var testPlan = schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}

// event returns a valid event of org; its metadata carries n.
func event(org string, n int, typ, actor string, pad int) schema.Event {
	md := map[string]any{"n": n, "path": "/a"}
	if pad > 0 {
		md["pad"] = strings.Repeat("x", pad)
	}
	b, _ := json.Marshal(md)
	return schema.Event{
		ID: schema.NewEventID(), Timestamp: time.Now().UTC(),
		Event: schema.EventInfo{Type: typ, Metadata: b},
		Actor: schema.Actor{Type: actor, Metadata: json.RawMessage(fmt.Sprintf(`{"userId":"u-%d","email":"ada@example.com"}`, n%5))},
		OrgID: org, ProjectID: "p-1", ProjectName: "billing",
		Resource:  &schema.Resource{Type: "secret", ID: fmt.Sprintf("s-%d", n)},
		IPAddress: "203.0.113.7", UserAgent: "test-agent", UserAgentType: "cli", TraceID: fmt.Sprintf("t-%d", n),
	}
}

// insert writes events of their orgs with the next ingest_seq values, as
// the ingest path would, and returns their ids; confirm moves the
// watermark past them.
func (h *harness) insert(tb testing.TB, events []schema.Event, confirm bool) []string {
	tb.Helper()
	h.clock.Lock()
	defer h.clock.Unlock()
	ids := insertRows(tb, h, testNode, time.Now(), &h.seq, events)
	if confirm {
		h.wm.Seq.Store(h.seq)
	}
	return ids
}

// insertRows writes events as received at received by node, numbering
// them after *seq.
func insertRows(tb testing.TB, h *harness, node string, received time.Time, seq *uint64, events []schema.Event) []string {
	tb.Helper()
	ctx := context.Background()
	b, err := h.db.Conn.PrepareBatch(ctx, "INSERT INTO events ("+strings.Join(schema.InsertColumns, ", ")+", ingest_node, ingest_seq)")
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, len(events))
	for i := range events {
		e := events[i]
		r := schema.NewRow(&e, e.OrgID, received, testPlan)
		*seq++
		if err := b.Append(append(r.Values(), node, *seq)...); err != nil {
			tb.Fatal(err)
		}
		ids[i] = e.ID
	}
	if err := b.Send(); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// insertN inserts n create-secret events by users of org.
func (h *harness) insertN(tb testing.TB, org string, n, pad int) []string {
	tb.Helper()
	evs := make([]schema.Event, n)
	for i := range evs {
		evs[i] = event(org, i, "create-secret", "user", pad)
	}
	return h.insert(tb, evs, true)
}

// eventually waits up to d for cond.
func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkOrder checks that got holds every id of want, that the first
// occurrences come in want's order, and returns the number of duplicates.
func checkOrder(tb testing.TB, want, got []string) int {
	tb.Helper()
	pos := make(map[string]int, len(want))
	for i, id := range want {
		pos[id] = i
	}
	seen := map[string]bool{}
	last, dups := -1, 0
	for _, id := range got {
		p, ok := pos[id]
		if !ok {
			continue
		}
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		if p < last {
			tb.Fatalf("event %s (#%d) delivered after #%d: out of order", id, p, last)
		}
		last = p
	}
	if len(seen) != len(want) {
		tb.Fatalf("delivered %d distinct events, want %d", len(seen), len(want))
	}
	return dups
}

// counter reads a metric's value for a stream.
func counter(tb testing.TB, reg *prometheus.Registry, name, stream string) float64 {
	tb.Helper()
	return testkit.Metric(tb, reg, name, "stream", stream)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// doAs calls the API with the given principal headers and returns the status.
func (h *harness) doAs(tb testing.TB, hdr map[string]string, method, path string) int {
	tb.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	return w.Code
}
