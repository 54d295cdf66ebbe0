package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// TestDayGroupsStayExact: aggregates answered from the day groups are the
// aggregates read from the events, byte for byte, through first reads,
// reads of kept days, rows of a count that never got its markers, kept
// rows lost (refused, counted again), a write into a kept day (a new
// actor, a re-sent copy), an access record, and an event's expiry.
func TestDayGroupsStayExact(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.HourSettle = 0 })
	token := e.org(t, "acme")
	e.org(t, "other")
	now := testClock()
	rng := rand.New(rand.NewPCG(41, 42))
	rows := genRows(rng, "acme", 4000, now)
	for i := range rows[:40] {
		rows[i].EventType = schema.AccessEventTypes[i%len(schema.AccessEventTypes)]
	}
	// An event of its own actor in a whole day, expiring during the test.
	soon := rows[50]
	soon.ID, soon.ActorID, soon.ActorEmail = genUUID(rng), "u-soon", "soon@example.com"
	soon.ExpiresAt = now.Add(8 * time.Second)
	soon.Timestamp = now.Add(-5 * 24 * time.Hour).Truncate(24 * time.Hour).Add(7 * time.Hour)
	anchor := rows[60] // the oldest day of the data
	anchor.ID, anchor.ExpiresAt = genUUID(rng), now.Add(24*time.Hour)
	anchor.Timestamp = now.Truncate(24*time.Hour).AddDate(0, 0, -20).Add(time.Minute)
	e.load(t, append(rows, soon, anchor))
	e.load(t, genRows(rng, "other", 800, now))

	day := func(back int) string {
		return url.QueryEscape(rfc(now.Add(-time.Duration(back)*24*time.Hour - 13*time.Minute)))
	}
	queries := []string{
		"groupBy=actorId&top=10&from=" + day(15),
		"groupBy=actorId,eventType&from=" + day(12) + "&to=" + day(1),
		"groupBy=projectId&includeAccess=true",
		"groupBy=eventType,actorType,projectId&top=4&metrics=count&from=" + day(19) + "&to=" + day(2),
		"groupBy=actorEmail&top=5",
		"groupBy=actorId&top=3&from=" + day(3) + "&to=" + day(2), // less than two whole days: read as such
	}
	d := e.handler.read.dayGroups
	d.margin = time.Second
	check := func(step string) {
		t.Helper()
		for _, q := range queries {
			awayFromExpiry(soon.ExpiresAt)
			e.handler.read.dayGroups = d
			with := e.get(t, token, "/v1/aggregates?"+q)
			d.running.Wait() // the blocks it counts serve the next request
			e.handler.read.dayGroups = nil
			without := e.get(t, token, "/v1/aggregates?"+q)
			e.handler.read.dayGroups = d
			if with.status != 200 || string(with.raw) != string(without.raw) {
				t.Fatalf("%s, %q: with the day groups %d %.600s\nwithout %d %.600s", step, q, with.status, with.raw, without.status, without.raw)
			}
		}
	}
	check("first reads")
	r0, c0 := d.reused.Load(), d.counted.Load()
	if c0 == 0 || d.failed.Load() != 0 {
		t.Fatalf("first reads counted %d days, %d failures", c0, d.failed.Load())
	}
	var weeks, days1 uint64
	if err := e.db.Conn.QueryRow(context.Background(), "SELECT countIf(days = 7), countIf(days = 1) FROM "+schema.DayGroupsTable+
		" WHERE kind = 0").Scan(&weeks, &days1); err != nil || weeks == 0 || days1 == 0 {
		t.Fatalf("kept %d weeks and %d days (%v); want some of each", weeks, days1, err)
	}
	check("second reads")
	if r1, c1 := d.reused.Load(), d.counted.Load(); c1 != c0 || r1 == r0 {
		t.Fatalf("second reads: %d days counted again, %d reused; want 0 counted and some reused", c1-c0, r1-r0)
	}
	if body := string(e.get(t, token, "/v1/aggregates?groupBy=actorId&from="+day(15)).raw); time.Until(soon.ExpiresAt) > time.Second &&
		!strings.Contains(body, `"u-soon"`) {
		t.Fatalf("the actors lack the one whose event expires soon: %.300s", body)
	}

	// A run whose markers were never written (a reader stopped between the
	// two): its rows are never read.
	p, err := readsql.NewParser(queries[0], readsql.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	f, a := p.Filter(), p.Aggregate()
	shape := readsql.DayShape(f, a.GroupBy)
	days := []time.Time{now.Add(-4 * 24 * time.Hour).Truncate(24 * time.Hour), now.Add(-12 * 24 * time.Hour).Truncate(24 * time.Hour)}
	week := days[1].AddDate(0, 0, -int(days[1].Unix()/86400%weekDays))
	for _, w := range []struct {
		days   int
		starts []time.Time
	}{{1, days}, {weekDays, []time.Time{week}}} {
		if err := e.handler.read.store.exec(context.Background(), readsql.DayGroupsWrite("acme", shape, 1, now.Add(time.Minute), f, a.GroupBy, w.days, w.starts)); err != nil {
			t.Fatal(err)
		}
	}
	check("beside a run without markers")

	// Runs missing some of their rows (a replica that has the markers and
	// not yet every row): not used, their days are counted again.
	if err := e.db.Conn.Exec(context.Background(), "ALTER TABLE "+schema.DayGroupsTable+" DELETE WHERE kind = 1 AND g0 = 'u-1' SETTINGS mutations_sync = 1"); err != nil {
		t.Fatal(err)
	}
	c1 := d.counted.Load()
	check("after rows were lost")
	f1 := d.failed.Load()
	if d.counted.Load() == c1 || f1 == 0 {
		t.Fatalf("runs that lost rows: %d answers refused them, %d days counted again; want some of each", f1, d.counted.Load()-c1)
	}
	check("after the days were counted again")
	if d.failed.Load() != f1 {
		t.Fatalf("the days counted again still miss rows: %d more answers refused them", d.failed.Load()-f1)
	}

	// A new actor written into a kept day, and a re-sent copy of an event
	// of a kept week: both are counted again.
	fresh := genRows(rng, "acme", 1, now)[0]
	fresh.ActorID, fresh.ActorEmail, fresh.EventType = "u-late", "late@example.com", "get-secrets"
	fresh.Timestamp, fresh.ExpiresAt = days[0].Add(3*time.Hour), now.Add(24*time.Hour)
	var again schema.Row
	for _, r := range rows {
		if r.Timestamp.After(days[1]) && r.Timestamp.Before(days[1].Add(24*time.Hour)) && r.ExpiresAt.After(now.Add(time.Hour)) &&
			!schema.IsAccessEventType(r.EventType) {
			again = r
			break
		}
	}
	c1 = d.counted.Load()
	// And another on the fourth day of a week that the open ranges keep
	// (they start on the anchor's day, 20 days back; a week that starts
	// within 6 days of it ends a week or more before today).
	inWeek := fresh
	inWeek.ID, inWeek.ActorID, inWeek.ActorEmail = genUUID(rng), "u-later", "later@example.com"
	w := anchor.Timestamp.Truncate(24 * time.Hour)
	w = w.AddDate(0, 0, int((weekDays-w.Unix()/86400%weekDays)%weekDays))
	inWeek.Timestamp = w.AddDate(0, 0, 3).Add(time.Hour)
	e.load(t, []schema.Row{fresh, inWeek, again})
	check("after a new actor and a re-sent copy")
	if d.counted.Load() == c1 {
		t.Fatalf("days written since they were kept were not counted again")
	}
	if body := string(e.get(t, token, "/v1/aggregates?groupBy=actorId&from="+day(15)).raw); !strings.Contains(body, `"u-late"`) {
		t.Fatalf("the actors lack the one written into a kept day: %.300s", body)
	}

	access := genRows(rng, "acme", 1, now)[0]
	access.EventType, access.ExpiresAt, access.ActorID = schema.TypeQuery, now.Add(24*time.Hour), "u-reader"
	access.Timestamp = days[0].Add(5 * time.Hour)
	e.load(t, []schema.Row{access})
	check("after an access record")

	for time.Now().Before(soon.ExpiresAt.Add(time.Second)) {
		time.Sleep(200 * time.Millisecond)
	}
	check("after an expiry")
	if body := string(e.get(t, token, "/v1/aggregates?groupBy=actorId&from="+day(15)).raw); strings.Contains(body, `"u-soon"`) {
		t.Fatalf("the actors still list the one whose only event expired: %.300s", body)
	}
	if s := e.handler.DayGroups(); s.Reused != d.reused.Load() || s.Counted != d.counted.Load() || s.Failed != f1 {
		t.Errorf("DayGroups() = %+v", s)
	}

	// Requests at once while counts run in the background: each answer is
	// the one read from the events.
	e.handler.read.dayGroups = nil
	want := map[string]string{}
	for _, q := range queries[:3] {
		want[q] = string(e.get(t, token, "/v1/aggregates?"+q).raw)
	}
	e.handler.read.dayGroups = newDayGroups(true, 0)
	e.handler.read.dayGroups.margin = time.Second
	errs := make(chan string, 24)
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := queries[i%3]
			if got := e.get(t, token, "/v1/aggregates?"+q); got.status != 200 || string(got.raw) != want[q] {
				errs <- fmt.Sprintf("%q: %d %.300s", q, got.status, got.raw)
			}
		}()
	}
	wg.Wait()
	e.handler.read.dayGroups.running.Wait()
	close(errs)
	for msg := range errs {
		t.Error("at once:", msg)
	}
}
