package stream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const (
	azTenant = "00000000-0000-0000-0000-00000000aaaa"
	azClient = "11111111-2222-3333-4444-555555555555"
	azDCR    = "dcr-0123456789abcdef0123456789abcdef"
)

// azureFake is the Microsoft identity platform's token endpoint and a
// data collection endpoint, each checking its wire format strictly.
type azureFake struct {
	login  *httptest.Server
	ingest *fake

	mu        sync.Mutex
	secret    string
	expiresIn int
	fetches   int
	tokens    map[string]time.Time // token → expiry
}

func newAzure(tb testing.TB, secret string, expiresIn int) *azureFake {
	a := &azureFake{secret: secret, expiresIn: expiresIn, tokens: map[string]time.Time{}}
	a.login = httptest.NewTLSServer(http.HandlerFunc(a.token))
	tb.Cleanup(a.login.Close)
	f := &fake{okStatus: http.StatusNoContent}
	f.parse = func(r *http.Request, raw, body []byte) ([]map[string]any, *violation) {
		if v := checkPost(r, "/dataCollectionRules/"+azDCR+"/streams/Custom-AuditLogs_CL", true); v != nil {
			return nil, v
		}
		if q := r.URL.Query(); q.Get("api-version") != "2023-01-01" || len(q) != 1 {
			return nil, bad("query %q, want api-version=2023-01-01", r.URL.RawQuery)
		}
		if !a.valid(r.Header.Get("Authorization")) {
			return nil, &violation{status: http.StatusUnauthorized, msg: `{"error":{"code":"InvalidToken"}}`}
		}
		if len(raw) > 1_000_000 {
			return nil, bad("compressed body of %d bytes over 1 MB", len(raw))
		}
		els, v := jsonArray(body, 100_000, 1_000_000, 1_000_000)
		if v != nil {
			return nil, v
		}
		for _, e := range els {
			tg, _ := take(e, "TimeGenerated").(string)
			if _, err := time.Parse(time.RFC3339Nano, tg); err != nil {
				return nil, bad("TimeGenerated %q is not a time", tg)
			}
			if v := checkRecord(e); v != nil {
				return nil, v
			}
		}
		return els, nil
	}
	a.ingest = f.serve(tb, true)
	return a
}

func (a *azureFake) token(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, e string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":%q,"error_description":"AADSTS: %s"}`, e, e)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/"+azTenant+"/oauth2/v2.0/token" ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("scope") != "https://monitor.azure.com//.default" || r.PostForm.Get("client_id") != azClient {
		fail(http.StatusBadRequest, "invalid_request")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.PostForm.Get("client_secret") != a.secret {
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	a.fetches++
	tok := fmt.Sprintf("access-token-%d", a.fetches)
	a.tokens[tok] = time.Now().Add(time.Duration(a.expiresIn) * time.Second)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": a.expiresIn, "access_token": tok})
}

func (a *azureFake) valid(auth string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.tokens[auth[min(len(auth), len("Bearer ")):]]
	return ok && auth[:min(len(auth), 7)] == "Bearer " && time.Now().Before(exp)
}

func (a *azureFake) fetchCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetches
}

func azureStream(a *azureFake) map[string]any {
	return map[string]any{"name": "sentinel", "provider": "azure", "config": map[string]any{
		"tenantId": azTenant, "clientId": azClient, "clientSecret": a.secret,
		"dceUrl": a.ingest.srv.URL, "dcrImmutableId": azDCR, "tableName": "AuditLogs"}}
}

// TestAzureTokenCachedAndRefreshed: the first delivery fetches a token,
// the next ones reuse it, and one past its expiry fetches exactly one more.
func TestAzureTokenCachedAndRefreshed(t *testing.T) {
	az := newAzure(t, "azure-client-secret-value-0123456789", 3)
	h := newHarness(t, func(c *Config) { c.AzureLoginURL = az.login.URL })
	id := h.mustCreate(t, "acme", azureStream(az))
	var want []string
	deliver := func(n int) {
		want = append(want, h.insertN(t, "acme", n, 0)...)
		eventually(t, 20*time.Second, "delivery to azure", func() bool { return az.ingest.distinct() == len(want) })
	}
	deliver(5)
	deliver(5)
	deliver(5)
	if n := az.fetchCount(); n != 1 {
		t.Fatalf("token fetches=%d after three deliveries within the token's life, want 1", n)
	}
	time.Sleep(3100 * time.Millisecond) // the token expires
	deliver(5)
	deliver(5)
	if n := az.fetchCount(); n != 2 {
		t.Fatalf("token fetches=%d after the token expired, want 2", n)
	}
	az.ingest.checkClean(t)
	if dups := checkOrder(t, want, az.ingest.received()); dups != 0 {
		t.Fatalf("duplicates=%d without any failure", dups)
	}
	if st := h.status(t, "acme", id); st["state"] != StateActive || st["delivered"].(float64) != 25 {
		t.Fatalf("status %v, want active with 25 delivered", st)
	}
}

// TestAzureRefusedSecretFails: a secret the identity platform refuses
// marks the stream failing, and fixing it with PATCH resumes delivery.
func TestAzureRefusedSecretFails(t *testing.T) {
	az := newAzure(t, "the-right-secret-0123456789", 3600)
	h := newHarness(t, func(c *Config) { c.AzureLoginURL = az.login.URL; c.FailingProbe = time.Hour })
	body := azureStream(az)
	body["config"].(map[string]any)["clientSecret"] = "a-wrong-secret-0123456789"
	id := h.mustCreate(t, "acme", body)
	want := h.insertN(t, "acme", 3, 0)
	eventually(t, 10*time.Second, "failing state", func() bool { return h.status(t, "acme", id)["state"] == StateFailing })
	st := h.status(t, "acme", id)
	if msg, _ := st["lastError"].(string); msg == "" || !contains(msg, "401") || contains(msg, "a-wrong-secret") {
		t.Fatalf("lastError %q: want the identity platform's 401, without the secret", msg)
	}
	code, _, raw := h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"config": map[string]any{"clientSecret": az.secret}})
	if code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, raw)
	}
	eventually(t, 10*time.Second, "delivery after the fix", func() bool { return az.ingest.distinct() == len(want) })
}
