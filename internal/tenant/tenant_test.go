package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/servertest"
	"github.com/auditstore/auditstore/internal/testkit"
	"github.com/auditstore/auditstore/schema"
)

const adminToken = "test-admin-token-0123456789"

type env struct {
	db   *chtest.DB
	svc  *Service
	h    http.Handler
	logs *servertest.SyncBuffer
}

func newService(tb testing.TB, db *chtest.DB, logs io.Writer, refresh time.Duration) *Service {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := DefaultConfig()
	cfg.AdminToken = adminToken
	cfg.RefreshInterval = refresh
	cfg.Plans = schema.Plans{"pro": {Name: "pro", Retention: 90 * 24 * time.Hour},
		"enterprise": {Name: "enterprise", Retention: 365 * 24 * time.Hour}}
	rec := &chtest.DirectRecorder{Conn: db.Conn}
	svc, err := New(db.Conn, rec, cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	rec.Plans = svc
	if err := svc.Refresh(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return svc
}

// router is the tenant routes plus one stand-in endpoint per family of the
// feature endpoints, guarded exactly as the real handlers are.
func router(svc *Service, log *slog.Logger) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.Errors(log), svc.Middleware())
	svc.Routes(r)
	ok := func(c *gin.Context) {
		p, _ := schema.PrincipalFrom(c.Request.Context())
		c.JSON(http.StatusOK, gin.H{"org": p.OrgID})
	}
	r.POST("/v1/events", Require(schema.PermWriteEvents), ok)
	r.GET("/v1/events", Require(schema.PermReadEvents), ok)
	r.GET("/v1/export", Require(schema.PermReadEvents), ok)
	r.GET("/v1/streams", Require(schema.PermManageOrg), ok)
	return r
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	db := testkit.Migrated(tb)
	logs := &servertest.SyncBuffer{}
	svc := newService(tb, db, logs, time.Hour)
	return &env{db: db, svc: svc, logs: logs, h: router(svc, slog.New(slog.NewTextHandler(logs, nil)))}
}

func (e *env) do(tb testing.TB, method, path, token string, body any) (int, map[string]any) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func (e *env) mustOrg(tb testing.TB, id, plan string) {
	tb.Helper()
	if code, body := e.do(tb, "POST", "/v1/orgs", adminToken, map[string]string{"id": id, "plan": plan}); code != http.StatusCreated {
		tb.Fatalf("create org %s: %d %v", id, code, body)
	}
}

