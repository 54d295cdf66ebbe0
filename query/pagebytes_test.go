package query

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// TestPageBytesAreBounded: a page of limit=1000 over events with large
// metadata stops at MaxPageBytes with a cursor, and the cursor yields the
// rest, each event once; the same events as one trace too (a trace page
// cut short by the bound still counts its total).
func TestPageBytesAreBounded(t *testing.T) {
	const maxBytes, n = 256 << 10, 120
	e := newEnv(t, nil, func(c *Config) { c.MaxPageBytes = maxBytes })
	token := e.org(t, "acme")
	blob := strings.Repeat("x", 32<<10)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var rows []schema.Row
	for i := range n {
		rows = append(rows, schema.Row{OrgID: "acme", Timestamp: now.Add(-time.Duration(i) * time.Minute), ID: uuid.New(),
			TraceID: "tr-big", EventType: "big", EventMetadata: fmt.Sprintf(`{"i":%d,"blob":%q}`, i, blob), ActorType: "user",
			ReceivedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
	}
	e.load(t, rows)

	for _, path := range []string{"/v1/events", "/v1/traces/tr-big/events"} {
		seen := pagesOf(t, e, token, path, maxBytes, n)
		if len(seen) != n {
			t.Fatalf("%s: events seen=%d, want %d", path, len(seen), n)
		}
	}
}

// pagesOf walks path at limit=1000 by cursor, checking that every answer
// stays near maxBytes and that the first is truncated with the total n;
// it returns the events seen.
func pagesOf(t *testing.T, e *env, token, path string, maxBytes, n int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	target := path + "?limit=1000"
	pages, largest := 0, 0
	for {
		r := e.get(t, token, target)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", target, r.status, r.raw)
		}
		pages++
		largest = max(largest, len(r.raw))
		if len(r.raw) > maxBytes+maxBytes/2 {
			t.Fatalf("page %d is %d bytes, want about %d at most", pages, len(r.raw), maxBytes)
		}
		for _, ev := range r.list.Events {
			if seen[ev.ID] {
				t.Fatalf("event %s twice", ev.ID)
			}
			seen[ev.ID] = true
		}
		if pages == 1 && (!r.list.Truncated || r.list.Total == nil || *r.list.Total != uint64(n)) {
			t.Fatalf("%s, first page: truncated=%v total=%v, want true and %d", path, r.list.Truncated, deref(r.list.Total), n)
		}
		if r.list.NextCursor == nil {
			break
		}
		if pages > 100 {
			t.Fatal("no end after 100 pages")
		}
		target = path + "?limit=1000&cursor=" + url.QueryEscape(*r.list.NextCursor)
	}
	t.Logf("%s: %d events of 32 KiB at limit=1000: %d pages, largest answer %d bytes (bound %d)", path, n, pages, largest, maxBytes)
	return seen
}
