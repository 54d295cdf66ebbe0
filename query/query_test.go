package query

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// fixture is an env loaded with the events of three orgs, some of them
// inserted twice (as a re-sent event is, before ReplacingMergeTree merges).
type fixture struct {
	*env
	rows []schema.Row
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := newEnv(t, nil)
	rng := rand.New(rand.NewPCG(42, 7))
	now := testClock()
	var all []schema.Row
	for _, o := range []struct {
		org string
		n   int
	}{{"acme", 3000}, {"other", 1500}, {"third", 300}} {
		e.org(t, o.org)
		rows := genRows(rng, o.org, o.n, now)
		e.load(t, rows[:len(rows)/2])
		e.load(t, rows[len(rows)/2:])
		e.load(t, rows[:len(rows)/10]) // re-sent: identical rows
		all = append(all, rows...)
	}
	return &fixture{env: e, rows: all, now: now}
}

// check compares one page-mode request with the evaluation.
func (fx *fixture) check(t *testing.T, org string, s *spec) {
	t.Helper()
	want := rowIDs(evalList(fx.rows, org, s, time.Now()))
	limit := 1000
	s = s.clone().add("limit", fmt.Sprint(limit))
	got := fx.mustList(t, fx.keys[org], "/v1/events?"+s.query())
	if got.Total == nil || *got.Total != uint64(len(want)) {
		t.Fatalf("?%s: total=%v, want %d", s.query(), deref(got.Total), len(want))
	}
	if len(want) > limit {
		want = want[:limit]
	}
	if g := ids(got.Events); !slices.Equal(g, want) {
		t.Fatalf("?%s: got %d events, want %d; first difference at %d", s.query(), len(g), len(want), firstDiff(g, want))
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// filterValues are, per filter parameter, values to try alone: every
// stored value and some that match nothing.
func filterValues() map[string][]string {
	nonEmpty := func(p []string) []string {
		return slices.DeleteFunc(slices.Clone(p), func(s string) bool { return s == "" })
	}
	return map[string][]string{
		"eventType":          append(nonEmpty(poolEventTypes), "create-secret,execute", "never-seen"),
		"actorType":          append(nonEmpty(poolActorTypes), "user,service", "scimClient"),
		"actorId":            append(nonEmpty(poolActorIDs), "u-1,u-2", "svc", "nobody"),
		"actorEmail":         append(nonEmpty(poolEmails), "ADA@EXAMPLE.COM", "nobody@example.com"),
		"actorEmailPrefix":   {"ada", "ADA", "a", "É", "carol+", "o'", "zzz"},
		"actorEmailContains": {"example", "EXAMPLE.C", "@", "ämple", "+tag", "'brien", "nothing-like-this"},
		"ipAddress": append(nonEmpty(poolIPs), "10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0", "::/0", "2001:db8::/32",
			"192.168.1.1/32", "::ffff:10.0.0.0/104", "fe80::/10", "10.0.0.1,2001:db8::/32", "198.51.100.1"),
		"userAgentType": append(nonEmpty(poolUATs), "web,cli", "other"),
		"projectId":     append(nonEmpty(poolProjects), "p-1,p-2", "p-9"),
		"resourceType":  append(nonEmpty(poolResTypes), "secret,folder", "user"),
		"resourceId":    append(nonEmpty(poolResIDs), "s-1,s-2,ключ", "s-9"),
		"traceId":       append(nonEmpty(poolTraces), "tr-1,tr-2", "tr-99"),
	}
}

var metadataValues = []string{"prod", "dev", "3", "true", "false", "1000", "1e3", "-0.5", "3.0", "18446744073709551615", "0", "-0",
	`é€ "quoted"`, "line\nbreak", `back\slash`, "xé", "", "null", `{"x":1}`}
var metadataKeys = []string{"env", "count", "k-1", "under_score", "x.y", "a.b.c", "a.b", "a", "missing"}

func TestEachFilterAlone(t *testing.T) {
	fx := newFixture(t)
	for name, vals := range filterValues() {
		for _, v := range vals {
			t.Run(name+"="+v, func(t *testing.T) { fx.check(t, "acme", newSpec().add(name, v)) })
		}
	}
	for _, k := range metadataKeys {
		for _, v := range metadataValues {
			t.Run("metadata."+k+"="+v, func(t *testing.T) { fx.check(t, "acme", newSpec().add("metadata."+k, v)) })
		}
	}
	for _, tc := range []struct{ from, to string }{
		{fx.now.Add(-48 * time.Hour).Format(time.RFC3339Nano), ""},
		{"", fx.now.Add(-50 * time.Hour).Format(time.RFC3339Nano)}, // a tie instant: exclusive
		{fx.now.Add(-50 * time.Hour).Format(time.RFC3339Nano), ""}, // inclusive
		{fx.now.Add(-10 * 24 * time.Hour).In(time.FixedZone("", 2*3600)).Format(time.RFC3339),
			fx.now.Add(-9 * 24 * time.Hour).Format(time.RFC3339)},
		{fx.now.Add(-time.Hour).Add(-500 * time.Microsecond).Format(time.RFC3339Nano), ""}, // sub-millisecond
	} {
		s := newSpec()
		if tc.from != "" {
			s.add("from", tc.from)
		}
		if tc.to != "" {
			s.add("to", tc.to)
		}
		t.Run(s.query(), func(t *testing.T) { fx.check(t, "acme", s) })
	}
}

// randomSpec draws a combination of one to five filters, a sort and an
// order.
func randomSpec(rng *rand.Rand, now time.Time) *spec {
	vals := filterValues()
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	slices.Sort(names)
	s := newSpec()
	for range 1 + rng.IntN(5) {
		switch k := rng.IntN(len(names) + 2); {
		case k < len(names):
			name := names[k]
			for range 1 + rng.IntN(2) {
				s.add(name, pick(rng, vals[name]))
			}
		case k == len(names):
			key := "metadata." + pick(rng, metadataKeys)
			for range 1 + rng.IntN(2) {
				s.add(key, pick(rng, metadataValues))
			}
		default:
			if _, ok := s.values["from"]; ok {
				continue
			}
			from := now.Add(-time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
			s.add("from", from.Format(time.RFC3339Nano))
			if rng.IntN(2) == 0 {
				s.add("to", from.Add(time.Duration(1+rng.Int64N(int64(10*24*time.Hour)))).Format(time.RFC3339Nano))
			}
		}
	}
	if rng.IntN(2) == 0 {
		s.add("sort", pick(rng, []string{"timestamp", "eventType", "actor"}))
	}
	if rng.IntN(2) == 0 {
		s.add("order", pick(rng, []string{"asc", "desc"}))
	}
	return s
}

// TestRandomFilterCombinations compares 400 random combinations with the
// evaluation, walking some of them page by page and cursor by cursor.
func TestRandomFilterCombinations(t *testing.T) {
	fx := newFixture(t)
	rng := rand.New(rand.NewPCG(2026, 5))
	for i := range 400 {
		s := randomSpec(rng, fx.now)
		org := pick(rng, []string{"acme", "acme", "other"})
		fx.check(t, org, s)
		if i%10 == 0 {
			fx.walk(t, org, s, 1+rng.IntN(40))
		}
	}
}

// walk pages through s twice, by page number and by cursor, with limit,
// and checks both against the evaluation.
func (fx *fixture) walk(t *testing.T, org string, s *spec, limit int) {
	t.Helper()
	want := rowIDs(evalList(fx.rows, org, s, time.Now()))
	limit = max(limit, len(want)/20) // at most about 20 pages
	wantPages := (len(want) + limit - 1) / limit
	var byPage []string
	for page := 1; ; page++ {
		q := s.clone().add("limit", fmt.Sprint(limit)).add("page", fmt.Sprint(page))
		res := fx.mustList(t, fx.keys[org], "/v1/events?"+q.query())
		if deref(res.Pages) != uint64(wantPages) || deref(res.Page) != page {
			t.Fatalf("?%s: page %v of %v, want %d of %d", q.query(), deref(res.Page), deref(res.Pages), page, wantPages)
		}
		if (res.NextCursor != nil) != (page < wantPages) {
			t.Fatalf("?%s: nextCursor=%v on page %d of %d", q.query(), res.NextCursor != nil, page, wantPages)
		}
		byPage = append(byPage, ids(res.Events)...)
		if page >= wantPages {
			break
		}
	}
	if !slices.Equal(byPage, want) {
		t.Fatalf("?%s limit %d: pages differ from the evaluation at %d", s.query(), limit, firstDiff(byPage, want))
	}
	if got := fx.cursorWalk(t, fx.keys[org], "/v1/events", s, limit); !slices.Equal(got, want) {
		t.Fatalf("?%s limit %d: cursor walk differs from the evaluation at %d (%d vs %d events)",
			s.query(), limit, firstDiff(got, want), len(got), len(want))
	}
}

// cursorWalk follows nextCursor from the first page to the end.
func (e *env) cursorWalk(t *testing.T, token, path string, s *spec, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for n := 0; ; n++ {
		q := s.clone().add("limit", fmt.Sprint(limit))
		if cursor != "" {
			q.add("cursor", cursor)
		}
		res := e.mustList(t, token, path+"?"+q.query())
		if cursor != "" && (res.Total != nil || res.Page != nil || res.Pages != nil) {
			t.Fatalf("cursor mode answered total/page/pages: %v %v %v", deref(res.Total), deref(res.Page), deref(res.Pages))
		}
		if len(res.Events) > limit {
			t.Fatalf("%d events, limit %d", len(res.Events), limit)
		}
		out = append(out, ids(res.Events)...)
		if res.NextCursor == nil {
			return out
		}
		if len(res.Events) == 0 || n > 10000 {
			t.Fatalf("nextCursor with an empty page or no end")
		}
		cursor = *res.NextCursor
	}
}

func TestTimelines(t *testing.T) {
	fx := newFixture(t)
	for _, typ := range poolResTypes {
		for _, id := range poolResIDs {
			if strings.Contains(id, "/") {
				continue // not addressable in a path segment; use resourceType/resourceId
			}
			// A path names one resource: its id matches exactly, commas and all.
			all := evalList(fx.rows, "acme", newSpec().add("resourceType", typ), time.Now())
			want := rowIDs(slices.DeleteFunc(all, func(r schema.Row) bool { return r.ResourceID != id }))
			got := fx.cursorWalk(t, fx.keys["acme"], "/v1/resources/"+escapePath(typ)+"/"+escapePath(id)+"/events", newSpec(), 25)
			if !slices.Equal(got, want) {
				t.Fatalf("timeline of %s/%s: %d events, want %d", typ, id, len(got), len(want))
			}
		}
	}
	for _, tr := range poolTraces[:len(poolTraces)-1] {
		s := newSpec().add("traceId", tr).add("eventType", "create-secret,execute")
		want := rowIDs(evalList(fx.rows, "acme", s, time.Now()))
		res := fx.mustList(t, fx.keys["acme"], "/v1/traces/"+tr+"/events?eventType=create-secret,execute&limit=1000")
		if got := ids(res.Events); !slices.Equal(got, want) || deref(res.Total) != uint64(len(want)) {
			t.Fatalf("trace %s: %d events (total %v), want %d", tr, len(got), deref(res.Total), len(want))
		}
	}
	r := fx.get(t, fx.keys["acme"], "/v1/traces/tr-1/events?traceId=tr-2")
	if r.status != 400 || r.err.Error.Details[0].Field != "traceId" {
		t.Fatalf("traceId as parameter of a trace timeline: %d %s", r.status, r.raw)
	}
}

func escapePath(s string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23", " ", "%20", `\`, "%5C", "'", "%27").Replace(s)
}
