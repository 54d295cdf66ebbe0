package stream

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetargetNeedsCredentials: a PATCH that changes where a stream
// delivers (site, host, url, dceUrl, tenantId) is refused with 400
// credentials_required unless it gives the credentials again, for every
// provider; sent back masked they do not count; the stored stream is
// unchanged by a refusal; changes that keep the target need nothing.
func TestRetargetNeedsCredentials(t *testing.T) {
	d := startDestinations(t)
	h := newHarness(t, d.tweak)
	ids := d.create(t, h, "acme")
	for _, tc := range []struct {
		name  string
		id    string
		moves []map[string]any // target changes without (fresh) credentials
		fresh map[string]any   // a target change with them
	}{
		{"datadog", ids[d.dd], []map[string]any{{"site": "eu1"}, {"site": "eu1", "apiKey": "****ef01"}},
			map[string]any{"site": "eu1", "apiKey": "dd-new-key-0123456789abcdef"}},
		{"splunk", ids[d.sp], []map[string]any{{"host": "127.0.0.2:8088"}, {"host": "127.0.0.2:8088", "token": "****cdef"}},
			map[string]any{"host": "127.0.0.2:8088", "token": "splunk-new-token-0123456789"}},
		{"cribl", ids[d.cr], []map[string]any{{"url": "https://127.0.0.2:10080/cribl/_bulk"},
			{"url": "https://127.0.0.2:10080/cribl/_bulk", "token": "****cdef"}},
			map[string]any{"url": "https://127.0.0.2:10080/cribl/_bulk", "token": "cribl-new-token-0123456789"}},
		{"custom", ids[d.cu], []map[string]any{{"url": "https://127.0.0.2/elsewhere"},
			{"url": "https://127.0.0.2/elsewhere", "headers": map[string]string{"Authorization": "****cdef"}}},
			map[string]any{"url": "https://127.0.0.2/elsewhere", "headers": map[string]string{"Authorization": "Bearer new-0123456789"}}},
		{"azure", ids[d.az.ingest], []map[string]any{{"dceUrl": "https://127.0.0.2"}, {"tenantId": "contoso.example"},
			{"dceUrl": "https://127.0.0.2", "clientSecret": "****cdef"}},
			map[string]any{"dceUrl": "https://127.0.0.2", "clientSecret": "azure-new-secret-0123456789"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, was, _ := h.do(t, "acme", "GET", "/v1/streams/"+tc.id, nil)
			for _, m := range tc.moves {
				code, out, raw := h.do(t, "acme", "PATCH", "/v1/streams/"+tc.id, map[string]any{"config": m})
				e, _ := out["error"].(map[string]any)
				if code != http.StatusBadRequest || e["code"] != "credentials_required" || !strings.Contains(raw, "config.") {
					t.Fatalf("PATCH %v: %d %s, want 400 credentials_required naming the field", m, code, raw)
				}
			}
			_, now, _ := h.do(t, "acme", "GET", "/v1/streams/"+tc.id, nil)
			if mustJSON(t, now["config"]) != mustJSON(t, was["config"]) || now["updatedAt"] != was["updatedAt"] {
				t.Fatalf("a refused PATCH changed the stream: %v -> %v", was["config"], now["config"])
			}
			if code, _, raw := h.do(t, "acme", "PATCH", "/v1/streams/"+tc.id, map[string]any{"config": tc.fresh}); code != http.StatusOK {
				t.Fatalf("PATCH with fresh credentials %v: %d %s", tc.fresh, code, raw)
			}
		})
	}
}

