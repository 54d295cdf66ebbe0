package lake

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Credentials are sealed, never shown nor logged; each scope sees only its
// own destinations; moving a destination requires its credentials again.
func TestAPIScopesAndCredentials(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	h := newHarness(t, db, "node-a", nil)
	id := h.mustCreate(t, "acme", map[string]any{"name": "lake", "target": s3Target(s3, "api")})

	code, out, raw := h.do(t, "acme", "GET", "/v1/lake/destinations/"+id, nil)
	if code != http.StatusOK || out["scope"] != "org" || out["orgId"] != "acme" {
		t.Fatalf("get: %d %s", code, raw)
	}
	tgt := out["target"].(map[string]any)["s3"].(map[string]any)
	if tgt["secretAccessKey"] != "********" || tgt["accessKeyId"] != "****0001" {
		t.Fatalf("credentials not masked: %s", raw)
	}
	var sealed string
	if err := db.Conn.QueryRow(t.Context(), "SELECT config_sealed FROM lake_destinations FINAL WHERE id = ?", id).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, s3.secret) || !strings.HasPrefix(sealed, "v1.") {
		t.Fatalf("stored in clear: %s", sealed)
	}

	// Scopes.
	for _, who := range []string{"beta", "operator"} {
		if code, _, raw := h.do(t, who, "GET", "/v1/lake/destinations/"+id, nil); code != http.StatusNotFound {
			t.Fatalf("%s reads acme's destination: %d %s", who, code, raw)
		}
		if code, _, raw := h.do(t, who, "PATCH", "/v1/lake/destinations/"+id, map[string]any{"paused": true}); code != http.StatusNotFound {
			t.Fatalf("%s changes acme's destination: %d %s", who, code, raw)
		}
		_, out, _ := h.do(t, who, "GET", "/v1/lake/destinations", nil)
		if n := len(out["destinations"].([]any)); n != 0 {
			t.Fatalf("%s lists %d destinations", who, n)
		}
	}
	opID := h.mustCreate(t, "operator", map[string]any{"name": "all orgs", "target": s3Target(s3, "all")})
	if _, out, _ := h.do(t, "operator", "GET", "/v1/lake/destinations/"+opID, nil); out["scope"] != "all" || out["orgId"] != nil {
		t.Fatalf("operator destination: %v", out)
	}
	req := httptestRequest(h, "acme", "read", "GET", "/v1/lake/destinations")
	if req != http.StatusForbidden {
		t.Fatalf("a read key: %d, want 403", req)
	}

	// Moving requires the credentials again; other changes keep them.
	moved := s3Target(s3, "elsewhere")
	moved["s3"].(map[string]any)["accessKeyId"] = "****0001"
	moved["s3"].(map[string]any)["secretAccessKey"] = "********"
	if code, _, raw := h.do(t, "acme", "PATCH", "/v1/lake/destinations/"+id, map[string]any{"target": moved}); code != http.StatusBadRequest || !strings.Contains(raw, "credentials again") {
		t.Fatalf("move with masked credentials: %d %s", code, raw)
	}
	delete(moved["s3"].(map[string]any), "accessKeyId")
	delete(moved["s3"].(map[string]any), "secretAccessKey")
	if code, _, raw := h.do(t, "acme", "PATCH", "/v1/lake/destinations/"+id, map[string]any{"target": moved}); code != http.StatusBadRequest {
		t.Fatalf("move without credentials: %d %s", code, raw)
	}
	same := s3Target(s3, "api")
	same["every"] = "1s"
	same["s3"].(map[string]any)["accessKeyId"] = "****0001"
	same["s3"].(map[string]any)["secretAccessKey"] = "********"
	if code, out, raw := h.do(t, "acme", "PATCH", "/v1/lake/destinations/"+id, map[string]any{"target": same}); code != http.StatusOK || out["target"].(map[string]any)["every"] != "1s" {
		t.Fatalf("change every: %d %s", code, raw)
	}
	snap := h.svc.open(mustDef(t, h, "acme", id))
	if snap.err != nil || snap.t.S3.SecretAccessKey != s3.secret {
		t.Fatalf("credentials lost by a change: %+v", snap)
	}
	if code, _, raw := h.do(t, "acme", "PATCH", "/v1/lake/destinations/"+id, map[string]any{"target": s3Target(s3, "elsewhere")}); code != http.StatusOK {
		t.Fatalf("move with credentials: %d %s", code, raw)
	}
	// Deliver something, so that the log has seen the credentials in use.
	now := time.Now().UTC()
	h.insert(t, now, events("acme", 5, now, 1), true)
	eventually(t, 60*time.Second, "a file", func() bool { _, n := manifestFiles(t, filepath.Join(s3.dir, "lake", "elsewhere")); return n == 5 })
	if strings.Contains(h.logs.String(), s3.secret) {
		t.Fatal("the secret is in the log")
	}
	if code, _, _ := h.do(t, "acme", "DELETE", "/v1/lake/destinations/"+id, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := h.do(t, "acme", "GET", "/v1/lake/destinations/"+id, nil); code != http.StatusNotFound {
		t.Fatalf("get after delete: %d", code)
	}
	if n := len(h.rec.Events()); n < 4 {
		t.Fatalf("recorded %d audit events, want create, update x2, delete", n)
	}
}

