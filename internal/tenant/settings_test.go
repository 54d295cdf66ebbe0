package tenant

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestCheckTraceURL(t *testing.T) {
	for _, ok := range []string{
		"",
		"https://logs.example.com/search?trace={traceId}",
		"http://127.0.0.1:3000/explore#{traceId}",
		"https://logs.example.com/t/{traceId}/spans",
		"https://logs.example.com?q={traceId}",
	} {
		if err := CheckTraceURL(ok); err != nil {
			t.Errorf("%q: %v, want valid", ok, err)
		}
	}
	for _, bad := range []string{
		"javascript:alert({traceId})",
		"data:text/html,<script>{traceId}</script>",
		"JavaScript://x/%0aalert({traceId})",
		"ftp://logs.example.com/{traceId}",
		"//logs.example.com/{traceId}",
		"/relative/{traceId}",
		"https://logs.example.com/search",
		"https://logs.example.com/{traceId}/{traceId}",
		"https://{traceId}.example.com/",
		"https://logs.example.com{traceId}/x",
		"https://user:pw@logs.example.com/{traceId}",
		"https://logs.example.com/ {traceId}",
		"https://logs.example.com/\n{traceId}",
		"https://logs.example.com/\xff{traceId}",
		"https://logs.example.com/?q={traceId}&pad=" + strings.Repeat("a", MaxTraceURLBytes),
	} {
		if err := CheckTraceURL(bad); err == nil {
			t.Errorf("%q: valid, want refused", bad)
		}
	}
}

