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
// rest, each event once.
func TestPageBytesAreBounded(t *testing.T) {
	const maxBytes, n = 256 << 10, 120
	e := newEnv(t, nil, func(c *Config) { c.MaxPageBytes = maxBytes })
	token := e.org(t, "acme")
	blob := strings.Repeat("x", 32<<10)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var rows []schema.Row
	for i := range n {
		rows = append(rows, schema.Row{OrgID: "acme", Timestamp: now.Add(-time.Duration(i) * time.Minute), ID: uuid.New(),
			EventType: "big", EventMetadata: fmt.Sprintf(`{"i":%d,"blob":%q}`, i, blob), ActorType: "user",
			ReceivedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
	}
	e.load(t, rows)

	seen := map[string]bool{}
	target := "/v1/events?limit=1000"
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
		if pages == 1 && (!r.list.Truncated || r.list.Total == nil || *r.list.Total != n) {
			t.Fatalf("first page: truncated=%v total=%v, want true and %d", r.list.Truncated, r.list.Total, n)
		}
		if r.list.NextCursor == nil {
			break
		}
		if pages > 100 {
			t.Fatal("no end after 100 pages")
		}
		target = "/v1/events?limit=1000&cursor=" + url.QueryEscape(*r.list.NextCursor)
	}
	t.Logf("%d events of 32 KiB at limit=1000: %d pages, largest answer %d bytes (bound %d)", n, pages, largest, maxBytes)
	if len(seen) != n {
		t.Fatalf("events seen=%d, want %d", len(seen), n)
	}
}
