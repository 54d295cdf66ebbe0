package query

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

func TestPageArithmetic(t *testing.T) {
	e := newEnv(t, nil)
	token := e.org(t, "acme")
	now := testClock()
	rng := rand.New(rand.NewPCG(3, 4))
	rows := liveRows(rng, "acme", 237, now) // none expired: 237 visible
	e.load(t, rows)
	for _, tc := range []struct {
		limit, page  int
		total, pages uint64
		events       int
		next         bool
	}{
		{50, 1, 237, 5, 50, true},
		{50, 5, 237, 5, 37, false},
		{50, 6, 237, 5, 0, false}, // beyond the end: empty, totals kept
		{1000, 1, 237, 1, 237, false},
		{237, 1, 237, 1, 237, false},
		{236, 1, 237, 2, 236, true},
		{1, 237, 237, 237, 1, false},
	} {
		res := e.mustList(t, token, fmt.Sprintf("/v1/events?limit=%d&page=%d", tc.limit, tc.page))
		if deref(res.Total) != tc.total || deref(res.Pages) != tc.pages || deref(res.Page) != tc.page ||
			len(res.Events) != tc.events || (res.NextCursor != nil) != tc.next {
			t.Errorf("limit=%d page=%d: total=%v pages=%v page=%v events=%d next=%v, want %d %d %d %d %v",
				tc.limit, tc.page, deref(res.Total), deref(res.Pages), deref(res.Page), len(res.Events),
				res.NextCursor != nil, tc.total, tc.pages, tc.page, tc.events, tc.next)
		}
	}
	res := e.mustList(t, token, "/v1/events")
	if len(res.Events) != schema.DefaultPageLimit || deref(res.Page) != 1 {
		t.Fatalf("defaults: %d events, page %v; want %d, 1", len(res.Events), deref(res.Page), schema.DefaultPageLimit)
	}
	// A cursor issued in page mode continues in cursor mode.
	next := e.mustList(t, token, "/v1/events?limit=50&cursor="+url.QueryEscape(*res.NextCursor))
	page2 := e.mustList(t, token, "/v1/events?limit=50&page=2")
	if !slices.Equal(ids(next.Events), ids(page2.Events)) {
		t.Fatal("the cursor of page 1 does not lead to page 2")
	}
	empty := e.mustList(t, token, "/v1/events?eventType=never-seen")
	if empty.Events == nil || deref(empty.Total) != uint64(0) || deref(empty.Pages) != uint64(0) {
		t.Fatalf("empty result: %s", e.get(t, token, "/v1/events?eventType=never-seen").raw)
	}
	// Every event carries the stored times and the wire fields.
	ev := res.Events[0]
	if ev.ReceivedAt.IsZero() || ev.CreatedAt.IsZero() || ev.ExpiresAt.IsZero() || ev.OrgID != "acme" || ev.ID == "" {
		t.Fatalf("event lacks stored fields: %+v", ev)
	}
}

