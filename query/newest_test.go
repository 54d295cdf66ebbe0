package query

import (
	"bytes"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// TestNewestPageFromKeptHours reads newest pages (with and without their
// total, whole orgs, bounded ranges, access records, filters) once to keep
// their hours, then again, when their rows are first read from the newest
// kept hours that held them (newestSpan), and checks every answer byte for
// byte against the same request on a reader that keeps no hours; then
// again with kept counts made to promise far more than the hours hold, so
// that the span read first falls short and the reader must widen it.
func TestNewestPageFromKeptHours(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HourSettle = 0 })
	token := e.org(t, "acme")
	e.org(t, "other")
	now := testClock()
	rng := rand.New(rand.NewPCG(21, 22))
	rows := genRows(rng, "acme", 3000, now) // about 6 an hour over 20 days, ties included
	access := genRows(rng, "acme", 40, now)
	for i := range access {
		access[i].EventType = schema.TypeQuery
		access[i].Timestamp = now.Add(-time.Duration(i) * 7 * time.Minute)
		access[i].ExpiresAt = now.Add(24 * time.Hour)
	}
	e.load(t, append(rows, access...))
	e.load(t, genRows(rng, "other", 500, now))
	quiet := e.org(t, "quiet") // nothing written in its last 5 hours
	e.load(t, genRows(rng, "quiet", 400, now.Add(-5*time.Hour)))

	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return "/v1/events?" + v.Encode()
	}
	// Limits above what the newest kept hour holds (200 events share an
	// instant an hour ago), so that a span cut to it falls short below.
	requests := []string{
		q("limit", "300"),
		q("limit", "300", "total", "false"),
		q("limit", "40", "from", rfc(now.Add(-30*24*time.Hour))),
		q("limit", "30", "from", rfc(now.Add(-7*24*time.Hour)), "to", rfc(now.Add(-3*time.Hour-time.Minute))),
		q("limit", "30", "total", "false", "to", rfc(now.Add(-26*time.Hour-7*time.Minute))),
		q("limit", "250", "from", rfc(now.Add(-7*24*time.Hour)), "includeAccess", "true"),
		q("limit", "5", "eventType", "get-secrets"),
		q("limit", "60", "actorId", "u-2", "from", rfc(now.Add(-10*24*time.Hour))),
		q("limit", "60", "total", "false", "actorId", "u-2", "from", rfc(now.Add(-10*24*time.Hour))),
		q("limit", "30"), // last: at the quiet org, whose last hours are empty
	}
	rd := e.handler.read
	whole, filtered := rd.hourCache, rd.filterHours
	without := func(key, target string) []byte {
		t.Helper()
		rd.hourCache, rd.filterHours = nil, nil
		defer func() { rd.hourCache, rd.filterHours = whole, filtered }()
		return e.get(t, key, target).raw
	}
	check := func(step string, prepare func()) {
		t.Helper()
		for i, target := range requests {
			prepare()
			key := token
			if i == len(requests)-1 {
				key = quiet
			}
			got := e.get(t, key, target)
			if want := without(key, target); !bytes.Equal(got.raw, want) {
				t.Errorf("%s, %s:\n got %s\nwant %s", step, target, got.raw, want)
			}
		}
	}
	hinted := func() uint64 { return whole.hinted.Load() + filtered.hinted.Load() }

	check("first reads", func() {}) // (a request after one with the same org and filter finds its hours kept)
	before := hinted()
	check("second reads", func() {})
	if n := hinted() - before; n != uint64(len(requests)) {
		t.Fatalf("second reads: %d pages read from kept hours, want %d", n, len(requests))
	}

	// Kept counts that promise 1,000 events an hour, set before each
	// request: each span read first is then the newest kept hour, which
	// holds fewer than a page. The counts are marked stale, so that totals
	// count the hours again; only the span is wrong, and the answers must
	// not be.
	promise := func() {
		for _, c := range []*hourCache{whole, filtered} {
			c.mu.Lock()
			for k, v := range c.m {
				v.events, v.access, v.last = 1000, 0, time.Time{}
				c.m[k] = v
			}
			c.mu.Unlock()
		}
	}
	before = hinted()
	check("spans too short", promise)
	if n := hinted() - before; n != uint64(len(requests)) {
		t.Fatalf("spans too short: %d pages read from kept hours, want %d", n, len(requests))
	}
}
