package query

import (
	"context"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// TestHourCountsStayExact asks the totals of ranges narrowed by time alone
// while the events change under them — new events in a counted hour, a
// re-sent copy of an event, an event expiring, access records, another
// org — and checks each against a count of the events with FINAL, and
// that hours not written since are answered from the kept counts.
func TestHourCountsStayExact(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HourSettle = 0 })
	token := e.org(t, "acme")
	e.org(t, "other")
	now := testClock()
	rng := rand.New(rand.NewPCG(11, 12))
	rows := genRows(rng, "acme", 3000, now) // over 20 days; about 5% expired
	soon := rows[17]
	soon.ID, soon.ExpiresAt = genUUID(rng), now.Add(10*time.Second)
	soon.Timestamp = now.Add(-50 * time.Hour).Truncate(time.Hour).Add(17 * time.Minute)
	e.load(t, append(rows, soon))
	e.load(t, genRows(rng, "other", 500, now))

	ranges := []string{
		"",
		"from=" + rfc(now.Add(-30*24*time.Hour)),
		"from=" + rfc(now.Add(-7*24*time.Hour-13*time.Minute)) + "&to=" + rfc(now.Add(-2*24*time.Hour+29*time.Minute)),
		"to=" + rfc(now.Add(-3*time.Hour-1*time.Minute)),
		"from=" + rfc(now.Add(-51*time.Hour)) + "&to=" + rfc(now.Add(-49*time.Hour)),
		"from=" + rfc(now.Add(-7*24*time.Hour)) + "&includeAccess=true",
	}
	cache := e.handler.read.hourCache
	check := func(step string) {
		t.Helper()
		for _, q := range ranges {
			awayFromExpiry(soon.ExpiresAt)
			got := e.mustList(t, token, "/v1/events?limit=5&"+q)
			if want := finalCount(t, e, "acme", q); got.Total == nil || *got.Total != want {
				t.Errorf("%s, %q: total %v, want %d", step, q, deref(got.Total), want)
			}
		}
	}
	counts := func() (reused, counted uint64) { return cache.reused.Load(), cache.counted.Load() }

	check("first reads")
	r0, c0 := counts()
	if c0 == 0 {
		t.Fatalf("first reads counted no hour")
	}
	check("second reads")
	r1, c1 := counts()
	// (Past soon's expiry its hour is rightly counted again.)
	if time.Now().Before(soon.ExpiresAt) && (c1 != c0 || r1 == r0) {
		t.Fatalf("second reads: %d hours counted again, %d reused, want 0 counted and some reused", c1-c0, r1-r0)
	}

	// A new event in a counted hour, and a copy of a stored event sent again
	// (same org, time and id: FINAL folds the two).
	fresh := genRows(rng, "acme", 1, now)[0]
	fresh.Timestamp, fresh.ExpiresAt = rows[5].Timestamp.Add(time.Millisecond), now.Add(24*time.Hour)
	var again schema.Row
	for _, r := range rows {
		if r.ExpiresAt.After(now.Add(time.Hour)) && r.Timestamp.Before(now.Add(-2*time.Hour)) {
			again = r
			break
		}
	}
	e.load(t, []schema.Row{fresh, again})
	check("after a new event and a re-sent copy")
	_, c2 := counts()
	if c2-c1 == 0 || (time.Now().Before(soon.ExpiresAt) && c2-c1 > 2*uint64(len(ranges))) {
		t.Errorf("after two writes: %d hours counted again, want 1-2 per range", c2-c1)
	}

	// An access record: left out unless asked for.
	access := genRows(rng, "acme", 1, now)[0]
	access.EventType, access.ExpiresAt = schema.TypeQuery, now.Add(24*time.Hour)
	access.Timestamp = now.Add(-5 * 24 * time.Hour)
	e.load(t, []schema.Row{access})
	check("after an access record")

	// An event expiring: its hour's count is not used past its expiry.
	for time.Now().Before(soon.ExpiresAt.Add(time.Second)) {
		time.Sleep(200 * time.Millisecond)
	}
	check("after an expiry")

	// The page by number uses the same counts: page 7 of 50 as without them.
	q := "/v1/events?limit=50&page=7&from=" + url.QueryEscape(rfc(now.Add(-10*24*time.Hour)))
	with := e.mustList(t, token, q)
	e.handler.read.hourCache = nil
	without := e.mustList(t, token, q)
	e.handler.read.hourCache = cache
	if !slices.Equal(ids(with.Events), ids(without.Events)) || deref(with.Total) != deref(without.Total) {
		t.Errorf("page 7: %d events (total %d) with the hour counts, %d (total %d) without",
			len(with.Events), deref(with.Total), len(without.Events), deref(without.Total))
	}
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// awayFromExpiry waits out the instant an event expires when it is less
// than 2 s ahead (or just passed), so that two answers compared next are
// both read before it or both after it: across it they rightly differ.
func awayFromExpiry(at time.Time) {
	if d := time.Until(at); d > -500*time.Millisecond && d < 2*time.Second {
		time.Sleep(d + 500*time.Millisecond)
	}
}