// TestTraceURLIsAnOrgSetting: an org's admin key sets its trace link-out
// (audited, on other instances too), hostile templates are refused with
// 400 and change nothing, any credential of the org reads it, and orgs
// without one get the server's default.
func TestTraceURLIsAnOrgSetting(t *testing.T) {
	e := newEnv(t)
	e.svc.cfg.DefaultTraceURL = "https://default.example.com/?t={traceId}"
	e.mustOrg(t, "acme", "pro")
	e.mustOrg(t, "other", "pro")
	_, admin := e.mustKey(t, "acme", "admin")
	_, read := e.mustKey(t, "acme", "read")
	_, otherRead := e.mustKey(t, "other", "read")
	_, otherAdmin := e.mustKey(t, "other", "admin")
	tpl := "https://logs.acme.example/search?trace={traceId}"

	for name, c := range map[string]struct {
		token string
		body  any
		code  int
		err   string
	}{
		"read key":         {read, map[string]string{"traceUrl": tpl}, 403, "forbidden"},
		"another org":      {otherAdmin, map[string]string{"traceUrl": tpl}, 403, "forbidden"},
		"javascript":       {admin, map[string]string{"traceUrl": "javascript:alert({traceId})"}, 400, "invalid_trace_url"},
		"no placeholder":   {admin, map[string]string{"traceUrl": "https://logs.example.com/"}, 400, "invalid_trace_url"},
		"two placeholders": {admin, map[string]string{"traceUrl": "https://l.example.com/{traceId}{traceId}"}, 400, "invalid_trace_url"},
		"placeholder host": {admin, map[string]string{"traceUrl": "https://{traceId}/x"}, 400, "invalid_trace_url"},
		"too long":         {admin, map[string]string{"traceUrl": "https://l.example.com/{traceId}" + strings.Repeat("x", 3000)}, 400, "invalid_trace_url"},
		"missing":          {admin, map[string]string{}, 400, "invalid_trace_url"},
		"not a string":     {admin, map[string]any{"traceUrl": 7}, 400, ""},
		"unknown field":    {admin, map[string]string{"traceUrl": tpl, "plan": "enterprise"}, 400, ""},
		"unknown org":      {adminToken, map[string]string{"traceUrl": tpl}, 404, "org_not_found"},
	} {
		path := "/v1/orgs/acme/settings"
		if name == "unknown org" {
			path = "/v1/orgs/nope/settings"
		}
		code, body := e.do(t, "PATCH", path, c.token, c.body)
		if code != c.code || (c.err != "" && errCode(body) != c.err) {
			t.Errorf("%s: %d %v, want %d %s", name, code, body, c.code, c.err)
		}
	}
	if code, body := e.do(t, "GET", "/v1/settings", read, nil); code != 200 || body["traceUrl"] != e.svc.cfg.DefaultTraceURL {
		t.Fatalf("before: GET /v1/settings %d %v, want the server's default", code, body)
	}

	code, body := e.do(t, "PATCH", "/v1/orgs/acme/settings", admin, map[string]string{"traceUrl": tpl})
	if code != http.StatusOK || body["traceUrl"] != tpl || body["plan"] != "pro" {
		t.Fatalf("set: %d %v", code, body)
	}
	if code, body := e.do(t, "GET", "/v1/settings", read, nil); code != 200 || body["traceUrl"] != tpl {
		t.Fatalf("read key: GET /v1/settings %d %v, want %s", code, body, tpl)
	}
	if code, body := e.do(t, "GET", "/v1/settings", otherRead, nil); code != 200 || body["traceUrl"] != e.svc.cfg.DefaultTraceURL {
		t.Fatalf("other org: GET /v1/settings %d %v, want the default", code, body)
	}
	if code, body := e.do(t, "GET", "/v1/settings", adminToken, nil); code != 403 {
		t.Fatalf("operator: GET /v1/settings %d %v, want 403", code, body)
	}
	// Another instance reads it from ClickHouse; a plan change there keeps it.
	other := e.fresh(t)
	if st, err := other.Settings(context.Background(), "acme"); err != nil || st.TraceURL != tpl {
		t.Fatalf("other instance: %+v %v", st, err)
	}
	if _, err := other.SetPlan(context.Background(), Attribution{}, "acme", "enterprise"); err != nil {
		t.Fatal(err)
	}
	if o, err := e.fresh(t).Org(context.Background(), "acme"); err != nil || o.TraceURL != tpl || o.Plan != "enterprise" {
		t.Fatalf("after a plan change elsewhere: %+v %v", o, err)
	}
	// Cleared: back to the default.
	if code, body := e.do(t, "PATCH", "/v1/orgs/acme/settings", adminToken, map[string]string{"traceUrl": ""}); code != 200 {
		t.Fatalf("clear: %d %v", code, body)
	}
	if code, body := e.do(t, "GET", "/v1/settings", read, nil); code != 200 || body["traceUrl"] != e.svc.cfg.DefaultTraceURL {
		t.Fatalf("cleared: GET /v1/settings %d %v, want the default", code, body)
	}
	// Two changes, two records; the refusals left none.
	if n := e.count(t, "SELECT count() FROM events FINAL WHERE org_id = 'acme' AND event_type = 'org.update-settings'", nil); n != 2 {
		t.Fatalf("org.update-settings records=%d, want 2", n)
	}
	if n := e.count(t, "SELECT count() FROM events FINAL WHERE org_id = 'acme' AND event_type = 'org.update-settings' AND JSONExtractString(event_metadata, 'traceUrl') = {t:String} AND actor_type = 'apiKey'",
		clickhouse.Parameters{"t": tpl}); n != 1 {
		t.Fatalf("the admin key's change is not recorded with its template (%d)", n)
	}
}

// TestSettingsChangeAndRecordAreOneOutcome: a settings change whose audit
// record fails is undone.
func TestSettingsChangeAndRecordAreOneOutcome(t *testing.T) {
	e, rec := newFailingEnv(t)
	e.mustOrg(t, "acme", "pro")
	_, admin := e.mustKey(t, "acme", "admin")
	rec.fail.Store(true)
	code, body := e.do(t, "PATCH", "/v1/orgs/acme/settings", admin, map[string]string{"traceUrl": "https://l.example.com/{traceId}"})
	wantUnavailable(t, "set trace URL", code, body)
	if o, err := e.fresh(t).Org(context.Background(), "acme"); err != nil || o.TraceURL != "" {
		t.Fatalf("undone change seen by another instance: %+v %v", o, err)
	}
	if st, err := e.svc.Settings(context.Background(), "acme"); err != nil || st.TraceURL != "" {
		t.Fatalf("undone change seen here: %+v %v", st, err)
	}
}
