package tenant

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/servertest"
	"github.com/auditstore/auditstore/schema"
)

// failingRecorder is the real DirectRecorder that, while fail is set,
// refuses every record as a full write-ahead log would, keeping the
// events it refused.
type failingRecorder struct {
	chtest.DirectRecorder
	fail atomic.Bool

	onFail func() // called on each refusal, if set

	mu      sync.Mutex
	refused []schema.Event
}

func (r *failingRecorder) Record(ctx context.Context, org string, e schema.Event) error {
	if r.fail.Load() {
		r.mu.Lock()
		r.refused = append(r.refused, e)
		r.mu.Unlock()
		if r.onFail != nil {
			r.onFail()
		}
		return schema.Unavailable("wal_full", "the write-ahead log is full (test)")
	}
	return r.DirectRecorder.Record(ctx, org, e)
}

func (r *failingRecorder) lastRefused(tb testing.TB) schema.Event {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.refused) == 0 {
		tb.Fatal("the recorder was not asked to record anything")
	}
	return r.refused[len(r.refused)-1]
}

// newFailingEnv is newEnv with a recorder the test can make fail.
func newFailingEnv(tb testing.TB) (*env, *failingRecorder) {
	tb.Helper()
	e := newEnv(tb)
	rec := &failingRecorder{DirectRecorder: chtest.DirectRecorder{Conn: e.db.Conn, Plans: e.svc}}
	e.svc.rec = rec
	return e, rec
}

// fresh is another instance on the same database: it sees only what
// ClickHouse holds.
func (e *env) fresh(tb testing.TB) *Service {
	tb.Helper()
	return newService(tb, e.db, &servertest.SyncBuffer{}, time.Hour)
}