func (e *env) mustKey(tb testing.TB, org, role string) (id, token string) {
	tb.Helper()
	code, body := e.do(tb, "POST", "/v1/orgs/"+org+"/keys", adminToken, map[string]string{"role": role, "name": role + " key"})
	if code != http.StatusCreated {
		tb.Fatalf("create %s key: %d %v", role, code, body)
	}
	return body["id"].(string), body["key"].(string)
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestRolesOnEveryEndpointFamily(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	e.mustOrg(t, "other", "pro")
	_, ingest := e.mustKey(t, "acme", "ingest")
	_, read := e.mustKey(t, "acme", "read")
	_, admin := e.mustKey(t, "acme", "admin")
	_, otherAdmin := e.mustKey(t, "other", "admin")
	revokedID, revoked := e.mustKey(t, "acme", "admin")
	if code, _ := e.do(t, "DELETE", "/v1/orgs/acme/keys/"+revokedID, admin, nil); code != http.StatusNoContent {
		t.Fatalf("revoke=%d, want 204", code)
	}
	victimID, _ := e.mustKey(t, "acme", "read")

	creds := map[string]string{
		"operator": adminToken, "ingest": ingest, "read": read, "admin": admin, "other-admin": otherAdmin,
		"none": "", "malformed": "not-a-key", "revoked": revoked,
		"forged": revoked[:len(revoked)-4] + "AAAA", // a live key id with a wrong secret
	}
	type want map[string]int // credential → status
	endpoints := []struct {
		method, path string
		body         any
		want         want
	}{
		{"POST", "/v1/orgs", map[string]string{"id": "new-%s", "plan": "pro"},
			want{"operator": 201, "ingest": 403, "read": 403, "admin": 403, "other-admin": 403}},
		{"GET", "/v1/orgs/acme", nil, want{"operator": 200, "ingest": 403, "read": 403, "admin": 200, "other-admin": 403}},
		{"PATCH", "/v1/orgs/acme", map[string]string{"plan": "pro"},
			want{"operator": 200, "ingest": 403, "read": 403, "admin": 403, "other-admin": 403}},
		{"POST", "/v1/orgs/acme/keys", map[string]string{"role": "read", "name": "x"},
			want{"operator": 201, "ingest": 403, "read": 403, "admin": 201, "other-admin": 403}},
		{"GET", "/v1/orgs/acme/keys", nil, want{"operator": 200, "ingest": 403, "read": 403, "admin": 200, "other-admin": 403}},
		{"DELETE", "/v1/orgs/acme/keys/" + victimID, nil,
			want{"operator": 204, "ingest": 403, "read": 403, "admin": 204, "other-admin": 403}},
		{"POST", "/v1/events", nil, want{"operator": 403, "ingest": 200, "read": 403, "admin": 403, "other-admin": 403}},
		{"GET", "/v1/events", nil, want{"operator": 403, "ingest": 403, "read": 200, "admin": 200, "other-admin": 200}},
		{"GET", "/v1/export", nil, want{"operator": 403, "ingest": 403, "read": 200, "admin": 200, "other-admin": 200}},
		{"GET", "/v1/streams", nil, want{"operator": 403, "ingest": 403, "read": 403, "admin": 200, "other-admin": 200}},
	}
	for _, ep := range endpoints {
		for cred, token := range creds {
			wantStatus, ok := ep.want[cred]
			if !ok {
				wantStatus = http.StatusUnauthorized // none, malformed, revoked, forged
			}
			t.Run(fmt.Sprintf("%s %s as %s", ep.method, ep.path, cred), func(t *testing.T) {
				body := ep.body
				if m, ok := body.(map[string]string); ok && strings.Contains(m["id"], "%s") {
					body = map[string]string{"id": fmt.Sprintf(m["id"], cred), "plan": m["plan"]}
				}
				code, resp := e.do(t, ep.method, ep.path, token, body)
				if code != wantStatus {
					t.Fatalf("status=%d, want %d (%v)", code, wantStatus, resp)
				}
				if code >= 400 && errCode(resp) == "" {
					t.Fatalf("error without a code: %v", resp)
				}
			})
		}
	}
}

func TestOrgLifecycle(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	for _, tt := range []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"duplicate", "POST", "/v1/orgs", map[string]string{"id": "acme", "plan": "pro"}, 409, "org_exists"},
		{"bad id", "POST", "/v1/orgs", map[string]string{"id": "a b'; DROP TABLE orgs", "plan": "pro"}, 400, "invalid_org_id"},
		{"empty id", "POST", "/v1/orgs", map[string]string{"id": "", "plan": "pro"}, 400, "invalid_org_id"},
		{"unknown plan", "POST", "/v1/orgs", map[string]string{"id": "x", "plan": "gold"}, 400, "unknown_plan"},
		{"unknown field", "POST", "/v1/orgs", map[string]string{"id": "y", "plan": "pro", "owner": "me"}, 400, "invalid_body"},
		{"missing org", "GET", "/v1/orgs/nope", nil, 404, "org_not_found"},
		{"patch unknown plan", "PATCH", "/v1/orgs/acme", map[string]string{"plan": "gold"}, 400, "unknown_plan"},
		{"keys of missing org", "POST", "/v1/orgs/nope/keys", map[string]string{"role": "read"}, 404, "org_not_found"},
		{"bad role", "POST", "/v1/orgs/acme/keys", map[string]string{"role": "root"}, 400, "invalid_role"},
		{"revoke unknown key", "DELETE", "/v1/orgs/acme/keys/aaaaaaaaaaaaaaaa", nil, 404, "key_not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.do(t, tt.method, tt.path, adminToken, tt.body)
			if code != tt.status || errCode(body) != tt.code {
				t.Fatalf("got %d %q, want %d %q (%v)", code, errCode(body), tt.status, tt.code, body)
			}
		})
	}
	code, body := e.do(t, "PATCH", "/v1/orgs/acme", adminToken, map[string]string{"plan": "enterprise"})
	if code != 200 || body["plan"] != "enterprise" {
		t.Fatalf("patch=%d %v, want 200 with plan enterprise", code, body)
	}
	code, body = e.do(t, "GET", "/v1/orgs/acme", adminToken, nil)
	if code != 200 || body["plan"] != "enterprise" {
		t.Fatalf("get after patch=%d %v", code, body)
	}
}

// A plan change gives new events the new retention; earlier events keep theirs.
func TestPlanChangeAffectsNewEventsOnly(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro") // records org.create under pro (90 days)
	if code, _ := e.do(t, "PATCH", "/v1/orgs/acme", adminToken, map[string]string{"plan": "enterprise"}); code != 200 {
		t.Fatal(code)
	}
	e.mustKey(t, "acme", "read") // records api-key.create under enterprise (365 days)
	rows, err := e.db.Conn.Query(context.Background(),
		"SELECT event_type, dateDiff('day', received_at, expires_at) FROM events WHERE org_id = 'acme' ORDER BY event_type")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var typ string
		var days int64
		if err := rows.Scan(&typ, &days); err != nil {
			t.Fatal(err)
		}
		got[typ] = days
	}
	want := map[string]int64{"org.create": 90, "org.update-plan": 365, "api-key.create": 365}
	for typ, days := range want {
		if got[typ] != days {
			t.Errorf("%s retention=%d days, want %d (all: %v)", typ, got[typ], days, got)
		}
	}
}

