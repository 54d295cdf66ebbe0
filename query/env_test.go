package query

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/schema"
)

const adminToken = "test-admin-token-0123456789"

// fakeRecorder keeps the audit events in memory, so that comparison tests
// see only the events they loaded; fail makes Record fail.
type fakeRecorder struct {
	mu     sync.Mutex
	events []schema.Event
	orgs   []string
	fail   error
}

func (r *fakeRecorder) Record(_ context.Context, org string, e schema.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, e)
	r.orgs = append(r.orgs, org)
	return nil
}

func (r *fakeRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// env is a migrated test database with the real tenant middleware and the
// query routes in front of it.
type env struct {
	db      *chtest.DB
	tenants *tenant.Service
	rec     tenant.Recorder
	handler *Handler
	h       http.Handler
	keys    map[string]string // org → read key
	keyIDs  map[string]string // org → read key id
}

type envOption func(*Config)

func newEnv(tb testing.TB, rec tenant.Recorder, opts ...envOption) *env {
	tb.Helper()
	db := chtest.NewDB(tb)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := migrate.Run(context.Background(), db.Conn, quiet); err != nil {
		tb.Fatal(err)
	}
	tcfg := tenant.DefaultConfig()
	tcfg.AdminToken = adminToken
	tcfg.RefreshInterval = time.Hour
	tcfg.Plans = schema.Plans{"pro": {Name: "pro", Retention: 90 * 24 * time.Hour}}
	// Org and key changes are recorded in memory: the events table holds
	// only what a test loads.
	svc, err := tenant.New(db.Conn, &fakeRecorder{}, tcfg, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	if rec == nil {
		rec = &fakeRecorder{}
	}
	cfg := DefaultConfig()
	cfg.CursorKey = []byte("0123456789abcdef0123456789abcdef")
	for _, o := range opts {
		o(&cfg)
	}
	qh, err := New(db.Conn, rec, cfg, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.NoRoute(httpx.NotFound)
	r.Use(httpx.Errors(quiet), svc.Middleware())
	qh.Routes(r, tenant.Require)
	return &env{db: db, tenants: svc, rec: rec, handler: qh, h: r, keys: map[string]string{}, keyIDs: map[string]string{}}
}

// org creates an org with a read key (and returns the key).
func (e *env) org(tb testing.TB, id string) string {
	tb.Helper()
	ctx := context.Background()
	if _, err := e.tenants.CreateOrg(ctx, tenant.Attribution{}, id, "pro"); err != nil {
		tb.Fatal(err)
	}
	k, token, err := e.tenants.CreateKey(ctx, tenant.Attribution{}, id, "read", "reader")
	if err != nil {
		tb.Fatal(err)
	}
	e.keys[id], e.keyIDs[id] = token, k.ID
	return token
}

// key creates another key of org with role.
func (e *env) key(tb testing.TB, org, role string) string {
	tb.Helper()
	_, token, err := e.tenants.CreateKey(context.Background(), tenant.Attribution{}, org, role, role)
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

var insertSQL = "INSERT INTO " + schema.EventsTable + " (" + strings.Join(schema.InsertColumns, ", ") + ")"

// load inserts rows in one batch.
func (e *env) load(tb testing.TB, rows []schema.Row) {
	tb.Helper()
	ctx := context.Background()
	b, err := e.db.Conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range rows {
		if err := b.Append(rows[i].Values()...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		tb.Fatal(err)
	}
}

// response is a decoded answer.
type response struct {
	status int
	raw    []byte
	list   ListResponse
	err    httpx.ErrorBody
}

func (e *env) get(tb testing.TB, token, target string) response {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	r := response{status: w.Code, raw: w.Body.Bytes()}
	if w.Code == http.StatusOK {
		_ = json.Unmarshal(r.raw, &r.list)
	} else if err := json.Unmarshal(r.raw, &r.err); err != nil {
		tb.Fatalf("GET %s: status %d with a body that is not the error shape: %s", target, w.Code, r.raw)
	}
	return r
}

// mustList fetches a list endpoint and fails unless it answers 200.
func (e *env) mustList(tb testing.TB, token, target string) ListResponse {
	tb.Helper()
	r := e.get(tb, token, target)
	if r.status != http.StatusOK {
		tb.Fatalf("GET %s: status %d %s", target, r.status, r.raw)
	}
	return r.list
}

func ids(evs []schema.StoredEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

var errRecorderDown = errors.New("recorder down")
