package tenant

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/testkit"
	"github.com/auditstore/auditstore/schema"
)

// countingConn counts the key lookups by id that reach the real ClickHouse.
type countingConn struct {
	Conn
	lookups atomic.Int64
}

func (c *countingConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	if strings.Contains(q, "FROM api_keys FINAL WHERE") {
		c.lookups.Add(1)
	}
	return c.Conn.Query(ctx, q, args...)
}

// unknownToken is a well-formed token whose key id no one created.
func unknownToken(tb testing.TB) string {
	tb.Helper()
	_, token, _ := newKey()
	return token
}

func TestUnknownKeysCostBoundedLookups(t *testing.T) {
	e := newEnv(t)
	conn := &countingConn{Conn: e.db.Conn}
	cfg := e.svc.cfg
	svc, err := New(conn, &chtest.DirectRecorder{Conn: e.db.Conn}, cfg, testkit.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	h := router(svc, testkit.Quiet())
	get := func(addr, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/events", nil)
		req.RemoteAddr = addr + ":40000"
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}

	// One address sending 200 different unknown ids: at most the burst
	// reaches ClickHouse, the rest is refused with 429 and Retry-After.
	const n = 200
	status := map[int]int{}
	for i := 0; i < n; i++ {
		w := get("192.0.2.1", unknownToken(t))
		status[w.Code]++
		if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	got := conn.lookups.Load()
	t.Logf("%d unknown ids from one address: lookups=%d, statuses=%v", n, got, status)
	if got > int64(cfg.LookupBurst)+1 {
		t.Fatalf("lookups=%d, want at most the burst %d", got, cfg.LookupBurst)
	}
	if status[http.StatusTooManyRequests] < n-cfg.LookupBurst-1 {
		t.Fatalf("429s=%d, want at least %d", status[http.StatusTooManyRequests], n-cfg.LookupBurst-1)
	}

	// Another address is not affected, and one unknown id asked again and
	// again (across a refresh) costs one lookup.
	before := conn.lookups.Load()
	token := unknownToken(t)
	for i := 0; i < 50; i++ {
		if i == 25 {
			if err := svc.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if w := get("192.0.2.2", token); w.Code != http.StatusUnauthorized {
			t.Fatalf("status=%d, want 401: %s", w.Code, w.Body)
		}
	}
	if d := conn.lookups.Load() - before; d != 1 {
		t.Fatalf("one unknown id asked 50 times across a refresh: lookups=%d, want 1", d)
	}

	// A key created on another instance is still accepted at once.
	e.mustOrg(t, "acme", "pro")
	_, live := e.mustKey(t, "acme", "read")
	if w := get("192.0.2.3", live); w.Code != http.StatusOK {
		t.Fatalf("key created elsewhere: %d %s", w.Code, w.Body)
	}
}

func TestLRUBoundsAndExpires(t *testing.T) {
	c := newLRU[int](3, time.Minute)
	t0 := time.Now()
	for i, k := range []string{"a", "b", "c", "d"} {
		c.put(k, i, t0)
	}
	if _, ok := c.get("a", t0); ok || c.len() != 3 {
		t.Fatalf("len=%d, a kept=%v; want 3 and a evicted", c.len(), ok)
	}
	if _, ok := c.get("b", t0.Add(time.Minute)); ok {
		t.Fatal("entry alive after its TTL")
	}
}

// TestRefreshDoesNotResurrectARevokedKey pauses refreshes between their
// read and their apply while a key is revoked, locally and on another
// instance.
func TestRefreshDoesNotResurrectARevokedKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")

	// A refresh that read the keys before a local revoke.
	id, token := e.mustKey(t, "acme", "read")
	read, release := make(chan struct{}), make(chan struct{})
	var pause atomic.Bool
	pause.Store(true)
	e.svc.afterRead = func() {
		if pause.CompareAndSwap(true, false) {
			close(read)
			<-release
		}
	}
	done := make(chan error)
	go func() { done <- e.svc.Refresh(ctx) }()
	<-read
	if code, _ := e.do(t, "DELETE", "/v1/orgs/acme/keys/"+id, adminToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke=%d", code)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, token); schema.KindOf(err) != schema.KindUnauthenticated {
		t.Fatalf("a refresh that read before the revoke brought the key back: err=%v", err)
	}
	// The next refresh reads the revocation and clears the local record.
	if err := e.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, token); schema.KindOf(err) != schema.KindUnauthenticated {
		t.Fatalf("key accepted after a later refresh: err=%v", err)
	}

	// On another instance: a refresh that read before a revoke made
	// elsewhere, applied after a later refresh that saw the revoke.
	id2, token2 := e.mustKey(t, "acme", "read")
	other := newService(t, e.db, io.Discard, time.Hour)
	if _, err := other.Authenticate(ctx, token2); err != nil {
		t.Fatalf("live key refused: %v", err)
	}
	read, release = make(chan struct{}), make(chan struct{})
	pause.Store(true)
	other.afterRead = e.svc.afterRead
	go func() { done <- other.Refresh(ctx) }()
	<-read
	if code, _ := e.do(t, "DELETE", "/v1/orgs/acme/keys/"+id2, adminToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke=%d", code)
	}
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authenticate(ctx, token2); schema.KindOf(err) != schema.KindUnauthenticated {
		t.Fatalf("an older refresh applied last brought the key back: err=%v", err)
	}
}