// finalCount counts org's live events under the time range of q (from, to,
// includeAccess) with FINAL, as a page's total counts them.
func finalCount(t *testing.T, e *env, org, q string) uint64 {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	sql := "SELECT count() FROM events FINAL WHERE org_id = ? AND expires_at > now64(3)"
	args := []any{org}
	if s := v.Get("from"); s != "" {
		ts, _ := time.Parse(time.RFC3339Nano, s)
		sql, args = sql+" AND timestamp >= ?", append(args, ts)
	}
	if s := v.Get("to"); s != "" {
		ts, _ := time.Parse(time.RFC3339Nano, s)
		sql, args = sql+" AND timestamp < ?", append(args, ts)
	}
	if v.Get("includeAccess") != "true" {
		sql, args = sql+" AND event_type NOT IN ?", append(args, schema.AccessEventTypes)
	}
	var n uint64
	if err := e.db.Conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHourCountsWaitForSettledWrites: an hour written within the settle
// time is counted at every read, never kept (its mark may have become
// visible before its events).
func TestHourCountsWaitForSettledWrites(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HourSettle = time.Hour })
	token := e.org(t, "acme")
	now := testClock()
	e.load(t, liveRows(rand.New(rand.NewPCG(3, 4)), "acme", 400, now))
	for range 2 {
		if got := e.mustList(t, token, "/v1/events?limit=5"); deref(got.Total) != uint64(400) {
			t.Fatalf("total %v, want 400", deref(got.Total))
		}
	}
	if c := e.handler.read.hourCache; c.reused.Load() != 0 || c.counted.Load() == 0 {
		t.Errorf("hours reused %d, counted %d: want none reused", c.reused.Load(), c.counted.Load())
	}
}

// TestHourCountsAnswerTimeAggregates: counts per hour, per day and in all
// over ranges narrowed by time alone are the same from the hour counts as
// from the events.
func TestHourCountsAnswerTimeAggregates(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HourSettle = 0 })
	token := e.org(t, "acme")
	now := testClock()
	rng := rand.New(rand.NewPCG(5, 6))
	rows := genRows(rng, "acme", 2000, now)
	for i := range rows[:40] {
		rows[i].EventType = schema.AccessEventTypes[i%len(schema.AccessEventTypes)]
	}
	e.load(t, rows)
	cache := e.handler.read.hourCache
	for _, q := range []string{
		"interval=hour", "interval=day", "", "metrics=count", "interval=hour&includeAccess=true",
		"interval=day&from=" + url.QueryEscape(rfc(now.Add(-9*24*time.Hour-7*time.Minute))) + "&to=" + url.QueryEscape(rfc(now.Add(-2*time.Hour-3*time.Minute))),
		"interval=hour&from=" + url.QueryEscape(rfc(now.Add(-3*time.Hour-30*time.Minute))),
		"interval=hour&from=" + url.QueryEscape(rfc(now.Add(-90*time.Minute))) + "&to=" + url.QueryEscape(rfc(now.Add(-80*time.Minute))),
	} {
		for range 2 { // counted, then kept
			e.handler.read.hourCache = cache
			with := e.get(t, token, "/v1/aggregates?"+q)
			e.handler.read.hourCache = nil
			without := e.get(t, token, "/v1/aggregates?"+q)
			if with.status != 200 || string(with.raw) != string(without.raw) {
				t.Fatalf("%s: with the hour counts %d %s\nwithout %d %s", q, with.status, with.raw, without.status, without.raw)
			}
		}
	}
	e.handler.read.hourCache = cache
	if cache.reused.Load() == 0 {
		t.Errorf("no hour was answered from the kept counts")
	}
}

