package query

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// bucketOf is the start of the UTC bucket of t.
func bucketOf(t time.Time, interval string) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch interval {
	case "minute":
		return t.Truncate(time.Minute)
	case "hour":
		return t.Truncate(time.Hour)
	case "day":
		return day
	case "week":
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// evalAggregate computes the groups of an aggregate request s, in the JSON
// form of the API.
func evalAggregate(rows []schema.Row, org string, s *spec, now time.Time) []map[string]any {
	matched := evalList(rows, org, s, now)
	var groupBy, metrics []string
	for _, v := range s.values["groupBy"] {
		groupBy = append(groupBy, strings.Split(v, ",")...)
	}
	for _, v := range s.values["metrics"] {
		metrics = append(metrics, strings.Split(v, ",")...)
	}
	if len(metrics) == 0 {
		metrics = []string{"count"}
	}
	interval := strings.Join(s.values["interval"], "")
	top := 0
	if v := s.values["top"]; len(v) > 0 {
		fmt.Sscan(v[0], &top)
	}
	keyOf := func(r *schema.Row) []string {
		k := make([]string, len(groupBy))
		for i, g := range groupBy {
			k[i] = rowField(r, g)
		}
		return k
	}
	kept := map[string]bool{}
	if top > 0 {
		counts := map[string]int{}
		var combos [][]string
		for i := range matched {
			k := keyOf(&matched[i])
			j := strings.Join(k, "\x00")
			if counts[j] == 0 {
				combos = append(combos, k)
			}
			counts[j]++
		}
		slices.SortFunc(combos, func(a, b []string) int {
			if c := counts[strings.Join(b, "\x00")] - counts[strings.Join(a, "\x00")]; c != 0 {
				return c
			}
			return slices.Compare(a, b)
		})
		for _, k := range combos[:min(top, len(combos))] {
			kept[strings.Join(k, "\x00")] = true
		}
	}
	type acc struct {
		other  bool
		key    []string
		bucket time.Time
		n      int
		sets   map[string]map[string]bool
	}
	groups := map[string]*acc{}
	for i := range matched {
		r := &matched[i]
		k := keyOf(r)
		other := top > 0 && !kept[strings.Join(k, "\x00")]
		if other {
			k = make([]string, len(groupBy))
		}
		b := bucketOf(r.Timestamp, interval)
		id := fmt.Sprint(other, k, b.UnixMilli())
		a := groups[id]
		if a == nil {
			a = &acc{other: other, key: k, bucket: b, sets: map[string]map[string]bool{"actors": {}, "resources": {}, "ips": {}}}
			groups[id] = a
		}
		a.n++
		if r.ActorID != "" {
			a.sets["actors"][r.ActorID] = true
		}
		if r.ResourceID != "" {
			a.sets["resources"][r.ResourceType+"\x00"+r.ResourceID] = true
		}
		if r.IPAddress != "" {
			a.sets["ips"][r.IPAddress] = true
		}
	}
	if len(groupBy) == 0 && interval == "" && len(groups) == 0 {
		// Totals without groups are one row, zeros when nothing matched.
		groups[""] = &acc{sets: map[string]map[string]bool{"actors": {}, "resources": {}, "ips": {}}}
	}
	var list []*acc
	for _, a := range groups {
		list = append(list, a)
	}
	slices.SortFunc(list, func(a, b *acc) int {
		if c := a.bucket.Compare(b.bucket); c != 0 {
			return c
		}
		if a.other != b.other {
			if a.other {
				return 1
			}
			return -1
		}
		if a.n != b.n {
			return b.n - a.n
		}
		return slices.Compare(a.key, b.key)
	})
	out := []map[string]any{}
	for _, a := range list {
		g := map[string]any{}
		if a.other {
			g["other"] = true
		} else {
			for i, f := range groupBy {
				g[f] = a.key[i]
			}
		}
		if interval != "" {
			g["time"] = a.bucket
		}
		for _, m := range metrics {
			if m == "count" {
				g[m] = a.n
			} else {
				g[m] = len(a.sets[m])
			}
		}
		out = append(out, g)
	}
	// Through JSON, to compare with the decoded answer.
	raw, _ := json.Marshal(out)
	var back []map[string]any
	_ = json.Unmarshal(raw, &back)
	return back
}

func TestAggregatesMatchTheEvaluation(t *testing.T) {
	fx := newFixture(t)
	rng := rand.New(rand.NewPCG(77, 1))
	fields := []string{"eventType", "actorType", "actorId", "actorEmail", "userAgentType", "projectId", "resourceType", "ipAddress"}
	intervals := []string{"", "minute", "hour", "day", "week", "month"}
	metrics := []string{"count", "actors", "resources", "ips"}
	for i := range 80 {
		s := randomSpec(rng, fx.now)
		delete(s.values, "sort")
		delete(s.values, "order")
		s.names = slices.DeleteFunc(s.names, func(n string) bool { return n == "sort" || n == "order" })
		gb := slices.Clone(fields)
		rng.Shuffle(len(gb), func(i, j int) { gb[i], gb[j] = gb[j], gb[i] })
		gb = gb[:rng.IntN(4)]
		if len(gb) > 0 {
			s.add("groupBy", strings.Join(gb, ","))
		}
		if iv := pick(rng, intervals); iv != "" && (iv != "minute" || s.values["from"] != nil) {
			s.add("interval", iv)
		}
		ms := slices.Clone(metrics)
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		s.add("metrics", strings.Join(ms[:1+rng.IntN(len(ms))], ","))
		if len(gb) > 0 && rng.IntN(2) == 0 {
			s.add("top", fmt.Sprint(1+rng.IntN(5)))
		}
		r := fx.get(t, fx.keys["acme"], "/v1/aggregates?"+s.query())
		if r.status != 200 {
			t.Fatalf("#%d ?%s: %d %s", i, s.query(), r.status, r.raw)
		}
		var got struct {
			Groups []map[string]any `json:"groups"`
		}
		if err := json.Unmarshal(r.raw, &got); err != nil {
			t.Fatal(err)
		}
		want := evalAggregate(fx.rows, "acme", s, time.Now())
		if !reflect.DeepEqual(got.Groups, want) {
			t.Fatalf("#%d ?%s:\n got %d groups %.600v\nwant %d groups %.600v", i, s.query(), len(got.Groups), got.Groups, len(want), want)
		}
	}
}

func TestEventTypesMatchTheEvaluation(t *testing.T) {
	fx := newFixture(t)
	rng := rand.New(rand.NewPCG(78, 2))
	for i := range 40 {
		s := newSpec()
		if i > 0 {
			s = randomSpec(rng, fx.now)
			delete(s.values, "sort")
			delete(s.values, "order")
			s.names = slices.DeleteFunc(s.names, func(n string) bool { return n == "sort" || n == "order" })
		}
		type entry struct {
			EventType string    `json:"eventType"`
			Count     int       `json:"count"`
			LastSeen  time.Time `json:"lastSeen"`
		}
		byType := map[string]*entry{}
		want := []*entry{}
		for _, r := range evalList(fx.rows, "acme", s, time.Now()) {
			e := byType[r.EventType]
			if e == nil {
				e = &entry{EventType: r.EventType}
				byType[r.EventType] = e
				want = append(want, e)
			}
			e.Count++
			if r.Timestamp.After(e.LastSeen) {
				e.LastSeen = r.Timestamp
			}
		}
		slices.SortFunc(want, func(a, b *entry) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.EventType, b.EventType)
		})
		r := fx.get(t, fx.keys["acme"], "/v1/event-types?"+s.query())
		var got struct {
			EventTypes []*entry `json:"eventTypes"`
			Truncated  bool     `json:"truncated"`
		}
		if r.status != 200 || json.Unmarshal(r.raw, &got) != nil {
			t.Fatalf("?%s: %d %s", s.query(), r.status, r.raw)
		}
		if !reflect.DeepEqual(got.EventTypes, want) || got.Truncated {
			t.Fatalf("?%s: got %s", s.query(), r.raw)
		}
	}
}

func TestTooManyGroups(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.MaxGroups = 3 })
	token := e.org(t, "acme")
	now := testClock()
	rows := genRows(rand.New(rand.NewPCG(1, 1)), "acme", 200, now)
	e.load(t, rows)
	if r := e.get(t, token, "/v1/aggregates?groupBy=eventType"); r.status != 400 || r.err.Error.Code != "too_many_groups" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r := e.get(t, token, "/v1/aggregates?groupBy=eventType&top=2"); r.status != 200 {
		t.Fatalf("top keeps it within bounds: %d %s", r.status, r.raw)
	}
}