// engineLike answers ?query= like ClickHouse's HTTP interface does.
func engineLike(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("tenant-secret-row\t" + r.URL.Query().Get("query") + "\n"))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestDeniedDestinations: with private destinations allowed, a stream is
// still refused the addresses the server denies (its own, its database's),
// by address, by a name resolving to one, by an unspecified-host entry,
// and at connection time after DNS rebinding; the test endpoint never
// echoes a destination's answer body.
func TestDeniedDestinations(t *testing.T) {
	eng, hits := engineLike(t)
	_, port, _ := net.SplitHostPort(eng.Listener.Addr().String())
	other, otherHits := engineLike(t)
	_, otherPort, _ := net.SplitHostPort(other.Listener.Addr().String())
	res := &fakeResolver{hosts: map[string][]netip.Addr{}}
	res.set("engine.internal", "127.0.0.1")
	res.set("rebind.example", "10.255.255.1")
	h := newHarness(t, func(c *Config) {
		c.Resolver = res
		c.Deny = []string{"127.0.0.1:" + port, ":" + otherPort}
		c.FailingProbe = 100 * time.Millisecond
	})
	for _, u := range []string{
		"http://127.0.0.1:" + port + "/?query=SELECT+1",
		"http://127.9.9.9:" + port + "/?query=SELECT+1", // every loopback address
		"http://[::1]:" + port + "/",
		"http://engine.internal:" + port + "/",
		"http://127.0.0.1:" + otherPort + "/?query=SELECT+1",
	} {
		code, out, raw := h.do(t, "acme", "POST", "/v1/streams", map[string]any{"name": "x", "provider": "custom", "config": map[string]any{"url": u}})
		details, _ := out["error"].(map[string]any)["details"].([]any)
		if code != http.StatusBadRequest || len(details) == 0 || details[0].(map[string]any)["code"] != "forbidden_destination" {
			t.Errorf("create %s: %d %s, want 400 forbidden_destination", u, code, raw)
		}
	}
	// Allowed when checked (a private address), the engine's when dialed.
	id := h.mustCreate(t, "acme", map[string]any{"name": "rebind", "provider": "custom",
		"config": map[string]any{"url": "http://rebind.example:" + port + "/?query=SELECT+1"}})
	res.set("rebind.example", "127.0.0.1")
	code, out, raw := h.do(t, "acme", "POST", "/v1/streams/"+id+"/test", nil)
	if code != http.StatusOK || out["ok"] != false || !strings.Contains(raw, "this server or its database") {
		t.Fatalf("test through a rebound name: %d %s, want refused", code, raw)
	}
	if n := hits.Load() + otherHits.Load(); n != 0 {
		t.Fatalf("denied destinations got %d requests", n)
	}

	// A destination that is allowed answers; /test shows its status only.
	res.set("allowed.example", "127.0.0.1")
	free, freeHits := engineLike(t)
	_, freePort, _ := net.SplitHostPort(free.Listener.Addr().String())
	id = h.mustCreate(t, "acme", map[string]any{"name": "echo", "provider": "custom",
		"config": map[string]any{"url": "http://allowed.example:" + freePort + "/?query=SELECT+secret"}})
	code, out, raw = h.do(t, "acme", "POST", "/v1/streams/"+id+"/test", nil)
	if code != http.StatusOK || out["ok"] != true || freeHits.Load() != 1 {
		t.Fatalf("test of an allowed destination: %d %s", code, raw)
	}
	if strings.Contains(raw, "tenant-secret-row") || out["answer"] != "200 OK" {
		t.Fatalf("the test endpoint echoes the destination's body: %s", raw)
	}
}