func TestKeysAreNeverStoredOrShownInClear(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	id, token := e.mustKey(t, "acme", "admin")
	secret := token[len(token)-secretLen:]

	code, body := e.do(t, "GET", "/v1/orgs/acme/keys", token, nil)
	if code != 200 {
		t.Fatalf("list=%d %v", code, body)
	}
	raw, _ := json.Marshal(body)
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), `"key"`) || strings.Contains(string(raw), "hash") {
		t.Fatalf("key list exposes a secret: %s", raw)
	}
	if !strings.Contains(string(raw), id) {
		t.Fatalf("key list lacks key %s: %s", id, raw)
	}
	// Every stored byte of every table of the database, as text.
	for _, table := range []string{"api_keys", "orgs", "events"} {
		var dump string
		if err := e.db.Conn.QueryRow(context.Background(),
			"SELECT toString(groupArray(tuple(*))) FROM "+table).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dump, secret) || strings.Contains(dump, adminToken) {
			t.Fatalf("table %s holds a secret in clear", table)
		}
	}
	e.do(t, "GET", "/v1/orgs/acme", "ask_"+id+"_"+strings.Repeat("x", secretLen), nil) // a failed attempt is logged nowhere in clear either
	if logs := e.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, adminToken) {
		t.Fatalf("logs hold a secret:\n%s", logs)
	}
}

func TestRevocationReachesOtherInstances(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	id, token := e.mustKey(t, "acme", "read")

	// A second server instance on the same ClickHouse, refreshing every 200ms.
	other := newService(t, e.db, io.Discard, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go other.Run(ctx)
	if _, err := other.Authenticate(ctx, token); err != nil {
		t.Fatalf("other instance refuses a live key: %v", err)
	}
	if code, _ := e.do(t, "DELETE", "/v1/orgs/acme/keys/"+id, adminToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke=%d", code)
	}
	if _, err := e.svc.Authenticate(ctx, token); schema.KindOf(err) != schema.KindUnauthenticated {
		t.Fatalf("revoking instance still accepts the key: %v", err)
	}
	// The documented bound is one refresh interval plus a query; allow
	// generously more so a loaded machine does not flake.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := other.Authenticate(ctx, token)
		if schema.KindOf(err) == schema.KindUnauthenticated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other instance still accepts a key revoked 10s ago: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKeyCreatedElsewhereIsAcceptedAtOnce(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	other := newService(t, e.db, io.Discard, time.Hour) // never refreshes by itself
	_, token := e.mustKey(t, "acme", "ingest")
	p, err := other.Authenticate(context.Background(), token)
	if err != nil || p.OrgID != "acme" || p.Role != schema.RoleIngest {
		t.Fatalf("principal=%+v err=%v, want acme/ingest", p, err)
	}
}

func TestKeyChangesAreAudited(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	adminID, admin := e.mustKey(t, "acme", "admin")
	code, body := e.do(t, "POST", "/v1/orgs/acme/keys", admin, map[string]string{"role": "read", "name": "dashboards"})
	if code != 201 {
		t.Fatal(code, body)
	}
	newID := body["id"].(string)
	if code, _ := e.do(t, "DELETE", "/v1/orgs/acme/keys/"+newID, admin, nil); code != 204 {
		t.Fatal(code)
	}
	rows, err := e.db.Conn.Query(context.Background(),
		"SELECT event_type, actor_type, actor_id, resource_id FROM events WHERE org_id = 'acme' AND actor_type = 'apiKey' ORDER BY timestamp")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var typ, actorType, actorID, res string
		if err := rows.Scan(&typ, &actorType, &actorID, &res); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{typ, actorType, actorID, res}, " "))
	}
	want := []string{"api-key.create apiKey " + adminID + " " + newID, "api-key.revoke apiKey " + adminID + " " + newID}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit events by the admin key:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseToken(t *testing.T) {
	id, token, hash := newKey()
	gotID, gotHash, ok := parseToken(token)
	if !ok || gotID != id || gotHash != hash {
		t.Fatalf("parseToken(newKey) = %q %q %v, want %q %q true", gotID, gotHash, ok, id, hash)
	}
	for _, bad := range []string{"", "ask_", token + "x", token[:len(token)-1], strings.Replace(token, "ask_", "asx_", 1),
		"ask_AAAAAAAAAAAAAAAA_" + token[len(token)-secretLen:], "ask_" + id + "-" + token[len(token)-secretLen:]} {
		if _, _, ok := parseToken(bad); ok {
			t.Errorf("parseToken(%q) accepted", bad)
		}
	}
}

func TestKeyNamesKeepBackslashesAndQuotes(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	name := `ci\deploy "prod" \n`
	code, body := e.do(t, "POST", "/v1/orgs/acme/keys", adminToken, map[string]string{"role": "read", "name": name})
	if code != 201 || body["name"] != name {
		t.Fatalf("create: %d %v", code, body)
	}
	if err := e.svc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, body = e.do(t, "GET", "/v1/orgs/acme/keys", adminToken, nil)
	keys, _ := body["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["name"] != name {
		t.Fatalf("stored name: %v, want %q", keys, name)
	}
}
