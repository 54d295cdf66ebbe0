package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/s3test"
	"github.com/auditstore/auditstore/internal/servertest"
	"github.com/auditstore/auditstore/internal/testkit"
	"github.com/auditstore/auditstore/schema"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// s3Server is a versitygw serving a temporary directory over the S3 API.
type s3Server struct {
	endpoint, dir, access, secret string
}

// startS3 starts a versitygw with bucket "lake" (skips the test without it).
func startS3(tb testing.TB) *s3Server {
	tb.Helper()
	s := s3test.Start(tb, "lake")
	return &s3Server{endpoint: s.Endpoint, dir: s.Dir, access: s.Access, secret: s.Secret}
}

// fakeWM is a watermark the test moves; memRecorder keeps audit events.
type (
	fakeWM      = testkit.Watermark
	memRecorder = testkit.Recorder
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Key = testKey
	cfg.AllowPrivate = true
	cfg.MinEvery = 50 * time.Millisecond
	cfg.PollInterval = 20 * time.Millisecond
	cfg.RefreshInterval = 100 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	return cfg
}

func migrated(tb testing.TB) *chtest.DB { tb.Helper(); return testkit.Migrated(tb) }

// harness is a lake service on a fresh database (or a shared one), with
// its routes.
type harness struct {
	db   *chtest.DB
	wm   *fakeWM
	rec  *memRecorder
	logs *servertest.SyncBuffer
	svc  *Service
	h    http.Handler
	stop func()
	hook func(stage string) error // given to each service started
	reg  *prometheus.Registry     // nil: a new one per start
	seq  *atomic.Uint64           // last ingest_seq inserted, per node (shared by harnesses of one node)
}

func newHarness(tb testing.TB, db *chtest.DB, node string, tweak func(*Config)) *harness {
	tb.Helper()
	h := &harness{db: db, wm: &fakeWM{Node: node}, rec: &memRecorder{}, logs: &servertest.SyncBuffer{}, seq: &atomic.Uint64{}}
	h.start(tb, tweak)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s log:\n%.6000s", node, h.logs.String())
		}
	})
	return h
}

// start runs a (new) service; the previous one must be stopped.
func (h *harness) start(tb testing.TB, tweak func(*Config)) {
	tb.Helper()
	cfg := testConfig()
	if tweak != nil {
		tweak(&cfg)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := h.reg
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	svc, err := New(h.db.Conn, h.wm, h.rec, cfg, log, reg)
	if err != nil {
		tb.Fatal(err)
	}
	svc.hook = h.hook
	h.svc = svc
	r := testkit.Router(log)
	svc.Routes(r)
	h.h = r
	h.stop = testkit.Background(tb, svc.Run)
}

// do calls the API as an admin key of org, or as the operator when org is
// "operator".
func (h *harness) do(tb testing.TB, org, method, path string, body any) (int, map[string]any, string) {
	tb.Helper()
	return testkit.Do(tb, h.h, org, method, path, body)
}

func (h *harness) mustCreate(tb testing.TB, org string, body map[string]any) string {
	tb.Helper()
	code, out, raw := h.do(tb, org, "POST", "/v1/lake/destinations", body)
	if code != http.StatusCreated {
		tb.Fatalf("create destination: %d %s", code, raw)
	}
	return out["id"].(string)
}

var testPlan = schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}

// event returns a valid event of org at ts; its metadata carries n.
func event(org string, n int, at time.Time) schema.Event {
	md, _ := json.Marshal(map[string]any{"n": n, "path": "/a"})
	typ := []string{"create-secret", "secret.read", "api_key.delete", "USER_LOGIN", "update-project"}[n%5]
	e := schema.Event{
		ID: schema.NewEventID(), Timestamp: at.UTC().Truncate(time.Millisecond),
		Event: schema.EventInfo{Type: typ, Metadata: md},
		Actor: schema.Actor{Type: "user", Metadata: json.RawMessage(fmt.Sprintf(`{"userId":"u-%d","email":"ada%d@example.com","name":"Ada"}`, n%5, n%5))},
		OrgID: org, ProjectID: "p-1", ProjectName: "billing",
		Resource:  &schema.Resource{Type: "secret", ID: fmt.Sprintf("s-%d", n), Name: "db-password"},
		IPAddress: "203.0.113.7", UserAgent: "test-agent/1.0", UserAgentType: "cli", TraceID: fmt.Sprintf("t-%d", n),
	}
	if n%7 == 3 { // some optional fields absent
		e.IPAddress, e.TraceID, e.Resource = "", "", nil
	}
	return e
}