// TestFilteredHourCountsStayExact: ranges with conditions besides time
// (type, project, actor, the email search box, metadata) keep their hour
// counts apart from the whole org's; shown again they are answered from
// the kept counts, and their totals, pages by number and histograms stay
// the same as without the counts while events matching them are written,
// re-sent and expire, and while other filters' events are written.
func TestFilteredHourCountsStayExact(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HourSettle = 0 })
	token := e.org(t, "acme")
	now := testClock()
	rng := rand.New(rand.NewPCG(21, 22))
	rows := genRows(rng, "acme", 3000, now)
	soon := rows[23]
	soon.ID, soon.EventType, soon.ProjectID = genUUID(rng), "get-secrets", "p-1"
	soon.ExpiresAt = now.Add(10 * time.Second)
	soon.Timestamp = now.Add(-30 * time.Hour).Truncate(time.Hour).Add(9 * time.Minute)
	e.load(t, append(rows, soon))

	week := "&from=" + url.QueryEscape(rfc(now.Add(-7*24*time.Hour-13*time.Minute)))
	filters := []string{
		"eventType=get-secrets" + week,
		"eventType=get-secrets&projectId=p-1" + week,
		"actorId=u-2",
		"eventType=get-secrets&eventType=execute&to=" + url.QueryEscape(rfc(now.Add(-5*time.Hour-1*time.Minute))),
		"actorEmailContains=ada" + week,
		"actorId=u-1&includeAccess=true",
	}
	filtered := e.handler.read.filterHours
	whole := e.handler.read.hourCache
	check := func(step string) {
		t.Helper()
		for _, q := range filters {
			for _, path := range []string{"/v1/events?limit=20&" + q, "/v1/events?limit=20&page=3&" + q, "/v1/aggregates?interval=hour&" + q} {
				awayFromExpiry(soon.ExpiresAt)
				e.handler.read.filterHours = filtered
				with := e.get(t, token, path)
				e.handler.read.filterHours = nil
				without := e.get(t, token, path)
				e.handler.read.filterHours = filtered
				if with.status != 200 || string(with.raw) != string(without.raw) {
					t.Fatalf("%s, %s: with the kept counts %d %.300s\nwithout %d %.300s", step, path, with.status, with.raw, without.status, without.raw)
				}
			}
		}
	}
	check("first reads")
	r0, c0 := filtered.reused.Load(), filtered.counted.Load()
	if c0 == 0 || whole.counted.Load() != 0 {
		t.Fatalf("first reads: %d filtered hours counted, %d whole-org hours: want some, and none", c0, whole.counted.Load())
	}
	check("second reads")
	if r1, c1 := filtered.reused.Load(), filtered.counted.Load(); time.Now().Before(soon.ExpiresAt) && (c1 != c0 || r1 == r0) {
		t.Fatalf("second reads: %d hours counted again, %d reused, want 0 counted and some reused", c1-c0, r1-r0)
	}
	// What the operator's metrics show.
	if w, f, _ := e.handler.HourCounts(); w != (HourCountStats{}) || f.Reused != filtered.reused.Load() || f.Counted != c0 || f.Kept == 0 {
		t.Errorf("HourCounts: whole %+v, filtered %+v; want none whole, the filtered ones", w, f)
	}

	// A new event matching the filters in a counted hour, an event of the
	// same hour matching none of them, and a re-sent copy of a stored one.
	match := genRows(rng, "acme", 1, now)[0]
	match.Timestamp, match.ExpiresAt = now.Add(-3*24*time.Hour).Truncate(time.Hour).Add(time.Minute), now.Add(24*time.Hour)
	match.EventType, match.ProjectID, match.ActorID, match.ActorEmail = "get-secrets", "p-1", "u-2", "ada@example.com"
	other := match
	other.ID, other.EventType, other.ActorID, other.ActorEmail = genUUID(rng), "USER_LOGIN", "u-3", "bob@example.org"
	var again schema.Row
	for _, r := range rows {
		if r.EventType == "get-secrets" && r.ExpiresAt.After(now.Add(time.Hour)) && r.Timestamp.After(now.Add(-6*24*time.Hour)) {
			again = r
			break
		}
	}
	e.load(t, []schema.Row{match, other, again})
	check("after new events and a re-sent copy")

	for time.Now().Before(soon.ExpiresAt.Add(time.Second)) {
		time.Sleep(200 * time.Millisecond)
	}
	check("after an expiry")
}

