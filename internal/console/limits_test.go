package console_test

import (
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/servertest"
)

// TestConsoleUnderQueryLimit: with one query per org at once, the console's
// first load (list, event types, histogram, three top lists: more reads
// than the limit, and than the server lets wait) still shows the page in
// full: the server lets a query wait for a slot, the console limits its own
// parallelism and tries a 429 again after its Retry-After. An admin key
// sees Streams, a read key does not, and neither records a stream.list.
func TestConsoleUnderQueryLimit(t *testing.T) {
	chromium(t)
	s := servertest.Start(t, "-max-queries-per-org", "1")
	keys := s.Org(t, "acme", "ingest", "read", "admin")
	seed(t, s, keys["ingest"], time.Now().UTC())
	s.WaitTotal(t, keys["read"], "resourceType=secret", seedCount+1)

	b := newBrowser(t)
	for _, c := range []struct {
		role    string
		streams bool
	}{{"admin", true}, {"read", false}} {
		p := tab(t, b, s.Base, shots(t))
		p.signIn(keys[c.role])
		if got, want := len(p.rows()), 50; got != want {
			t.Fatalf("%s: first page rows=%d, want %d (%s)", c.role, got, want, p.text("#log"))
		}
		var res struct {
			Histogram, Tops int
			Streams         bool
		}
		p.eval(`({histogram: document.querySelectorAll('#histogram rect.bar').length,
			tops: document.querySelectorAll('#summary section.top li').length,
			streams: !document.getElementById('nav-streams').hidden})`, &res)
		if res.Histogram == 0 || res.Tops == 0 {
			t.Fatalf("%s: summary not shown in full: %d bars, %d top entries (%s)", c.role, res.Histogram, res.Tops, p.text("#summary"))
		}
		if res.Streams != c.streams {
			t.Fatalf("%s: Streams in the menu=%v, want %v", c.role, res.Streams, c.streams)
		}
	}
	if _, n, _ := apiList(t, s, keys["admin"], "/v1/events?limit=1&eventType=stream.list"); n != 0 {
		t.Fatalf("the console recorded %d stream.list reads, want 0", n)
	}
}
