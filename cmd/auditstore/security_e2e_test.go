package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditstore/auditstore/internal/servertest"
)

// forgedIP is what a client claims in X-Forwarded-For.
const forgedIP = "203.0.113.99"

// keyCreatedFrom creates a key of org with X-Forwarded-For set, and
// returns the ipAddress of the api-key.create record it leaves.
func keyCreatedFrom(t *testing.T, s *servertest.Server, org, readKey string, keysBefore int) string {
	t.Helper()
	code, out := s.Do(t, "POST", "/v1/orgs/"+org+"/keys", servertest.AdminToken,
		[]byte(`{"role":"read","name":"through-a-proxy"}`), "X-Forwarded-For", forgedIP, "X-Real-IP", forgedIP)
	if code != http.StatusCreated {
		t.Fatalf("create key: %d %s", code, out)
	}
	q := "eventType=api-key.create&" + url.Values{"resourceType": {"api-key"}}.Encode()
	s.WaitTotal(t, readKey, q, keysBefore+1) // the keys created before, and this one
	_, out = s.Do(t, "GET", "/v1/events?"+q+"&sort=timestamp&order=desc&limit=1", readKey, nil)
	var page struct {
		Events []struct {
			IPAddress string `json:"ipAddress"`
		} `json:"events"`
	}
	if err := json.Unmarshal(out, &page); err != nil || len(page.Events) != 1 {
		t.Fatalf("read the audit record: %v %s", err, out)
	}
	return page.Events[0].IPAddress
}

// TestServerTrustAndExposure runs the real server twice and checks what a
// client can forge or see: X-Forwarded-For is ignored unless the proxy is
// trusted; /readyz tells the public only ready or not; /metrics needs a
// token on the main address, or lives on its own; a stream can reach
// neither the engine's HTTP port (which wants the generated password
// anyway) nor the server itself, even with private destinations allowed;
// secrets are read from files.
func TestServerTrustAndExposure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	dir := t.TempDir()
	streamKey, cursorKey := filepath.Join(dir, "stream.key"), filepath.Join(dir, "cursor.key")
	if err := os.WriteFile(streamKey, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cursorKey, []byte("cursor-key-from-a-file-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enginePort := servertest.FreePort(t)
	data := filepath.Join(dir, "data")
	s := servertest.StartIn(t, data, "-allow-private-destinations", "-engine-http-port", fmt.Sprint(enginePort),
		"-stream-key-file", streamKey, "-cursor-key-file", cursorKey)
	if _, err := os.Stat(filepath.Join(data, "stream.key")); !os.IsNotExist(err) {
		t.Fatalf("the server created DATA/stream.key although -stream-key-file was given (%v)", err)
	}
	keys := s.Org(t, "acme", "read", "admin")

	t.Run("forwarded-for ignored", func(t *testing.T) {
		if ip := keyCreatedFrom(t, s, "acme", keys["read"], len(keys)); ip != "127.0.0.1" {
			t.Fatalf("audit record ipAddress %q, want the connection's 127.0.0.1 (X-Forwarded-For is not trusted)", ip)
		}
	})

	t.Run("readyz public", func(t *testing.T) {
		code, out := s.Do(t, "GET", "/readyz", "", nil)
		if code != http.StatusOK || strings.TrimSpace(string(out)) != `{"status":"ready"}` {
			t.Fatalf("public readyz: %d %s, want 200 {\"status\":\"ready\"} only", code, out)
		}
		code, out = s.Do(t, "GET", "/readyz", keys["admin"], nil)
		if strings.Contains(string(out), "version") {
			t.Fatalf("readyz with an org admin key shows details: %d %s", code, out)
		}
		code, out = s.Do(t, "GET", "/readyz", servertest.AdminToken, nil)
		if code != http.StatusOK || !strings.Contains(string(out), `"version":"26.`) {
			t.Fatalf("readyz with the operator token: %d %s, want the version", code, out)
		}
	})

	t.Run("metrics need a token", func(t *testing.T) {
		for _, tok := range []string{"", keys["admin"], keys["read"]} {
			if code, out := s.Do(t, "GET", "/metrics", tok, nil); code != http.StatusUnauthorized || strings.Contains(string(out), "auditstore_") {
				t.Fatalf("/metrics with token %.8q: %d %.200s, want 401", tok, code, out)
			}
		}
		if code, out := s.Do(t, "GET", "/metrics", servertest.AdminToken, nil); code != http.StatusOK || !strings.Contains(string(out), "auditstore_wal_bytes") {
			t.Fatalf("/metrics with the operator token: %d", code)
		}
	})

	t.Run("engine and self are not destinations", func(t *testing.T) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/?%s", enginePort, url.Values{"query": {"SELECT 'leak-' || toString(42)"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "leak-42") {
			t.Fatalf("the engine's HTTP port answered a query without the password: %d %s", resp.StatusCode, body)
		}
		for _, u := range []string{
			fmt.Sprintf("http://127.0.0.1:%d/?query=SELECT+1", enginePort),
			fmt.Sprintf("http://localhost:%d/?query=SELECT+1", enginePort),
			fmt.Sprintf("http://127.0.0.1:%d/", s.TCPPort),
			s.Base + "/v1/orgs",
		} {
			code, out := s.JSON(t, "POST", "/v1/streams", keys["admin"], map[string]any{"name": "x", "provider": "custom",
				"config": map[string]any{"url": u}})
			details, _ := out["error"].(map[string]any)["details"].([]any)
			if code != http.StatusBadRequest || len(details) == 0 || details[0].(map[string]any)["code"] != "forbidden_destination" {
				t.Errorf("stream to %s: %d %v, want 400 forbidden_destination", u, code, out)
			}
		}
	})

	// A second server: a trusted proxy, and /metrics on its own address.
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", servertest.FreePort(t))
	s2 := servertest.Start(t, "-trusted-proxies", "127.0.0.1/32,10.0.0.0/8", "-metrics-listen", metricsAddr)
	keys2 := s2.Org(t, "acme", "read")
	t.Run("forwarded-for from a trusted proxy", func(t *testing.T) {
		if ip := keyCreatedFrom(t, s2, "acme", keys2["read"], len(keys2)); ip != forgedIP {
			t.Fatalf("audit record ipAddress %q, want %s from the trusted proxy's X-Forwarded-For", ip, forgedIP)
		}
	})
	t.Run("metrics listen", func(t *testing.T) {
		if code, _ := s2.Do(t, "GET", "/metrics", servertest.AdminToken, nil); code != http.StatusNotFound {
			t.Fatalf("/metrics on -listen with -metrics-listen: %d, want 404", code)
		}
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "auditstore_wal_bytes") {
			t.Fatalf("/metrics on -metrics-listen: %d", resp.StatusCode)
		}
	})
}