// TestRefusalsDoNotTellAddresses: the SSRF checks say a destination is
// not public without naming what it resolves to, at creation and when
// connecting.
func TestRefusalsDoNotTellAddresses(t *testing.T) {
	res := &fakeResolver{hosts: map[string][]netip.Addr{}}
	res.set("db.corp.example", "10.20.30.40")
	res.set("rebind.example", "93.184.216.34")
	h := newHarness(t, func(c *Config) { c.AllowPrivate = false; c.Resolver = res })
	code, _, raw := h.do(t, "acme", "POST", "/v1/streams", map[string]any{"name": "x", "provider": "custom",
		"config": map[string]any{"url": "https://db.corp.example/hook"}})
	if code != http.StatusBadRequest || strings.Contains(raw, "10.20.30.40") || strings.Contains(raw, "network") ||
		!strings.Contains(raw, "resolves to a non-public address") {
		t.Fatalf("create: %d %s, want 400 saying only that the address is not public", code, raw)
	}
	id := h.mustCreate(t, "acme", map[string]any{"name": "rebind", "provider": "custom",
		"config": map[string]any{"url": "https://rebind.example/hook"}})
	res.set("rebind.example", "10.20.30.40")
	code, out, raw := h.do(t, "acme", "POST", "/v1/streams/"+id+"/test", nil)
	if code != http.StatusOK || out["ok"] != false || strings.Contains(raw, "10.20.30.40") || !strings.Contains(raw, "non-public") {
		t.Fatalf("test: %d %s, want refused without the address", code, raw)
	}
}

// TestWebhookPathMasked: a secret in a custom URL's path (Slack-, Teams-
// style) or query never appears in answers, errors or logs; the masked
// URL sent back keeps the stored one.
func TestWebhookPathMasked(t *testing.T) {
	secretPath := "/services/T0SECRET1/B0SECRET2/XoXoSecretPathToken123"
	f := newCustom(t, "X-Token", "hook-token-0123456789", true)
	h := newHarness(t, nil)
	u := f.srv.URL + secretPath + "?sig=QuerySecret987654"
	var answers []string
	code, out, raw := h.do(t, "acme", "POST", "/v1/streams", map[string]any{"name": "slack", "provider": "custom",
		"config": map[string]any{"url": u, "headers": map[string]string{"X-Token": "hook-token-0123456789"}}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, raw)
	}
	answers = append(answers, raw)
	id := out["id"].(string)
	if got := out["config"].(map[string]any)["url"]; got != f.srv.URL+"/****" {
		t.Fatalf("masked url %v, want %s/****", got, f.srv.URL)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/v1/streams/" + id}, {"GET", "/v1/streams"}, {"POST", "/v1/streams/" + id + "/test"}} {
		_, _, raw := h.do(t, "acme", c.method, c.path, nil)
		answers = append(answers, raw)
	}
	h.insertN(t, "acme", 2, 0)
	eventually(t, 10*time.Second, "the refusal in the status", func() bool {
		st := h.status(t, "acme", id)
		return st["state"] == StateFailing
	})
	_, _, raw = h.do(t, "acme", "GET", "/v1/streams/"+id, nil)
	answers = append(answers, raw)
	// Sending the masked URL back (with a new header) keeps the stored URL.
	code, _, raw = h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"config": map[string]any{"url": f.srv.URL + "/****",
		"headers": map[string]string{"X-Token": "hook-token-0123456789"}}})
	if code != http.StatusOK {
		t.Fatalf("patch with the masked url: %d %s", code, raw)
	}
	answers = append(answers, raw)
	d, err := h.svc.get(context.Background(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.svc.open(d).cfg.(*customConfig).URL; got != u {
		t.Fatalf("stored url %q after a masked PATCH, want %q", got, u)
	}
	for _, a := range append(answers, h.logs.String()) {
		for _, s := range []string{"T0SECRET1", "B0SECRET2", "XoXoSecretPathToken123", "QuerySecret987654"} {
			if strings.Contains(a, s) {
				t.Fatalf("%q appears in an answer or the logs: %.300s", s, a)
			}
		}
	}
}

// TestHostileStringsRoundTrip: stream names and cursor errors keep
// backslashes, quotes, control characters and unicode exactly through the
// store (a backslash in a name was stored altered, or failed with 500).
func TestHostileStringsRoundTrip(t *testing.T) {
	f := newCustom(t, "X-Token", "hook-token-0123456789", true)
	h := newHarness(t, nil)
	for _, name := range []string{`back\slash`, `ends with \`, `\N`, `\0 and \t`, `it's "quoted"`, "unicode é ✓ 日本 🙂", "{name:String}"} {
		code, out, raw := h.do(t, "acme", "POST", "/v1/streams", map[string]any{"name": name, "provider": "custom",
			"config": map[string]any{"url": f.srv.URL + "/hook"}})
		if code != http.StatusCreated || out["name"] != name {
			t.Fatalf("create %q: %d %s", name, code, raw)
		}
		id := out["id"].(string)
		if _, got, _ := h.do(t, "acme", "GET", "/v1/streams/"+id, nil); got["name"] != name {
			t.Fatalf("stored name %q, want %q", got["name"], name)
		}
		renamed := name + ` \ again`
		if code, got, raw := h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"name": renamed}); code != http.StatusOK || got["name"] != renamed {
			t.Fatalf("rename %q: %d %s", renamed, code, raw)
		}
		if _, got, _ := h.do(t, "acme", "GET", "/v1/streams/"+id, nil); got["name"] != renamed {
			t.Fatalf("stored name after rename %q, want %q", got["name"], renamed)
		}
		if code, _, _ := h.do(t, "acme", "DELETE", "/v1/streams/"+id, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
	}
	ctx := context.Background()
	for _, msg := range []string{"nul\x00byte", "new\nline\ttab\r", `back\slash \n`, "quote ' \" `", "unicode ✓ 🙂"} {
		c := cursor{stream: "s-hostile", node: "n\\1\t", seq: 1, lastError: msg, state: StateFailing, version: uint64(time.Now().UnixNano()), updated: time.Now()}
		if err := h.svc.store.putCursor(ctx, c); err != nil {
			t.Fatalf("put cursor with error %q: %v", msg, err)
		}
		got, err := h.svc.store.cursors(ctx, "s-hostile")
		if err != nil {
			t.Fatal(err)
		}
		if got["n\\1\t"].lastError != msg {
			t.Fatalf("cursor error %q came back as %q (nodes %v)", msg, got["n\\1\t"].lastError, got)
		}
	}
}

