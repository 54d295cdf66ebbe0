package stream

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamAPI: create, list, get, update, test and delete; credentials
// masked in every answer, sealed at rest, absent from the logs; another
// org's stream is 404; every change is audited.
func TestStreamAPI(t *testing.T) {
	d := startDestinations(t)
	h := newHarness(t, func(c *Config) { d.tweak(c); c.MaxStreamsPerOrg = 5 })
	secrets := []string{"dd-api-key-0123456789abcdef01", "splunk-hec-token-0123456789abcdef",
		"cribl-auth-token-0123456789abcdef", "custom-secret-0123456789abcdef", "azure-client-secret-0123456789abcdef"}
	var answers []string
	call := func(org, method, path string, body any) (int, map[string]any) {
		code, out, raw := h.do(t, org, method, path, body)
		answers = append(answers, raw)
		return code, out
	}
	ids := d.create(t, h, "acme")
	dd := ids[d.dd]

	code, out := call("acme", "GET", "/v1/streams", nil)
	list, _ := out["streams"].([]any)
	if code != http.StatusOK || len(list) != 5 {
		t.Fatalf("list: %d, %d streams, want 5", code, len(list))
	}
	for _, s := range list {
		answers = append(answers, mustJSON(t, s))
	}
	code, out = call("acme", "GET", "/v1/streams/"+dd, nil)
	cfg, _ := out["config"].(map[string]any)
	if code != http.StatusOK || cfg["apiKey"] != "****ef01" || cfg["site"] != "us5.datadoghq.com" || out["provider"] != "datadog" {
		t.Fatalf("get: %d %v", code, out)
	}
	if st, _ := out["status"].(map[string]any); st["state"] != StateActive {
		t.Fatalf("status of a new stream: %v", st)
	}

	// PATCH sending back the masked key keeps the key.
	code, out = call("acme", "PATCH", "/v1/streams/"+dd, map[string]any{"name": "datadog-eu",
		"config": map[string]any{"apiKey": "****ef01", "service": "audit"}, "filter": map[string]any{"eventTypes": []string{"user.login"}}})
	if code != http.StatusOK || out["name"] != "datadog-eu" || out["filter"].(map[string]any)["eventTypes"].([]any)[0] != "user.login" {
		t.Fatalf("patch: %d %v", code, out)
	}
	def, err := h.svc.get(context.Background(), "acme", dd)
	if err != nil {
		t.Fatal(err)
	}
	if c := h.svc.open(def).cfg.(*datadogConfig); c.APIKey != secrets[0] || c.Service != "audit" {
		t.Fatalf("after patch: key %q service %q; the masked key must keep the stored one", mask(c.APIKey), c.Service)
	}

	code, out = call("acme", "POST", "/v1/streams/"+dd+"/test", nil)
	if code != http.StatusOK || out["ok"] != true || out["status"].(float64) != 202 {
		t.Fatalf("test: %d %v", code, out)
	}

	// Another org sees nothing of acme's streams.
	for _, c := range []struct{ method, path string }{{"GET", "/v1/streams/" + dd}, {"PATCH", "/v1/streams/" + dd},
		{"DELETE", "/v1/streams/" + dd}, {"POST", "/v1/streams/" + dd + "/test"}, {"GET", "/v1/streams/not-a-uuid"}} {
		if code, _ := call("globex", c.method, c.path, map[string]any{}); code != http.StatusNotFound {
			t.Errorf("globex %s %s: %d, want 404", c.method, c.path, code)
		}
	}
	if code, out := call("globex", "GET", "/v1/streams", nil); code != http.StatusOK || len(out["streams"].([]any)) != 0 {
		t.Errorf("globex list: %d %v", code, out)
	}
	// Only an org's admin key manages streams.
	for _, role := range []string{"read", "ingest"} {
		req := map[string]string{"X-Test-Org": "acme", "X-Test-Role": role}
		if code := h.doAs(t, req, "GET", "/v1/streams"); code != http.StatusForbidden {
			t.Errorf("role %s: %d, want 403", role, code)
		}
	}

	if code, out := call("acme", "POST", "/v1/streams", map[string]any{"name": "sixth", "provider": "custom",
		"config": map[string]any{"url": d.cu.srv.URL + "/hook"}}); code != http.StatusConflict {
		t.Errorf("sixth stream: %d %v, want 409", code, out)
	}
	if code, _ := call("acme", "DELETE", "/v1/streams/"+dd, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := call("acme", "GET", "/v1/streams/"+dd, nil); code != http.StatusNotFound {
		t.Fatalf("get after delete: %d", code)
	}

	for _, a := range append(answers, h.logs.String()) {
		for _, s := range secrets {
			if strings.Contains(a, s) || strings.Contains(a, s[:12]) {
				t.Fatalf("a credential appears in an answer or the logs: %.300s", a)
			}
		}
	}
	rows, err := h.db.Conn.Query(context.Background(), "SELECT config_sealed FROM streams")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var sealed string
		if err := rows.Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if !strings.HasPrefix(sealed, "v1.") || strings.Contains(sealed, s) {
				t.Fatalf("stored configuration not sealed: %.80s", sealed)
			}
		}
	}
	rows.Close()

	want := map[string]int{"stream.create": 5, "stream.update": 1, "stream.test": 1, "stream.delete": 1}
	got := map[string]int{}
	for _, typ := range h.rec.Types() {
		got[typ]++
	}
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("audit events %s=%d, want %d (all: %v)", typ, got[typ], n, got)
		}
	}
	for _, e := range h.rec.Events() {
		if e.Event.Type == "stream.list" || e.Event.Type == "stream.read" {
			continue // reads: see TestStreamReadsAreAudited
		}
		if e.OrgID != "acme" || e.Actor.Type != "apiKey" || e.Resource == nil || e.Resource.Type != "stream" {
			t.Errorf("audit event %+v: want org acme, actor apiKey, resource stream", e)
		}
	}
}

