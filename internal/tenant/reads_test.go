package tenant

import (
	"context"
	"strings"
	"testing"
)

// TestConfigReadsAreAudited: reading an org and listing its keys, by an
// admin key of the org or by the operator, are recorded as events of the
// org (org.read, api-key.list), like every other read.
func TestConfigReadsAreAudited(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	adminID, admin := e.mustKey(t, "acme", "admin")
	for _, c := range []struct{ path, token string }{
		{"/v1/orgs/acme", admin}, {"/v1/orgs/acme/keys", admin}, {"/v1/orgs/acme/keys", adminToken},
	} {
		if code, body := e.do(t, "GET", c.path, c.token, nil); code != 200 {
			t.Fatalf("GET %s: %d %v", c.path, code, body)
		}
	}
	if code, _ := e.do(t, "GET", "/v1/orgs/nope/keys", adminToken, nil); code != 404 {
		t.Fatalf("keys of an unknown org: %d", code)
	}
	rows, err := e.db.Conn.Query(context.Background(),
		"SELECT org_id, event_type, actor_type, actor_id, resource_type, resource_id FROM events "+
			"WHERE event_type IN ('org.read', 'api-key.list') ORDER BY timestamp")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var f [6]string
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join(f[:], " "))
	}
	want := []string{
		"acme org.read apiKey " + adminID + " org acme",
		"acme api-key.list apiKey " + adminID + " org acme",
		"acme api-key.list platform  org acme",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("read events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHostileKeyNamesRoundTrip: key names with backslashes, quotes,
// escape-like sequences and unicode are stored and listed exactly (the
// tenant store binds them through chconn, like every store).
func TestHostileKeyNamesRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.mustOrg(t, "acme", "pro")
	names := []string{`back\slash`, `\`, `ends with \`, `\N`, `\0 \t \n literal`, `it's`, `"quoted"`, "`tick`",
		"{x:String}", "'; DROP TABLE keys; --", "unicode é ✓ 日本 🙂", "[1,2]"}
	for _, n := range names {
		if code, body := e.do(t, "POST", "/v1/orgs/acme/keys", adminToken, map[string]string{"role": "read", "name": n}); code != 201 || body["name"] != n {
			t.Fatalf("create %q: %d %v", n, code, body)
		}
	}
	if err := e.svc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, body := e.do(t, "GET", "/v1/orgs/acme/keys", adminToken, nil)
	got := map[string]bool{}
	for _, k := range body["keys"].([]any) {
		got[k.(map[string]any)["name"].(string)] = true
	}
	for _, n := range names {
		if !got[n] {
			t.Errorf("key name %q not listed as stored (listed: %v)", n, got)
		}
	}
}
