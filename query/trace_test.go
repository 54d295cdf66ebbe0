package query

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestTracePages reads the first pages of lists narrowed to traces
// (Reader.tracePage): one trace, two, one that matches nothing, with
// another filter, in each order, with limits below and above the list's
// length, with and without the total, through /v1/events and the trace
// path. Each answer's events, total and pages are compared with the
// evaluation, and its cursor followed to the end; only a page that holds
// the whole list is answered without counting.
func TestTracePages(t *testing.T) {
	fx := newFixture(t)
	rd := fx.handler.read
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
		for _, limit := range []int{7, 60, max(1, len(want)), 1000} { // a page exactly as long as the list too
			for _, total := range []bool{true, false} {
				q := s.clone().add("limit", fmt.Sprint(limit))
				if !total {
					q.add("total", "false")
				}
				before := rd.uncounted.Load()
				res := fx.mustList(t, fx.keys["acme"], "/v1/events?"+q.query())
				got := ids(res.Events)
				if n := min(limit, len(want)); !slices.Equal(got, want[:n]) {
					t.Fatalf("?%s: %d events, want %d; first difference at %d", q.query(), len(got), n, firstDiff(got, want[:n]))
				}
				whole := len(want) <= limit
				if total {
					pages := (uint64(len(want)) + uint64(limit) - 1) / uint64(limit)
					if deref(res.Total) != uint64(len(want)) || deref(res.Page) != 1 || deref(res.Pages) != pages {
						t.Fatalf("?%s: total %v page %v pages %v, want %d, 1, %d", q.query(), deref(res.Total), deref(res.Page), deref(res.Pages), len(want), pages)
					}
				} else if res.Total != nil || res.Pages != nil || deref(res.Page) != 1 {
					t.Fatalf("?%s: total %v pages %v page %v without a total", q.query(), deref(res.Total), deref(res.Pages), deref(res.Page))
				}
				if d := rd.uncounted.Load() - before; d != map[bool]uint64{true: 1}[total && whole] {
					t.Fatalf("?%s (%d events): %d pages answered without a count", q.query(), len(want), d)
				}
				if (res.NextCursor == nil) != whole {
					t.Fatalf("?%s (%d events, limit %d): nextCursor %v", q.query(), len(want), limit, res.NextCursor)
				}
				for res.NextCursor != nil {
					res = fx.mustList(t, fx.keys["acme"], "/v1/events?"+q.clone().add("cursor", *res.NextCursor).query())
					got = append(got, ids(res.Events)...)
					walked++
				}
				if !slices.Equal(got, want) {
					t.Fatalf("?%s then its cursors: %d events, want %d; first difference at %d", q.query(), len(got), len(want), firstDiff(got, want))
				}
			}
		}
	}
	if walked == 0 {
		t.Fatal("no trace filled a page: nothing was counted")
	}
	// The trace path, and another org's key, which finds none of acme's events.
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