func (e *env) count(tb testing.TB, query string, p clickhouse.Parameters) uint64 {
	tb.Helper()
	var n uint64
	if err := e.db.Conn.QueryRow(params(context.Background(), p), query).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func wantUnavailable(tb testing.TB, what string, code int, body map[string]any) {
	tb.Helper()
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if code != http.StatusServiceUnavailable || errCode(body) != "audit_unavailable" || !strings.Contains(msg, "nothing was changed") {
		tb.Fatalf("%s with a failing audit record: %d %v, want 503 audit_unavailable", what, code, body)
	}
}

// TestChangeAndRecordAreOneOutcome: when the audit record of a key or org
// change cannot be written, the change is undone (on this instance and in
// ClickHouse, which other instances read), the caller gets 503
// audit_unavailable, and the same call succeeds, recorded, once the
// recorder works again.
func TestChangeAndRecordAreOneOutcome(t *testing.T) {
	e, rec := newFailingEnv(t)
	ctx := context.Background()
	e.mustOrg(t, "acme", "pro")
	readID, read := e.mustKey(t, "acme", "read")
	rec.fail.Store(true)

	// A new org: not there afterwards, here or for another instance.
	code, body := e.do(t, "POST", "/v1/orgs", adminToken, map[string]string{"id": "beta", "plan": "pro"})
	wantUnavailable(t, "create org", code, body)
	if code, body := e.do(t, "GET", "/v1/orgs/beta", adminToken, nil); code != http.StatusNotFound {
		t.Errorf("org whose creation was undone: GET %d %v, want 404", code, body)
	}
	if _, err := e.fresh(t).Org(ctx, "beta"); schema.KindOf(err) != schema.KindNotFound {
		t.Errorf("another instance sees the undone org: err=%v", err)
	}
	if n := e.count(t, "SELECT count() FROM orgs FINAL WHERE id = 'beta'", nil); n != 0 {
		t.Errorf("rows of the undone org: %d, want 0", n)
	}

	// A new key: not stored, not listed.
	code, body = e.do(t, "POST", "/v1/orgs/acme/keys", adminToken, map[string]string{"role": "ingest", "name": "billing"})
	wantUnavailable(t, "create key", code, body)
	if body["key"] != nil {
		t.Fatalf("a token was handed out for an undone key: %v", body)
	}
	undoneKey := rec.lastRefused(t).Resource.ID
	if n := e.count(t, "SELECT count() FROM api_keys WHERE id = {id:String}", clickhouse.Parameters{"id": undoneKey}); n != 0 {
		t.Errorf("rows of the undone key %s: %d, want 0", undoneKey, n)
	}
	if keys, err := e.fresh(t).Keys(ctx, "acme"); err != nil || len(keys) != 1 || keys[0].ID != readID {
		t.Errorf("keys after an undone creation: %+v %v, want only %s", keys, err, readID)
	}

	// A plan change: the previous plan stays, here and elsewhere.
	code, body = e.do(t, "PATCH", "/v1/orgs/acme", adminToken, map[string]string{"plan": "enterprise"})
	wantUnavailable(t, "change plan", code, body)
	if o, err := e.svc.Org(ctx, "acme"); err != nil || o.Plan != "pro" {
		t.Errorf("plan after an undone change: %+v %v, want pro", o, err)
	}
	if o, err := e.fresh(t).Org(ctx, "acme"); err != nil || o.Plan != "pro" {
		t.Errorf("another instance's plan after an undone change: %+v %v, want pro", o, err)
	}

	// A revocation: the key keeps working, here and elsewhere.
	code, body = e.do(t, "DELETE", "/v1/orgs/acme/keys/"+readID, adminToken, nil)
	wantUnavailable(t, "revoke key", code, body)
	if code, body := e.do(t, "GET", "/v1/events", read, nil); code != http.StatusOK {
		t.Errorf("key whose revocation was undone: %d %v, want 200", code, body)
	}
	if _, err := e.fresh(t).Authenticate(ctx, read); err != nil {
		t.Errorf("another instance refuses the key whose revocation was undone: %v", err)
	}
	if !strings.Contains(e.logs.String(), "change undone") {
		t.Errorf("no log of the undone changes:\n%s", e.logs)
	}
	if n := e.count(t, "SELECT count() FROM events WHERE org_id IN ('acme', 'beta') AND event_type != 'org.create'", nil); n != 1 {
		t.Errorf("audit events: %d, want 1 (the read key's creation)", n)
	}

	// The recorder is back: every change succeeds and is recorded.
	rec.fail.Store(false)
	e.mustOrg(t, "beta", "pro")
	_, ingest := e.mustKey(t, "acme", "ingest")
	if code, body := e.do(t, "POST", "/v1/events", ingest, nil); code != http.StatusOK {
		t.Errorf("key created once the recorder is back: %d %v", code, body)
	}
	if code, body := e.do(t, "PATCH", "/v1/orgs/acme", adminToken, map[string]string{"plan": "enterprise"}); code != http.StatusOK {
		t.Errorf("plan change once the recorder is back: %d %v", code, body)
	}
	if code, body := e.do(t, "DELETE", "/v1/orgs/acme/keys/"+readID, adminToken, nil); code != http.StatusNoContent {
		t.Errorf("revocation once the recorder is back: %d %v", code, body)
	}
	if _, err := e.fresh(t).Authenticate(ctx, read); schema.KindOf(err) != schema.KindUnauthenticated {
		t.Errorf("revoked key: err=%v, want unauthenticated", err)
	}
	if n := e.count(t, "SELECT count() FROM events WHERE org_id IN ('acme', 'beta')", nil); n != 6 {
		t.Errorf("audit events: %d, want 6 (2 orgs, 2 keys, 1 plan change, 1 revocation)", n)
	}
}

// TestUndoFailureIsLoggedAsError: when the undo fails too (ClickHouse
// gone between the change and its undo), the change persists without its
// record: the caller gets 500 and the log says so at error level.
func TestUndoFailureIsLoggedAsError(t *testing.T) {
	e, rec := newFailingEnv(t)
	e.mustOrg(t, "acme", "pro")
	conn := &breakingConn{Conn: e.svc.store.conn}
	e.svc.store.conn = conn
	rec.fail.Store(true)
	rec.onFail = func() { conn.broken.Store(true) }
	code, body := e.do(t, "PATCH", "/v1/orgs/acme", adminToken, map[string]string{"plan": "enterprise"})
	if code != http.StatusInternalServerError {
		t.Fatalf("change whose record and undo failed: %d %v, want 500", code, body)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "could not be undone") || !strings.Contains(logs, "level=ERROR") {
		t.Errorf("no error log of the unrecorded change:\n%s", logs)
	}
}

// breakingConn fails every Exec once broken is set.
type breakingConn struct {
	Conn
	broken atomic.Bool
}

func (b *breakingConn) Exec(ctx context.Context, query string, args ...any) error {
	if b.broken.Load() {
		return errors.New("connection refused (test)")
	}
	return b.Conn.Exec(ctx, query, args...)
}
