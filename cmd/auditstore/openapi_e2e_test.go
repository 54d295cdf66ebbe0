package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/servertest"
)

// TestOpenAPIAnswersValidate calls every described operation of a real
// server, answers of success and of failure, and validates each request
// and answer against the description.
func TestOpenAPIAnswersValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	// The quarantine holds an entry of no events (replayable) and a damaged
	// record (only discardable), planted before the server starts.
	data := t.TempDir()
	plantQuarantine(t, data, map[string]any{"id": "test-1-a", "events": 0, "record": []byte{1, 0}},
		map[string]any{"id": "test-2-b", "events": 0, "damaged": true, "record": []byte{0xff}})
	s := servertest.StartIn(t, data, "-max-events", "50", "-allow-private-destinations", "-lake-dir", t.TempDir())
	c := &checker{t: t, s: s, v: newSpecValidator(t), ops: specOperations(t), seen: map[string]bool{}}
	admin := servertest.AdminToken
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	none, wrong := callOpt{}, callOpt{invalid: true}

	c.call("GET", "/healthz", "", nil, 200, none)
	// The planted quarantine makes the server degraded; only the operator
	// learns why.
	if out := string(c.call("GET", "/readyz", "", nil, 200, none)); out != `{"status":"degraded"}` {
		t.Errorf("public /readyz = %s, want the status alone", out)
	}
	if out := string(c.call("GET", "/readyz", admin, nil, 200, none)); !strings.Contains(out, `"warnings"`) || !strings.Contains(out, `"clickhouse"`) {
		t.Errorf("operator /readyz = %s, want warnings and clickhouse", out)
	}
	c.call("GET", "/metrics", admin, nil, 200, none)
	c.call("GET", "/metrics", "", nil, 401, wrong)
	c.call("GET", "/openapi.json", "", nil, 200, none)

	// Orgs and keys.
	c.call("POST", "/v1/orgs", admin, js(map[string]string{"id": "acme", "plan": "pro"}), 201, none)
	c.call("POST", "/v1/orgs", admin, js(map[string]string{"id": "acme", "plan": "pro"}), 409, none)
	c.call("POST", "/v1/orgs", admin, js(map[string]string{"id": "-bad", "plan": "pro"}), 400, wrong)
	c.call("POST", "/v1/orgs", "", js(map[string]string{"id": "x", "plan": "pro"}), 401, wrong)
	c.call("GET", "/v1/orgs/acme", admin, nil, 200, none)
	c.call("GET", "/v1/orgs/nobody", admin, nil, 404, none)
	c.call("PATCH", "/v1/orgs/acme", admin, js(map[string]string{"plan": "enterprise"}), 200, none)
	keys := map[string]string{}
	for _, role := range []string{"ingest", "read", "admin", "spare"} {
		r := role
		if role == "spare" {
			r = "read"
		}
		var k struct{ ID, Key string }
		_ = json.Unmarshal(c.call("POST", "/v1/orgs/acme/keys", admin, js(map[string]string{"role": r, "name": role}), 201, none), &k)
		keys[role], keys[role+"-id"] = k.Key, k.ID
	}
	c.call("GET", "/v1/orgs/acme/keys", keys["admin"], nil, 200, none)
	c.call("DELETE", "/v1/orgs/acme/keys/"+keys["spare-id"], admin, nil, 204, none)
	c.call("POST", "/v1/orgs/acme/keys", keys["read"], js(map[string]string{"role": "read", "name": "x"}), 403, none)
	c.call("PATCH", "/v1/orgs/acme/settings", keys["admin"], js(map[string]string{"traceUrl": "https://logs.example.com/?t={traceId}"}), 200, none)
	c.call("PATCH", "/v1/orgs/acme/settings", keys["admin"], js(map[string]string{"traceUrl": "javascript:alert({traceId})"}), 400, wrong)
	c.call("PATCH", "/v1/orgs/acme/settings", keys["read"], js(map[string]string{"traceUrl": ""}), 403, none)
	c.call("GET", "/v1/settings", keys["read"], nil, 200, none)
	c.call("GET", "/v1/settings", admin, nil, 403, none)

	// Events in every body form and encoding.
	ev := func(typ string) map[string]any {
		return map[string]any{"id": uuid.NewString(), "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
			"event":    map[string]any{"type": typ, "metadata": map[string]any{"path": "/"}},
			"actor":    map[string]any{"type": "user", "metadata": map[string]any{"userId": "u-1", "email": "ada@example.com"}},
			"resource": map[string]any{"type": "secret", "id": "s-1", "name": "DB"}, "traceId": "t-1",
			"ipAddress": "203.0.113.7", "userAgentType": "web", "projectId": "p-1"}
	}
	first := ev("create-secret")
	ing := keys["ingest"]
	c.call("POST", "/v1/events", ing, js(first), 202, none)
	c.call("POST", "/v1/events", ing, js([]any{ev("get-secrets"), ev("get-secrets")}), 202, none)
	nd := string(js(ev("USER_LOGIN"))) + "\n" + string(js(ev("USER_LOGIN"))) + "\n"
	c.call("POST", "/v1/events", ing, []byte(nd), 202, callOpt{header: []string{"Content-Type", "application/x-ndjson"}})
	c.call("POST", "/v1/events", ing, js([]any{ev("api_key.create")}), 202, callOpt{encoding: "gzip"})
	c.call("POST", "/v1/events", ing, js([]any{ev("execute")}), 202, callOpt{encoding: "zstd"})
	bad := ev("x")
	bad["actor"] = map[string]any{"type": "robot"}
	out := c.call("POST", "/v1/events", ing, js([]any{ev("x"), bad}), 400, wrong)
	if !strings.Contains(string(out), `"index":1`) {
		t.Errorf("400 names no index 1: %s", out)
	}
	c.call("POST", "/v1/events", ing, []byte("hello"), 415, callOpt{header: []string{"Content-Type", "text/plain"}, invalid: true})
	many := make([]any, 51)
	for i := range many {
		many[i] = ev("bulk")
	}
	c.call("POST", "/v1/events", ing, js(many), 413, none)
	c.call("POST", "/v1/events", keys["read"], js(ev("x")), 403, none)

	// Reads.
	rd := keys["read"]
	s.WaitTotal(t, rd, "projectId=p-1", 7)
	var pg struct{ NextCursor string }
	_ = json.Unmarshal(c.call("GET", "/v1/events?limit=2&projectId=p-1", rd, nil, 200, none), &pg)
	c.call("GET", "/v1/events?limit=2&projectId=p-1&cursor="+pg.NextCursor, rd, nil, 200, none)
	c.call("GET", "/v1/events?bogus=1", rd, nil, 400, none)
	c.call("GET", "/v1/events?metadata.path=/&eventType=create-secret&eventType=USER_LOGIN&sort=eventType&order=asc&page=1", rd, nil, 200, none)
	c.call("GET", "/v1/events", "nope", nil, 401, none)
	c.call("GET", "/v1/events/"+first["id"].(string), rd, nil, 200, none)
	c.call("GET", "/v1/events/"+uuid.NewString(), rd, nil, 404, none)
	c.call("GET", "/v1/resources/secret/s-1/events?limit=5", rd, nil, 200, none)
	c.call("GET", "/v1/traces/t-1/events", rd, nil, 200, none)
	c.call("GET", "/v1/event-types?from=2020-01-01T00:00:00Z", rd, nil, 200, none)
	c.call("GET", "/v1/aggregates?groupBy=eventType,actorType&interval=hour&metrics=count,actors,resources,ips&top=3", rd, nil, 200, none)
	c.call("GET", "/v1/aggregates?groupBy=nonsense", rd, nil, 400, wrong)
	for _, f := range []string{"parquet", "arrow", "csv", "ndjson"} {
		c.call("GET", "/v1/export?format="+f+"&projectId=p-1", rd, nil, 200, none)
	}
	c.call("GET", "/v1/export?format=xls", rd, nil, 400, wrong)

	c.call("GET", "/v1/events?includeAccess=true&limit=5", rd, nil, 200, none)
	c.call("GET", "/v1/aggregates?groupBy=eventType&includeAccess=true", rd, nil, 200, none)
	c.call("GET", "/v1/events?includeAccess=maybe", rd, nil, 400, wrong)
	c.call("GET", "/v1/export?format=ndjson&includeAccess=true", rd, nil, 200, none)

	// Read sessions.
	var rs struct{ Session string }
	_ = json.Unmarshal(c.call("POST", "/v1/read-sessions", rd, nil, 201, callOpt{header: []string{"Audit-Session-Client", "console"}}), &rs)
	c.call("GET", "/v1/events?limit=1", rd, nil, 200, callOpt{header: []string{"Audit-Session", rs.Session}})
	c.call("POST", "/v1/read-sessions", "", nil, 401, wrong)

	// Viewer tokens and sessions.
	var vt struct{ ID, Token string }
	_ = json.Unmarshal(c.call("POST", "/v1/viewer-tokens", keys["admin"], js(map[string]any{"viewerId": "u-1", "ttlSeconds": 600,
		"filters": map[string]string{"projectId": "p-1"}, "capabilities": []string{"read", "export"}}), 201, none), &vt)
	c.call("POST", "/v1/viewer-tokens", keys["admin"], js(map[string]any{"viewerId": "u-1", "ttlSeconds": 5}), 400, wrong)
	c.call("POST", "/v1/viewer-tokens", rd, js(map[string]any{"viewerId": "u-1"}), 403, none)
	var vs struct{ Session string }
	_ = json.Unmarshal(c.call("POST", "/v1/viewer-sessions", "", js(map[string]string{"token": vt.Token}), 201, none), &vs)
	c.call("POST", "/v1/viewer-sessions", "", js(map[string]string{"token": vt.Token}), 401, none)
	c.call("GET", "/v1/events?limit=1", vs.Session, nil, 200, none)
	c.call("GET", "/v1/settings", vs.Session, nil, 200, none)
	c.call("POST", "/v1/read-sessions", vs.Session, nil, 400, none)
	c.call("DELETE", "/v1/viewer-sessions/"+vt.ID, keys["admin"], nil, 204, none)
	c.call("DELETE", "/v1/viewer-sessions/"+uuid.NewString(), keys["admin"], nil, 404, none)
	c.call("GET", "/v1/events?limit=1", vs.Session, nil, 401, none)

	// Data-lake destinations: a dir destination under -lake-dir.
	var ld struct{ ID string }
	_ = json.Unmarshal(c.call("POST", "/v1/lake/destinations", keys["admin"], js(map[string]any{"name": "lake",
		"target": map[string]any{"kind": "dir", "dir": map[string]any{"path": "audit"}, "every": "5m"}}), 201, none), &ld)
	c.call("POST", "/v1/lake/destinations", keys["admin"], js(map[string]any{"name": "s3",
		"target": map[string]any{"kind": "s3", "s3": map[string]any{"endpoint": "http://127.0.0.1:9", "bucket": "audit", "pathStyle": true,
			"accessKeyId": "AKIAEXAMPLEEXAMPLE", "secretAccessKey": "secret-secret"}}}), 201, none)
	c.call("POST", "/v1/lake/destinations", keys["admin"], js(map[string]any{"name": "x", "target": map[string]any{"kind": "ftp"}}), 400, wrong)
	c.call("GET", "/v1/lake/destinations", keys["admin"], nil, 200, none)
	c.call("GET", "/v1/lake/destinations", admin, nil, 200, none)
	c.call("GET", "/v1/lake/destinations", rd, nil, 403, none)
	c.call("GET", "/v1/lake/destinations/"+ld.ID, keys["admin"], nil, 200, none)
	c.call("GET", "/v1/lake/destinations/"+ld.ID, admin, nil, 404, none)
	c.call("PATCH", "/v1/lake/destinations/"+ld.ID, keys["admin"], js(map[string]any{"paused": true, "name": "lake 2"}), 200, none)
	c.call("POST", "/v1/lake/destinations/"+ld.ID+"/backfills", keys["admin"], js(map[string]string{"from": "2020-01-01T00:00:00Z", "to": "2020-01-03T00:00:00Z"}), 202, none)
	c.call("POST", "/v1/lake/destinations/"+ld.ID+"/backfills", keys["admin"], js(map[string]string{"from": "2020-01-02T00:00:00Z", "to": "2020-01-04T00:00:00Z"}), 409, none)
	c.call("POST", "/v1/lake/destinations/"+ld.ID+"/backfills", keys["admin"], js(map[string]string{"from": "2020-01-02T00:00:00Z", "to": "2020-01-01T00:00:00Z"}), 400, none)
	c.call("GET", "/v1/lake/destinations/"+ld.ID+"/backfills", keys["admin"], nil, 200, none)
	c.call("DELETE", "/v1/lake/destinations/"+ld.ID, keys["admin"], nil, 204, none)
	c.call("GET", "/v1/lake/destinations/"+ld.ID, keys["admin"], nil, 404, none)

	// The quarantine: the operator's.
	c.call("GET", "/v1/quarantine", admin, nil, 200, none)
	c.call("GET", "/v1/quarantine", keys["admin"], nil, 403, none)
	c.call("POST", "/v1/quarantine/test-2-b/replay", admin, nil, 409, none)
	if out := string(c.call("POST", "/v1/quarantine/test-1-a/replay", admin, nil, 202, none)); out != `{"id":"test-1-a","replayed":0}` {
		t.Errorf("replay = %s", out)
	}
	c.call("POST", "/v1/quarantine/test-1-a/replay", admin, nil, 404, none)
	c.call("DELETE", "/v1/quarantine/test-2-b", admin, nil, 204, none)
	c.call("DELETE", "/v1/quarantine/test-2-b", admin, nil, 404, none)

	// Streams, to a destination of ours.
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer dest.Close()
	ad := keys["admin"]
	var st struct{ ID string }
	_ = json.Unmarshal(c.call("POST", "/v1/streams", ad, js(map[string]any{"name": "tool", "provider": "custom",
		"config": map[string]any{"url": dest.URL, "headers": map[string]string{"X-Token": "secret"}},
		"filter": map[string]any{"eventTypes": []string{"create-secret"}}}), 201, none), &st)
	c.call("POST", "/v1/streams", ad, js(map[string]any{"name": "x", "provider": "fax"}), 400, wrong)
	c.call("GET", "/v1/streams", ad, nil, 200, none)
	c.call("GET", "/v1/streams/"+st.ID, ad, nil, 200, none)
	c.call("PATCH", "/v1/streams/"+st.ID, ad, js(map[string]any{"paused": true}), 200, none)
	c.call("POST", "/v1/streams/"+st.ID+"/test", ad, nil, 200, none)
	c.call("GET", "/v1/streams", rd, nil, 403, none)
	c.call("DELETE", "/v1/streams/"+st.ID, ad, nil, 204, none)
	c.call("GET", "/v1/streams/"+st.ID, ad, nil, 404, none)

	// Every described operation was called and answered with success.
	var missing []string
	for path, methods := range c.ops {
		for m := range methods {
			ok := false
			for k := range c.seen {
				if strings.HasPrefix(k, m+" "+path+" 2") {
					ok = true
				}
			}
			if !ok {
				missing = append(missing, m+" "+path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("described operations this test never saw succeed: %s (extend it)", strings.Join(missing, ", "))
	}

}

// plantQuarantine writes quarantine entries into the write-ahead log
// directory of the data directory dataDir, as the server keeps them.
func plantQuarantine(t *testing.T, dataDir string, entries ...map[string]any) {
	t.Helper()
	dir := filepath.Join(dataDir, "wal", "quarantine")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		e["quarantinedAt"], e["lsn"], e["reason"] = time.Now().UTC().Format(time.RFC3339Nano), i+1, "planted by the test"
		b, _ := json.Marshal(e)
		if err := os.WriteFile(filepath.Join(dir, e["id"].(string)+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