func mustDef(tb testing.TB, h *harness, org, id string) def {
	tb.Helper()
	d, err := h.svc.get(tb.Context(), org, id)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func httptestRequest(h *harness, org, role, method, path string) int {
	req, _ := http.NewRequest(method, path, nil)
	req.Header.Set("X-Test-Org", org)
	req.Header.Set("X-Test-Role", role)
	w := &statusRecorder{header: http.Header{}}
	h.h.ServeHTTP(w, req)
	return w.code
}

type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return len(b), nil
}
func (r *statusRecorder) WriteHeader(c int) { r.code = c }

// Hostile targets are refused with a field error; private and plain-http
// endpoints only with AllowPrivate.
func TestAPIRefusesBadTargets(t *testing.T) {
	db := migrated(t)
	h := newHarness(t, db, "node-a", func(c *Config) { c.AllowPrivate, c.MinEvery = false, 5*time.Minute })
	s3 := func(endpoint, bucket, prefix string) map[string]any {
		return map[string]any{"kind": "s3", "s3": map[string]any{"endpoint": endpoint, "bucket": bucket, "prefix": prefix}}
	}
	cases := []struct {
		name   string
		target map[string]any
		want   string
	}{
		{"loopback", s3("https://127.0.0.1:9000", "lake", ""), "non-public"},
		{"metadata endpoint", s3("https://169.254.169.254", "lake", ""), "non-public"},
		{"plain http", s3("http://s3.example.com", "lake", ""), "https"},
		{"path in endpoint", s3("https://s3.example.com/x", "lake", ""), "base URL"},
		{"credentials in endpoint", s3("https://a:b@s3.example.com", "lake", ""), "base URL"},
		{"glob in bucket", s3("https://s3.example.com", "la{k}e", ""), "bucket"},
		{"dot-dot prefix", s3("https://s3.example.com", "lake", "a/../b"), "prefix"},
		{"glob prefix", s3("https://s3.example.com", "lake", "a/*"), "prefix"},
		{"one credential", map[string]any{"kind": "s3", "s3": map[string]any{"endpoint": "https://s3.example.com", "bucket": "lake", "accessKeyId": "AKIA"}}, "both"},
		{"dir disabled", map[string]any{"kind": "dir", "dir": map[string]any{"path": "x"}}, "disabled"},
		{"every too short", map[string]any{"kind": "s3", "every": "1m", "s3": map[string]any{"endpoint": "https://203.0.113.9", "bucket": "lake"}}, "every"},
		{"unknown placeholder", map[string]any{"kind": "s3", "partition": "{secret}/", "s3": map[string]any{"endpoint": "https://203.0.113.9", "bucket": "lake"}}, "placeholder"},
		{"untimed partition", map[string]any{"kind": "s3", "partition": "org_id={org}/", "s3": map[string]any{"endpoint": "https://203.0.113.9", "bucket": "lake"}}, "bounded"},
		{"bad format", map[string]any{"kind": "s3", "format": "csv", "s3": map[string]any{"endpoint": "https://203.0.113.9", "bucket": "lake"}}, "format"},
		{"security lake without account", map[string]any{"kind": "s3", "layout": "security-lake", "securityLake": map[string]any{"source": "a", "region": "eu-west-1"}, "s3": map[string]any{"endpoint": "https://203.0.113.9", "bucket": "lake"}}, "accountId"},
	}
	for _, c := range cases {
		code, _, raw := h.do(t, "acme", "POST", "/v1/lake/destinations", map[string]any{"name": c.name, "target": c.target})
		if code != http.StatusBadRequest || !strings.Contains(raw, "invalid_lake_destination") || !strings.Contains(raw, c.want) {
			t.Errorf("%s: %d %s (want 400 mentioning %q)", c.name, code, raw, c.want)
		}
	}
}

