package query

import (
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/schema"
)

// useRecorder rebuilds the handler and router of e around rec.
func (e *env) useRecorder(tb testing.TB, rec tenant.Recorder) {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := DefaultConfig()
	cfg.CursorKey = []byte("0123456789abcdef0123456789abcdef")
	qh, err := New(e.db.Conn, rec, cfg, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	r := gin.New()
	r.NoRoute(httpx.NotFound)
	r.Use(httpx.Errors(quiet), e.tenants.Middleware())
	qh.Routes(r, tenant.Require)
	e.rec, e.handler, e.h = rec, qh, r
}

// Every query by a key is recorded as an audit-log.query event of its org,
// with actor apiKey and the key id, before it runs.
func TestQueriesAreAudited(t *testing.T) {
	e := newEnv(t, nil)
	token := e.org(t, "acme")
	e.useRecorder(t, &chtest.DirectRecorder{Conn: e.db.Conn, Plans: e.tenants})
	now := testClock()
	rows := genRows(rand.New(rand.NewPCG(9, 9)), "acme", 50, now)
	rows[0].ExpiresAt = now.Add(time.Hour)
	e.load(t, rows)
	targets := []string{
		"/v1/events?eventType=create-secret&limit=5",
		"/v1/events/" + rows[0].ID.String(),
		"/v1/resources/secret/s-1/events",
		"/v1/traces/tr-1/events",
		"/v1/event-types?from=2026-01-01T00:00:00Z",
		"/v1/aggregates?groupBy=actorId&top=3",
	}
	for _, target := range targets {
		if r := e.get(t, token, target); r.status != 200 {
			t.Fatalf("%s: %d %s", target, r.status, r.raw)
		}
	}
	keyID := e.keyIDs["acme"]
	res := e.mustList(t, token, "/v1/events?eventType=audit-log.query&actorType=apiKey&actorId="+keyID+"&order=asc&limit=100")
	// The listing just made is recorded before it runs: it sees itself.
	if len(res.Events) != len(targets)+1 {
		t.Fatalf("%d audit-log.query events, want %d", len(res.Events), len(targets)+1)
	}
	for i, ev := range res.Events {
		var md struct {
			Endpoint string              `json:"endpoint"`
			Path     map[string]string   `json:"path"`
			Params   map[string][]string `json:"params"`
		}
		if err := json.Unmarshal(ev.Event.Event.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		var actor map[string]string
		_ = json.Unmarshal(ev.Actor.Metadata, &actor)
		if ev.Actor.Type != "apiKey" || actor["keyId"] != keyID || ev.OrgID != "acme" {
			t.Fatalf("event %d: actor %s %s in org %s", i, ev.Actor.Type, ev.Actor.Metadata, ev.OrgID)
		}
		if md.Endpoint == "" || ev.IPAddress == "" {
			t.Fatalf("event %d lacks the endpoint or the client address: %s", i, ev.Event.Event.Metadata)
		}
		if i == 0 && (md.Endpoint != "GET /v1/events" || md.Params["eventType"][0] != "create-secret") {
			t.Fatalf("first event: %s", ev.Event.Event.Metadata)
		}
		if i == 2 && (md.Endpoint != "GET /v1/resources/:type/:id/events" || md.Path["id"] != "s-1") {
			t.Fatalf("timeline event: %s", ev.Event.Event.Metadata)
		}
	}
}

// A query that cannot be recorded is refused, not run unaudited; and a
// request refused for its parameters reads nothing and is not recorded.
func TestUnrecordedQueriesAreRefused(t *testing.T) {
	rec := &fakeRecorder{fail: errRecorderDown}
	e := newEnv(t, rec)
	token := e.org(t, "acme")
	for _, target := range []string{"/v1/events", "/v1/events/0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a",
		"/v1/resources/secret/s-1/events", "/v1/traces/tr-1/events", "/v1/event-types", "/v1/aggregates"} {
		if r := e.get(t, token, target); r.status != http.StatusServiceUnavailable || r.err.Error.Code != "audit_unavailable" {
			t.Errorf("%s with the recorder down: %d %s", target, r.status, r.raw)
		}
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	if r := e.get(t, token, "/v1/events?limit=0"); r.status != 400 || rec.count() != 0 {
		t.Fatalf("bad request: %d, %d recorded", r.status, rec.count())
	}
	if r := e.get(t, token, "/v1/events"); r.status != 200 || rec.count() != 1 {
		t.Fatalf("good request: %d, %d recorded", r.status, rec.count())
	}
}

// Only read and admin keys query.
func TestQueryNeedsReadPermission(t *testing.T) {
	e := newEnv(t, nil)
	read := e.org(t, "acme")
	admin := e.key(t, "acme", "admin")
	ingest := e.key(t, "acme", "ingest")
	for _, tc := range []struct {
		token string
		want  int
	}{{read, 200}, {admin, 200}, {ingest, 403}, {adminToken, 403}, {"", 401}, {"garbage", 401}} {
		for _, target := range []string{"/v1/events", "/v1/event-types", "/v1/aggregates", "/v1/traces/t/events"} {
			if r := e.get(t, tc.token, target); r.status != tc.want {
				t.Errorf("%s with %.8q: %d, want %d", target, tc.token, r.status, tc.want)
			}
		}
	}
}

func TestGetEvent(t *testing.T) {
	e := newEnv(t, nil)
	token := e.org(t, "acme")
	e.org(t, "other")
	now := testClock()
	rng := rand.New(rand.NewPCG(13, 14))
	rows := genRows(rng, "acme", 3, now)
	rows[0].ExpiresAt, rows[1].ExpiresAt = now.Add(time.Hour), now.Add(-time.Hour)
	rows[0].EventMetadata = `{"nested":{"deep":[1,2,{"x":"é"}]},"n":1.50}`
	rows[0].ResourceType, rows[0].ResourceID, rows[0].ResourceName = "secret", "s-1", "DB_PASSWORD"
	theirs := genRows(rng, "other", 1, now)
	theirs[0].ExpiresAt = now.Add(time.Hour)
	e.load(t, append(rows, theirs...))
	e.load(t, rows[:1]) // a re-sent copy
	r := e.get(t, token, "/v1/events/"+rows[0].ID.String())
	if r.status != 200 {
		t.Fatalf("own event: %d %s", r.status, r.raw)
	}
	var got schema.StoredEvent
	if err := json.Unmarshal(r.raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != rows[0].ID.String() || string(got.Event.Event.Metadata) != rows[0].EventMetadata ||
		got.Resource == nil || got.Resource.Name != "DB_PASSWORD" || !got.Timestamp.Equal(rows[0].Timestamp) ||
		!got.ExpiresAt.Equal(rows[0].ExpiresAt) || !got.ReceivedAt.Equal(rows[0].ReceivedAt) || got.CreatedAt.IsZero() {
		t.Fatalf("event differs from what was stored: %s", r.raw)
	}
	for name, tc := range map[string]struct {
		id   string
		want int
	}{
		"expired":   {rows[1].ID.String(), 404},
		"absent":    {"0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a", 404},
		"other org": {theirs[0].ID.String(), 404},
		"uppercase": {"0192F8A4-6F7E-7CC3-9A51-5D0E4C1E2B3A", 404},
		"not uuid":  {"not-a-uuid", 400},
		"braces":    {"{0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a}", 400},
	} {
		if r := e.get(t, token, "/v1/events/"+tc.id); r.status != tc.want {
			t.Errorf("%s: %d %s, want %d", name, r.status, r.raw, tc.want)
		}
	}
	if r := e.get(t, token, "/v1/events/"+rows[0].ID.String()+"?limit=3"); r.status != 400 || r.err.Error.Details[0].Field != "limit" {
		t.Fatalf("a parameter on GET /v1/events/{id}: %d %s", r.status, r.raw)
	}
}

// The recorder sees the principal's org, never one from the request.
func TestAuditEventsGoToTheCallersOrg(t *testing.T) {
	rec := &fakeRecorder{}
	e := newEnv(t, rec)
	token := e.org(t, "acme")
	e.get(t, token, "/v1/events?eventType=create-secret")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.orgs) != 1 || rec.orgs[0] != "acme" || rec.events[0].Event.Type != "audit-log.query" {
		t.Fatalf("recorded %v %v", rec.orgs, rec.events)
	}
}
