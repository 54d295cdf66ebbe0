package console_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/servertest"
)

// Seeded events: five types, five actors, four secrets, three sources,
// traces of three events, changes in two conventions, over ten days, and
// one hostile event.
var (
	seedTypes   = []string{"secret.create", "secret.update", "secret.delete", "user.login", "api_key.create"}
	seedUsers   = []string{"alice", "bob", "carol", "dave"}
	seedSources = []string{"web", "cli", "terraform"}
)

const (
	seedCount = 72
	hostileID = "00000000-0000-4000-8000-0000000000ff"
)

func seed(t *testing.T, s *servertest.Server, ingestKey string, now time.Time) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := 0; i < seedCount; i++ {
		typ := seedTypes[i%len(seedTypes)]
		md := map[string]any{"env": []string{"prod", "dev"}[i%2], "n": i}
		if typ == "secret.update" {
			if i%2 == 0 {
				md["changes"] = map[string]any{"value": map[string]any{"old": "v1", "new": "v2"}, "ttl": map[string]any{"old": 30, "new": 60}}
			} else {
				md["before"] = map[string]any{"owner": "alice", "size": 1}
				md["after"] = map[string]any{"owner": "bob", "size": 1}
			}
		}
		actor := map[string]any{"type": "user", "metadata": map[string]any{
			"userId": "u-" + seedUsers[i%4], "email": seedUsers[i%4] + "@example.com", "name": seedUsers[i%4]}}
		if i%9 == 0 {
			actor = map[string]any{"type": "service", "metadata": map[string]any{"serviceId": "svc-ci", "name": "ci-bot"}}
		}
		ip := fmt.Sprintf("10.0.%d.%d", i%3, i%50+1)
		if i%6 == 5 {
			ip = fmt.Sprintf("2001:db8::%x", i)
		}
		e := map[string]any{
			"id":            fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			"timestamp":     now.Add(-time.Duration(i) * 3 * time.Hour).Add(-time.Minute).Format(time.RFC3339Nano),
			"event":         map[string]any{"type": typ, "metadata": md},
			"actor":         actor,
			"projectId":     []string{"p1", "p2"}[i%2],
			"resource":      map[string]any{"type": "secret", "id": fmt.Sprintf("s%d", i%4+1), "name": fmt.Sprintf("DB_PASSWORD_%d", i%4+1)},
			"ipAddress":     ip,
			"userAgent":     "seed/1.0",
			"userAgentType": seedSources[i%3],
			"traceId":       fmt.Sprintf("trace-%02d", i/3),
		}
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	hostile := map[string]any{
		"id":        hostileID,
		"timestamp": now.Add(-30 * time.Second).Format(time.RFC3339Nano),
		"event": map[string]any{"type": "secret.read", "metadata": map[string]any{
			"note":    `<script>window.__xss = 2</script>`,
			"link":    `javascript:window.__xss=3`,
			"payload": `<img src=x onerror="window.__xss=4">`}},
		"actor": map[string]any{"type": "user", "metadata": map[string]any{
			"userId": "u-mallory", "email": "mallory@example.com", "name": `<img src=x onerror="window.__xss=1">`}},
		"resource":  map[string]any{"type": "secret", "id": "s9", "name": `<b onmouseover="window.__xss=5">bold</b>`},
		"ipAddress": "192.0.2.9",
		"traceId":   `javascript:alert(1)`,
	}
	if err := enc.Encode(hostile); err != nil {
		t.Fatal(err)
	}
	s.Ingest(t, ingestKey, buf.Bytes())
}