// A directory destination writes under the server's lake root, in its
// org's own directory; manifests carry each file's SHA-256.
func TestDirDestination(t *testing.T) {
	db := migrated(t)
	root := t.TempDir()
	h := newHarness(t, db, "node-a", func(c *Config) { c.DirRoot, c.DirLocal = root, true })
	h.mustCreate(t, "acme", map[string]any{"name": "dir", "target": map[string]any{"kind": "dir", "every": "100ms", "dir": map[string]any{"path": "exports/audit"}}})
	h.mustCreate(t, "operator", map[string]any{"name": "all", "target": map[string]any{"kind": "dir", "every": "100ms", "dir": map[string]any{"path": "everything"}}})
	now := time.Now().UTC()
	acme := h.insert(t, now, events("acme", 12, now, 2), false)
	beta := h.insert(t, now, events("beta", 7, now, 1), true)
	orgDir := filepath.Join(root, "org", "acme", "exports", "audit")
	allDir := filepath.Join(root, "all", "everything")
	eventually(t, 60*time.Second, "both destinations", func() bool {
		_, a := manifestFiles(t, orgDir)
		_, b := manifestFiles(t, allDir)
		return a == 12 && b == 19
	})
	deliveredOnce(t, orgDir, acme)
	deliveredOnce(t, allDir, append(acme, beta...))
	for part, m := range manifests(t, orgDir) {
		for _, f := range m.Files {
			b, err := os.ReadFile(filepath.Join(orgDir, part, f.Name))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if f.Checksum != "sha256:"+hex.EncodeToString(sum[:]) || f.Bytes != uint64(len(b)) {
				t.Fatalf("manifest says %s, %d bytes; file has %x, %d", f.Checksum, f.Bytes, sum, len(b))
			}
		}
	}
}

// The continuous delivery takes events received since the destination's
// creation; a backfill delivers the older ones of a time range, once;
// an overlapping backfill is refused.
func TestBackfill(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	h := newHarness(t, db, "node-a", nil)
	now := time.Now().UTC()
	old := h.insert(t, now.Add(-time.Hour), events("acme", 30, now.Add(-time.Hour), 3), true)
	time.Sleep(5 * time.Millisecond)
	id := h.mustCreate(t, "acme", map[string]any{"name": "lake", "target": s3Target(s3, "bf")})
	time.Sleep(5 * time.Millisecond)
	fresh := h.insert(t, time.Now(), events("acme", 10, time.Now(), 1), true)
	root := filepath.Join(s3.dir, "lake", "bf")
	eventually(t, 60*time.Second, "the new events", func() bool { _, n := manifestFiles(t, root); return n == 10 })
	deliveredOnce(t, root, fresh)

	body := map[string]any{"from": now.Add(-10 * 24 * time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).Format(time.RFC3339)}
	code, out, raw := h.do(t, "acme", "POST", "/v1/lake/destinations/"+id+"/backfills", body)
	if code != http.StatusAccepted || out["state"] != "pending" {
		t.Fatalf("backfill: %d %s", code, raw)
	}
	eventually(t, 120*time.Second, "the backfill", func() bool {
		_, out, _ := h.do(t, "acme", "GET", "/v1/lake/destinations/"+id+"/backfills", nil)
		bs := out["backfills"].([]any)
		return len(bs) == 1 && bs[0].(map[string]any)["state"] == "done"
	})
	deliveredOnce(t, root, append(old, fresh...))
	code, _, raw = h.do(t, "acme", "POST", "/v1/lake/destinations/"+id+"/backfills", map[string]any{
		"from": now.Add(-2 * 24 * time.Hour).Format(time.RFC3339), "to": now.Format(time.RFC3339)})
	if code != http.StatusConflict || !strings.Contains(raw, "backfill_overlap") {
		t.Fatalf("overlapping backfill: %d %s", code, raw)
	}
	if code, _, _ := h.do(t, "acme", "POST", "/v1/lake/destinations/"+id+"/backfills", map[string]any{"from": now.Format(time.RFC3339), "to": now.Add(-time.Hour).Format(time.RFC3339)}); code != http.StatusBadRequest {
		t.Fatalf("to before from: %d", code)
	}
}

// A dir destination met by a server without -lake-dir fails visibly and
// writes nothing (never under "/").
func TestDirDestinationWithoutRoot(t *testing.T) {
	db := migrated(t)
	root := t.TempDir()
	h := newHarness(t, db, "node-a", func(c *Config) { c.DirRoot, c.DirLocal = root, true })
	id := h.mustCreate(t, "acme", map[string]any{"name": "dir", "target": map[string]any{"kind": "dir", "every": "100ms", "dir": map[string]any{"path": "x"}}})
	h.stop()
	h.start(t, nil) // no DirRoot
	now := time.Now().UTC()
	h.insert(t, now, events("acme", 3, now, 1), true)
	code, out, raw := h.do(t, "acme", "GET", "/v1/lake/destinations/"+id, nil)
	if code != http.StatusOK || out["status"].(map[string]any)["state"] != StateFailing || !strings.Contains(raw, "disabled") {
		t.Fatalf("status without a root: %d %s", code, raw)
	}
	if _, err := os.Stat("/org/acme"); err == nil {
		t.Fatal("wrote under /")
	}
}