// TestStreamValidation: bad input is refused with the field named.
func TestStreamValidation(t *testing.T) {
	h := newHarness(t, nil)
	hook := "https://127.0.0.1:9/hook"
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"name": "x", "provider": "sumo", "config": map[string]any{}}, "provider"},
		{map[string]any{"provider": "custom", "config": map[string]any{"url": hook}}, "name"},
		{map[string]any{"name": "x", "provider": "custom"}, "config"},
		{map[string]any{"name": "x", "provider": "custom", "config": map[string]any{"url": hook, "token": "t"}}, "config"},
		{map[string]any{"name": "x", "provider": "custom", "config": map[string]any{"url": hook, "headers": map[string]string{"Host": "a"}}}, "config.headers"},
		{map[string]any{"name": "x", "provider": "custom", "config": map[string]any{"url": hook, "headers": map[string]string{"X-A": "a\nb"}}}, "config.headers"},
		{map[string]any{"name": "x", "provider": "custom", "config": map[string]any{"url": "ftp://127.0.0.1/x"}}, "config.url"},
		{map[string]any{"name": "x", "provider": "custom", "config": map[string]any{"url": hook}, "filter": map[string]any{"eventTypes": []string{"bad type"}}}, "filter.eventTypes"},
		{map[string]any{"name": "x", "provider": "custom", "config": map[string]any{"url": hook}, "filter": map[string]any{"actorTypes": []string{"robot"}}}, "filter.actorTypes"},
		{map[string]any{"name": "x", "provider": "datadog", "config": map[string]any{"site": "datadog.example", "apiKey": "k"}}, "config.site"},
		{map[string]any{"name": "x", "provider": "datadog", "config": map[string]any{"site": "eu1"}}, "config.apiKey"},
		{map[string]any{"name": "x", "provider": "splunk", "config": map[string]any{"host": "127.0.0.1", "token": " t "}}, "config.token"},
		{map[string]any{"name": "x", "provider": "cribl", "config": map[string]any{"url": "https://127.0.0.1:10080/cribl"}}, "config.url"},
		{map[string]any{"name": "x", "provider": "azure", "config": map[string]any{"tenantId": azTenant, "clientId": azClient,
			"clientSecret": "s", "dceUrl": "https://127.0.0.1", "dcrImmutableId": "dcr-1", "tableName": "T"}}, "config.dcrImmutableId"},
		{map[string]any{"name": "x", "provider": "azure", "config": map[string]any{"tenantId": azTenant, "clientId": azClient,
			"clientSecret": "s", "dceUrl": "https://127.0.0.1/path", "dcrImmutableId": azDCR, "tableName": "T"}}, "config.dceUrl"},
	} {
		code, out, raw := h.do(t, "acme", "POST", "/v1/streams", tc.body)
		e, _ := out["error"].(map[string]any)
		details, _ := e["details"].([]any)
		if code != http.StatusBadRequest || len(details) == 0 || details[0].(map[string]any)["field"] != tc.field {
			t.Errorf("create %v: %d %s, want 400 naming %s", tc.body, code, raw, tc.field)
		}
	}
	if code, out, _ := h.do(t, "acme", "POST", "/v1/streams", map[string]any{"nam": "x"}); code != http.StatusBadRequest ||
		!strings.Contains(out["error"].(map[string]any)["message"].(string), "unknown field") {
		t.Errorf("unknown body field: %d %v", code, out)
	}
}

// TestStreamKeyChanged: a stream sealed under another key shows no config
// and a failing status until its configuration is given again.
func TestStreamKeyChanged(t *testing.T) {
	f := newCustom(t, "X-Token", "key-change-token-0123456789", true)
	h := newHarness(t, nil)
	id := h.mustCreate(t, "acme", customStream(f, "X-Token", "key-change-token-0123456789"))
	h.stop()
	h.start(t, func(c *Config) { c.Key = []byte("ffffffffffffffffffffffffffffffff") })
	code, out, _ := h.do(t, "acme", "GET", "/v1/streams/"+id, nil)
	st, _ := out["status"].(map[string]any)
	if code != http.StatusOK || out["config"] != nil || st["state"] != StateFailing || !strings.Contains(st["lastError"].(string), "another stream key") {
		t.Fatalf("stream under another key: %d %v", code, out)
	}
	want := h.insertN(t, "acme", 3, 0)
	code, _, raw := h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"config": map[string]any{
		"url": f.srv.URL + "/hook", "headers": map[string]string{"X-Token": "key-change-token-0123456789"}}})
	if code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, raw)
	}
	eventually(t, 10*time.Second, "delivery after the new key", func() bool { return f.distinct() == len(want) })
}
