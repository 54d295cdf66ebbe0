package query

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// TestFirstPages reads the first pages of traces and timelines on one
// fixture.
func TestFirstPages(t *testing.T) {
	fx := newFixture(t)
	t.Run("traces", func(t *testing.T) { tracePages(t, fx) })
	t.Run("timelines", func(t *testing.T) { timelineFirstPages(t, fx) })
}

// tracePages reads the first pages of lists narrowed to traces
// (Reader.tracePage): one trace, two, one that matches nothing, with
// another filter, in each order (firstPages), through /v1/events and the
// trace path.
func tracePages(t *testing.T, fx *fixture) {
	specs := []*spec{
		newSpec().add("traceId", "tr-1"),
		newSpec().add("traceId", "tr-2,tr-3").add("sort", "eventType").add("order", "asc"),
		newSpec().add("traceId", "tr-4").add("eventType", "create-secret,execute").add("order", "asc"),
		newSpec().add("traceId", "tr-5").add("from", fx.now.Add(-5*24*time.Hour).Format(time.RFC3339Nano)).add("sort", "actor"),
		newSpec().add("traceId", "tr-99"),
	}
	walked := 0
	for _, s := range specs {
		want := rowIDs(evalList(fx.rows, "acme", s, time.Now()))
		walked += fx.firstPages(t, "/v1/events", s, want)
	}
	if walked == 0 {
		t.Fatal("no trace filled a page: nothing was counted")
	}
	// The trace path; then another org's key, which finds that org's own
	// events of the same trace id and none of acme's.
	want := rowIDs(evalList(fx.rows, "acme", newSpec().add("traceId", "tr-6"), time.Now()))
	res := fx.mustList(t, fx.keys["acme"], "/v1/traces/tr-6/events?limit=20")
	if got := ids(res.Events); !slices.Equal(got, want[:20]) || deref(res.Total) != uint64(len(want)) {
		t.Fatalf("trace tr-6: %d events (total %v), want 20 of %d", len(got), deref(res.Total), len(want))
	}
	res = fx.mustList(t, fx.keys["third"], "/v1/traces/tr-6/events?limit=1000")
	want = rowIDs(evalList(fx.rows, "third", newSpec().add("traceId", "tr-6"), time.Now()))
	if got := ids(res.Events); !slices.Equal(got, want) || deref(res.Total) != uint64(len(want)) {
		t.Fatalf("trace tr-6 at another org: %d events (total %v), want %d", len(got), deref(res.Total), len(want))
	}
}

// timelineFirstPages reads the first pages of resource and actor
// timelines (Reader.firstKeyPage) as firstPages does.
func timelineFirstPages(t *testing.T, fx *fixture) {
	walked := 0
	for _, id := range []string{"s-1", "s-2", "ключ", "s-9"} {
		want := rowIDs(slices.DeleteFunc(evalList(fx.rows, "acme", newSpec().add("resourceType", "secret"), time.Now()),
			func(r schema.Row) bool { return r.ResourceID != id }))
		walked += fx.firstPages(t, "/v1/resources/secret/"+escapePath(id)+"/events", newSpec(), want)
		from := fx.now.Add(-6 * 24 * time.Hour)
		want = rowIDs(slices.DeleteFunc(evalList(fx.rows, "acme", newSpec().add("resourceType", "secret").add("from", from.Format(time.RFC3339Nano)).add("order", "asc"), time.Now()),
			func(r schema.Row) bool { return r.ResourceID != id }))
		walked += fx.firstPages(t, "/v1/resources/secret/"+escapePath(id)+"/events", newSpec().add("from", from.Format(time.RFC3339Nano)).add("order", "asc"), want)
	}
	for _, actor := range []string{"u-1", "u-3", "nobody"} {
		// Only an actor's whole list, access records included, is read from
		// the lookup table (readsql.LookupFor); the fixture has none.
		want := rowIDs(evalList(fx.rows, "acme", newSpec().add("actorId", actor), time.Now()))
		walked += fx.firstPages(t, "/v1/events", newSpec().add("actorId", actor).add("includeAccess", "true"), want)
	}
	if walked == 0 {
		t.Fatal("no timeline filled a page: nothing was counted")
	}
}

// firstPages asks path for the first page of s with limits below, equal to
// and above the length of the list want, with and without the total, and
// compares each answer's events, total and pages with want, then follows
// its cursor to the end. Only a page that holds the whole list may be
// answered without counting (Reader.uncounted). It returns the pages read
// by cursor.
func (fx *fixture) firstPages(t *testing.T, path string, s *spec, want []string) (walked int) {
	t.Helper()
	rd := fx.handler.read
	// The smallest limit leaves about ten pages to walk by cursor.
	for _, limit := range []int{max(7, len(want)/10), 60, max(1, len(want)), 1000} {
		for _, total := range []bool{true, false} {
			q := s.clone().add("limit", fmt.Sprint(limit))
			if !total {
				q.add("total", "false")
			}
			target := path + "?" + q.query()
			before := rd.uncounted.Load()
			res := fx.mustList(t, fx.keys["acme"], target)
			got := ids(res.Events)
			if n := min(limit, len(want)); !slices.Equal(got, want[:n]) {
				t.Fatalf("%s: %d events, want %d; first difference at %d", target, len(got), n, firstDiff(got, want[:n]))
			}
			whole := len(want) <= limit
			switch pages := (uint64(len(want)) + uint64(limit) - 1) / uint64(limit); {
			case total && (deref(res.Total) != uint64(len(want)) || deref(res.Page) != 1 || deref(res.Pages) != pages):
				t.Fatalf("%s: total %v page %v pages %v, want %d, 1, %d", target, deref(res.Total), deref(res.Page), deref(res.Pages), len(want), pages)
			case !total && res.Total != nil && deref(res.Total) != uint64(len(want)):
				t.Fatalf("%s: total %v, want none or %d", target, deref(res.Total), len(want))
			}
			if d := rd.uncounted.Load() - before; d > 1 || d == 1 && !whole || total && whole && d != 1 {
				t.Fatalf("%s (%d events): %d pages answered without a count", target, len(want), d)
			}
			if (res.NextCursor == nil) != whole {
				t.Fatalf("%s (%d events, limit %d): nextCursor %v", target, len(want), limit, res.NextCursor)
			}
			for res.NextCursor != nil {
				res = fx.mustList(t, fx.keys["acme"], path+"?"+q.clone().add("cursor", *res.NextCursor).query())
				got = append(got, ids(res.Events)...)
				walked++
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s then its cursors: %d events, want %d; first difference at %d", target, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	return walked
}