// insert writes events as node would, received at received, numbered after
// the harness's sequence; confirm moves the watermark past them.
func (h *harness) insert(tb testing.TB, received time.Time, events []schema.Event, confirm bool) []string {
	tb.Helper()
	// The embedded engine may abort when a stopped node's connections are
	// reset (a defect of the engine; its supervisor restarts it within a
	// second or two): opening the insert is tried again, for at most 30 s,
	// while the engine cannot be reached. Nothing is sent before it opens.
	ctx := context.Background()
	var b driver.Batch
	if err := whileRestarting(unreachable, func() (err error) {
		b, err = h.db.Conn.PrepareBatch(ctx, "INSERT INTO events ("+strings.Join(schema.InsertColumns, ", ")+", ingest_node, ingest_seq)")
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, len(events))
	var last uint64
	for i := range events {
		e := events[i]
		r := schema.NewRow(&e, e.OrgID, received, testPlan)
		last = h.seq.Add(1)
		if err := b.Append(append(r.Values(), h.wm.Node, last)...); err != nil {
			tb.Fatal(err)
		}
		ids[i] = e.ID
	}
	if err := b.Send(); err != nil {
		tb.Fatal(err)
	}
	if confirm {
		h.wm.Seq.Store(last)
	}
	return ids
}

// events returns n events of org spread over the days before at.
func events(org string, n int, at time.Time, days int) []schema.Event {
	out := make([]schema.Event, n)
	for i := range out {
		out[i] = event(org, i, at.Add(-time.Duration(i%days)*24*time.Hour-time.Duration(i)*time.Second))
	}
	return out
}

func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chQuery runs a query on the test database's HTTP interface and returns
// its output (TSV unless the query says otherwise).
func chQuery(tb testing.TB, db *chtest.DB, query string, params map[string]string) string {
	tb.Helper()
	if db.HTTPAddr == "" {
		tb.Skip("no ClickHouse HTTP interface")
	}
	q := url.Values{}
	q.Set("database", db.Name)
	for k, v := range params {
		q.Set("param_"+k, v)
	}
	resp, err := db.PostHTTP(q, query)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("clickhouse %d: %s\nquery: %s", resp.StatusCode, b, query)
	}
	return string(b)
}

// manifests reads every manifest under root (a directory tree: versitygw's
// bucket folder, or a dir destination), by partition.
func manifests(tb testing.TB, root string) map[string]Manifest {
	tb.Helper()
	out := map[string]Manifest{}
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() != ManifestName {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			tb.Fatalf("manifest %s: %v: %s", p, err, b)
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		out[rel+"/"] = m
		return nil
	})
	return out
}

// manifestFiles returns the paths of the files the manifests under root
// list, sorted, and their total rows.
func manifestFiles(tb testing.TB, root string) ([]string, uint64) {
	tb.Helper()
	var files []string
	var rows uint64
	for part, m := range manifests(tb, root) {
		for _, f := range m.Files {
			files = append(files, filepath.Join(root, part, f.Name))
			rows += f.Rows
		}
	}
	sort.Strings(files)
	return files, rows
}

// marksAfterStop reads dest's marks right after a node stopped: again, for
// at most 30 s, while the engine cannot be reached or drops the read (it
// may abort on the stopped node's reset connections, see insert, and its
// supervisor restarts it). A read changes nothing, so repeating it is safe.
func (h *harness) marksAfterStop(tb testing.TB, dest string) (marks map[string]mark, err error) {
	tb.Helper()
	dropped := func(err error) bool { return unreachable(err) || strings.Contains(err.Error(), "EOF") }
	err = whileRestarting(dropped, func() (err error) {
		marks, err = h.svc.store.marks(context.Background(), dest)
		return err
	})
	return marks, err
}

// whileRestarting runs try, again every 200 ms for at most 30 s while its
// error is one retry accepts (the embedded engine restarting after an
// abort), and returns try's last error.
func whileRestarting(retry func(error) bool, try func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := try()
		if err == nil || !retry(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unreachable reports a failure to reach the engine: refused, or reset
// before a query was sent.
func unreachable(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(err.Error(), "connection reset by peer") || strings.Contains(err.Error(), "connection refused")
}