// TestStreamReadsAreAudited: listing an org's streams and reading one are
// recorded as events of that org (stream.list, stream.read) with the key
// that read them; a read that cannot be recorded is refused (503).
func TestStreamReadsAreAudited(t *testing.T) {
	f := newCustom(t, "X-Token", "hook-token-0123456789", true)
	h := newHarness(t, nil)
	id := h.mustCreate(t, "acme", map[string]any{"name": "hook", "provider": "custom", "config": map[string]any{"url": f.srv.URL + "/hook"}})
	if code, _, _ := h.do(t, "acme", "GET", "/v1/streams", nil); code != http.StatusOK {
		t.Fatal(code)
	}
	if code, _, _ := h.do(t, "acme", "GET", "/v1/streams/"+id, nil); code != http.StatusOK {
		t.Fatal(code)
	}
	h.do(t, "globex", "GET", "/v1/streams/"+id, nil) // 404: nothing read, nothing recorded
	var got []string
	for _, e := range h.rec.Events() {
		if e.Event.Type == "stream.list" || e.Event.Type == "stream.read" {
			res := ""
			if e.Resource != nil {
				res = e.Resource.Type + ":" + e.Resource.ID
			}
			got = append(got, e.OrgID+" "+e.Event.Type+" "+e.Actor.Type+" "+res+" "+string(e.Event.Metadata))
		}
	}
	want := []string{`acme stream.list apiKey  {"endpoint":"GET /v1/streams"}`,
		`acme stream.read apiKey stream:` + id + ` {"endpoint":"GET /v1/streams/:id"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("read events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.rec.SetFail(true)
	for _, path := range []string{"/v1/streams", "/v1/streams/" + id} {
		code, _, raw := h.do(t, "acme", "GET", path, nil)
		if code != http.StatusServiceUnavailable || !strings.Contains(raw, "audit_unavailable") || strings.Contains(raw, "hook") {
			t.Fatalf("GET %s with the audit log down: %d %s, want 503 audit_unavailable and nothing read", path, code, raw)
		}
	}
}