// TestEventTypeHourCountsStayExact: the event-type catalog answered from
// the hour counts kept per type is the same as read from the events, for
// whole orgs and filtered ranges, while events of a new type are written
// into a counted hour, a stored event is re-sent, an access record is
// written and the only event of a type expires; catalogs asked again are
// answered from the kept hours; and a bound smaller than one org's hours
// keeps the answers exact and the cache within it.
func TestEventTypeHourCountsStayExact(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HourSettle = 0 })
	token := e.org(t, "acme")
	e.org(t, "other")
	now := testClock()
	rng := rand.New(rand.NewPCG(31, 32))
	rows := genRows(rng, "acme", 3000, now)
	for i := range rows[:30] {
		rows[i].EventType = schema.AccessEventTypes[i%len(schema.AccessEventTypes)]
	}
	soon := rows[40]
	soon.ID, soon.EventType, soon.ProjectID = genUUID(rng), "rotate-root-key", "p-1"
	soon.ExpiresAt = now.Add(10 * time.Second)
	soon.Timestamp = now.Add(-30 * time.Hour).Truncate(time.Hour).Add(9 * time.Minute)
	e.load(t, append(rows, soon))
	e.load(t, genRows(rng, "other", 500, now))

	week := "from=" + url.QueryEscape(rfc(now.Add(-7*24*time.Hour-13*time.Minute)))
	queries := []string{
		"",
		week,
		week + "&includeAccess=true",
		"projectId=p-1",
		"actorId=u-2&" + week,
		"to=" + url.QueryEscape(rfc(now.Add(-5*time.Hour-1*time.Minute))),
		"from=" + url.QueryEscape(rfc(now.Add(-51*time.Hour))) + "&to=" + url.QueryEscape(rfc(now.Add(-49*time.Hour-30*time.Minute))),
	}
	cache := e.handler.read.typeHours
	check := func(step string) {
		t.Helper()
		for _, q := range queries {
			awayFromExpiry(soon.ExpiresAt)
			e.handler.read.typeHours = cache
			with := e.get(t, token, "/v1/event-types?"+q)
			e.handler.read.typeHours = nil
			without := e.get(t, token, "/v1/event-types?"+q)
			e.handler.read.typeHours = cache
			if with.status != 200 || string(with.raw) != string(without.raw) {
				t.Fatalf("%s, %q: with the kept counts %d %.400s\nwithout %d %.400s", step, q, with.status, with.raw, without.status, without.raw)
			}
		}
	}
	check("first reads")
	r0, c0 := cache.reused.Load(), cache.counted.Load()
	if c0 == 0 {
		t.Fatalf("first reads counted no hour")
	}
	check("second reads")
	if r1, c1 := cache.reused.Load(), cache.counted.Load(); time.Now().Before(soon.ExpiresAt) && (c1 != c0 || r1 == r0) {
		t.Fatalf("second reads: %d hours counted again, %d reused, want 0 counted and some reused", c1-c0, r1-r0)
	}
	if live := time.Until(soon.ExpiresAt) > time.Second; live && !strings.Contains(string(e.get(t, token, "/v1/event-types?projectId=p-1").raw), `"rotate-root-key"`) {
		t.Fatalf("the catalog of project p-1 lacks the type of its event soon to expire")
	}

	// An event of a new type in a counted hour, and a re-sent copy.
	fresh := genRows(rng, "acme", 1, now)[0]
	fresh.EventType, fresh.ProjectID, fresh.ActorID = "break-glass", "p-1", "u-2"
	fresh.Timestamp, fresh.ExpiresAt = now.Add(-3*24*time.Hour).Truncate(time.Hour).Add(time.Minute), now.Add(24*time.Hour)
	var again schema.Row
	for _, r := range rows {
		if r.ProjectID == "p-1" && r.ExpiresAt.After(now.Add(time.Hour)) && r.Timestamp.After(now.Add(-6*24*time.Hour)) {
			again = r
			break
		}
	}
	e.load(t, []schema.Row{fresh, again})
	check("after a new type and a re-sent copy")
	if !strings.Contains(string(e.get(t, token, "/v1/event-types?"+week).raw), `"break-glass"`) {
		t.Fatalf("the week's catalog lacks the type written into a counted hour")
	}

	access := genRows(rng, "acme", 1, now)[0]
	access.EventType, access.ExpiresAt = schema.TypeQuery, now.Add(24*time.Hour)
	access.Timestamp = now.Add(-4 * 24 * time.Hour)
	e.load(t, []schema.Row{access})
	check("after an access record")

	for time.Now().Before(soon.ExpiresAt.Add(time.Second)) {
		time.Sleep(200 * time.Millisecond)
	}
	check("after an expiry")
	if strings.Contains(string(e.get(t, token, "/v1/event-types?projectId=p-1").raw), `"rotate-root-key"`) {
		t.Fatalf("the catalog still lists the type of an expired event")
	}

	// A bound smaller than the org's hours: still exact, never over it.
	small := newHourCache(60, 0)
	e.handler.read.typeHours = small
	cache = small
	for range 2 {
		check("a bound of 60 cells")
	}
	small.mu.Lock()
	size, n := small.size, 0
	for _, en := range small.m {
		n += en.cells()
	}
	small.mu.Unlock()
	if size > 60 || size != n || size == 0 {
		t.Errorf("a cache bounded to 60 cells holds %d (its entries %d)", size, n)
	}

	// More rows (hour, type) to read than the bound: the catalog is read
	// as such, and nothing is kept of it.
	few := newHourCache(500_000, 0)
	few.maxRows = 5
	e.handler.read.typeHours = few
	cache = few
	check("a bound of 5 rows read")
	if few.size != 0 || few.reused.Load() != 0 {
		t.Errorf("a read past the row bound kept %d cells, reused %d hours", few.size, few.reused.Load())
	}
}