// TestCursorStableWhileEventsArrive pages through an org by cursor while
// new events arrive, newer and older than the position reached, and
// duplicates of seen ones are re-sent: every event present at the start is
// returned exactly once, in order.
func TestCursorStableWhileEventsArrive(t *testing.T) {
	e := newEnv(t, nil)
	token := e.org(t, "acme")
	now := testClock()
	rng := rand.New(rand.NewPCG(5, 6))
	rows := liveRows(rng, "acme", 600, now)
	e.load(t, rows)
	for _, order := range []string{"desc", "asc"} {
		t.Run(order, func(t *testing.T) {
			base := newSpec().add("order", order)
			want := rowIDs(evalList(rows, "acme", base, time.Now()))
			initial := map[string]bool{}
			for _, id := range want {
				initial[id] = true
			}
			seen := map[string]int{}
			var got []string
			cursor := ""
			for page := 0; ; page++ {
				q := base.clone().add("limit", "37")
				if cursor != "" {
					q.add("cursor", cursor)
				}
				res := e.mustList(t, token, "/v1/events?"+q.query())
				for _, id := range ids(res.Events) {
					seen[id]++
					if initial[id] {
						got = append(got, id)
					}
				}
				// Arrivals: new events now and in the past, and re-sent copies.
				fresh := liveRows(rng, "acme", 5, now)
				fresh[0].Timestamp = time.Now().UTC().Truncate(time.Millisecond)
				e.load(t, append(fresh, rows[rng.IntN(len(rows))]))
				if res.NextCursor == nil {
					break
				}
				cursor = *res.NextCursor
			}
			for id, n := range seen {
				if n > 1 {
					t.Fatalf("event %s returned %d times", id, n)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pre-existing events: %d returned, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func TestCursorIsBoundToOrgFilterAndSort(t *testing.T) {
	e := newEnv(t, nil)
	tokenA := e.org(t, "acme")
	tokenB := e.org(t, "other")
	now := testClock()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, org := range []string{"acme", "other"} {
		rows := liveRows(rng, org, 200, now)
		for i := range rows {
			rows[i].EventType = "create-secret"
		}
		e.load(t, rows)
	}
	res := e.mustList(t, tokenA, "/v1/events?eventType=create-secret&limit=10")
	cursor := url.QueryEscape(*res.NextCursor)
	if r := e.get(t, tokenA, "/v1/events?eventType=create-secret&limit=10&cursor="+cursor); r.status != 200 {
		t.Fatalf("own cursor refused: %d %s", r.status, r.raw)
	}
	// The same filter written differently is the same filter.
	if r := e.get(t, tokenA, "/v1/events?eventType=create-secret,create-secret&limit=3&cursor="+cursor); r.status != 200 {
		t.Fatalf("equivalent filter refused: %d %s", r.status, r.raw)
	}
	adminB := e.key(t, "other", "admin")
	tampered := []byte(*res.NextCursor)
	tampered[len(tampered)/2] ^= 1
	for name, target := range map[string]struct{ token, url string }{
		"other org, read key":  {tokenB, "/v1/events?eventType=create-secret&limit=10&cursor=" + cursor},
		"other org, admin key": {adminB, "/v1/events?eventType=create-secret&limit=10&cursor=" + cursor},
		"other filter":         {tokenA, "/v1/events?eventType=create-secret&actorType=user&limit=10&cursor=" + cursor},
		"no filter":            {tokenA, "/v1/events?limit=10&cursor=" + cursor},
		"other sort":           {tokenA, "/v1/events?eventType=create-secret&order=asc&cursor=" + cursor},
		"other timeline":       {tokenA, "/v1/traces/tr-1/events?cursor=" + cursor},
		"tampered":             {tokenA, "/v1/events?eventType=create-secret&cursor=" + url.QueryEscape(string(tampered))},
		"garbage":              {tokenA, "/v1/events?eventType=create-secret&cursor=%27%3B+DROP+TABLE+events"},
		"truncated":            {tokenA, "/v1/events?eventType=create-secret&cursor=" + cursor[:20]},
	} {
		r := e.get(t, target.token, target.url)
		if r.status != 400 || r.err.Error.Code != "invalid_cursor" {
			t.Errorf("%s: %d %s, want 400 invalid_cursor", name, r.status, r.raw)
		}
	}
	// A cursor from a handler with another key (another instance or a
	// restart without a configured key) is refused too.
	other := newEnv(t, nil, func(c *Config) { c.CursorKey = []byte("another key, 32 bytes or longer..") })
	otherToken := other.org(t, "acme")
	if r := other.get(t, otherToken, "/v1/events?eventType=create-secret&limit=10&cursor="+cursor); r.err.Error.Code != "invalid_cursor" {
		t.Fatalf("cursor signed with another key: %d %s", r.status, r.raw)
	}
}

// TestNewestPageWithoutTotal: total=false answers the newest page with the
// same events as page mode with its total, leaves total and pages null,
// and gives a next cursor exactly when more events follow; both the
// newest day alone (small pages) and the whole range (pages the day cannot
// fill) are exercised.
func TestNewestPageWithoutTotal(t *testing.T) {
	e := newEnv(t, nil)
	token := e.org(t, "acme")
	now := testClock()
	rng := rand.New(rand.NewPCG(7, 8))
	rows := liveRows(rng, "acme", 237, now)
	e.load(t, rows)
	for _, q := range []string{"limit=1", "limit=5", "limit=50", "limit=236", "limit=237", "limit=1000",
		"limit=20&eventType=" + url.QueryEscape(poolEventTypes[0]), "limit=10&to=" + url.QueryEscape(now.Add(-5*24*time.Hour).Format(time.RFC3339))} {
		want := e.mustList(t, token, "/v1/events?"+q)
		got := e.mustList(t, token, "/v1/events?total=false&"+q)
		if !slices.Equal(ids(got.Events), ids(want.Events)) {
			t.Errorf("%s: total=false gave %d events %v, page mode %d %v", q, len(got.Events), ids(got.Events), len(want.Events), ids(want.Events))
		}
		if got.Total != nil || got.Pages != nil || deref(got.Page) != 1 {
			t.Errorf("%s: total=%v pages=%v page=%v, want null, null, 1", q, got.Total, got.Pages, deref(got.Page))
		}
		if more := uint64(len(want.Events)) < *want.Total; (got.NextCursor != nil) != more {
			t.Errorf("%s: next cursor %v, want one: %v (total %d)", q, got.NextCursor != nil, more, *want.Total)
		}
	}
	// Past page 1, or sorted otherwise, the flag changes nothing.
	for _, q := range []string{"limit=50&page=2", "limit=50&sort=actor"} {
		if got := e.mustList(t, token, "/v1/events?total=false&"+q); got.Total == nil || *got.Total != 237 {
			t.Errorf("%s: total %v, want 237", q, got.Total)
		}
	}
	if r := e.get(t, token, "/v1/events?total=maybe"); r.status != 400 {
		t.Errorf("total=maybe: status %d, want 400", r.status)
	}
}
