package main

import (
	"net/url"
	"strings"
	"time"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// shape is one kind of request the benchmark times: the URL for an org
// and one of its sampled events, and whether it is a page shape (target
// p99 ≤ 100 ms) or an aggregate (≤ 300 ms).
type shape struct {
	name      string
	aggregate bool
	target    func(now time.Time, x sample) string
	timeOnly  bool // narrowed by time alone: the hour counts (or, for counts per group, the day groups) serve it
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func enc(kv ...string) string {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q.Encode()
}

// shapes are the seven shapes, then a few more of interest.
var shapes = []shape{
	{"page: org, last 30 days", false, func(now time.Time, _ sample) string {
		return "/v1/events?" + enc("from", rfc(now.Add(-30*24*time.Hour)), "limit", "50")
	}, true},
	{"page: + event type and project", false, func(now time.Time, x sample) string {
		return "/v1/events?" + enc("from", rfc(now.Add(-30*24*time.Hour)), "eventType", x.eventType, "projectId", x.project)
	}, false},
	{"resource timeline", false, func(_ time.Time, x sample) string {
		return "/v1/resources/" + url.PathEscape(x.resType) + "/" + url.PathEscape(x.resID) + "/events"
	}, false},
	{"trace", false, func(_ time.Time, x sample) string {
		return "/v1/traces/" + url.PathEscape(x.trace) + "/events"
	}, false},
	{"metadata filter, 30 days", false, func(now time.Time, x sample) string {
		return "/v1/events?" + enc("from", rfc(now.Add(-30*24*time.Hour)), "metadata.secretPath", x.secretPath)
	}, false},
	{"hourly histogram, 30 days", true, func(now time.Time, _ sample) string {
		return "/v1/aggregates?" + enc("interval", "hour", "from", rfc(now.Add(-30*24*time.Hour)))
	}, true},
	{"top-10 actors, 90 days", true, func(now time.Time, _ sample) string {
		return "/v1/aggregates?" + enc("groupBy", "actorId", "top", "10", "from", rfc(now.Add(-90*24*time.Hour)))
	}, true},
	{"page: actor, 30 days", false, func(now time.Time, x sample) string {
		return "/v1/events?" + enc("from", rfc(now.Add(-30*24*time.Hour)), "actorId", x.actorID)
	}, false},
	{"page: email search box", false, func(now time.Time, x sample) string {
		return "/v1/events?" + enc("from", rfc(now.Add(-30*24*time.Hour)), "actorEmailContains", prefixOf(x.email))
	}, false},
	{"page 20 by number, 30 days", false, func(now time.Time, _ sample) string {
		return "/v1/events?" + enc("from", rfc(now.Add(-30*24*time.Hour)), "page", "20")
	}, true},
	{"top-10 actors + distinct resources, 90 days", true, func(now time.Time, _ sample) string {
		return "/v1/aggregates?" + enc("groupBy", "actorId", "top", "10", "metrics", "count,resources", "from", rfc(now.Add(-90*24*time.Hour)))
	}, false},
	{"event types, 30 days", true, func(now time.Time, _ sample) string {
		return "/v1/event-types?" + enc("from", rfc(now.Add(-30*24*time.Hour)))
	}, true},
}

// filteredPage reports whether s is a list page filtered by more than
// time: its total comes from hour counts that the reader keeps per filter
// (query.Config.FilterHourCounts) once the view has been read.
func (s shape) filteredPage() bool {
	return !s.aggregate && !s.timeOnly && strings.HasPrefix(s.target(time.Now(), sample{}), "/v1/events?")
}

func prefixOf(email string) string {
	if len(email) > 6 {
		return email[:6]
	}
	if email == "" {
		return "ada"
	}
	return email
}

// variant is one way of running a compiled statement for the FINAL table.
type variant struct {
	name     string
	final    bool
	settings bool // the read settings of the query package
}

var variants = []variant{
	{"as served: FINAL + read settings", true, true},
	{"FINAL, server defaults", true, false},
	{"no FINAL (may show re-sent copies)", false, false},
}

// statement is a compiled query for the FINAL table.
type statement struct {
	name string
	st   func(org string, now time.Time, x sample) readsql.Statement
}

var statements = []statement{
	{"page rows: org, 30 days (whole range)", func(org string, now time.Time, _ sample) readsql.Statement {
		return readsql.List(org, schema.Filter{From: now.Add(-30 * 24 * time.Hour)}, schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
	}},
	{"page rows: org, last day (the newest page's first read without kept hours)", func(org string, now time.Time, _ sample) readsql.Statement {
		return readsql.List(org, schema.Filter{From: now.Add(-24 * time.Hour)}, schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
	}},
	{"page rows: org, last hour (as the kept hours narrow a large org's newest page)", func(org string, now time.Time, _ sample) readsql.Statement {
		return readsql.List(org, schema.Filter{From: now.Add(-time.Hour)}, schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
	}},
	{"hourly counts: org, 30 days (the total)", func(org string, now time.Time, _ sample) readsql.Statement {
		return readsql.HourlyCounts(org, schema.Filter{From: now.Add(-30 * 24 * time.Hour)})
	}},
	{"resource timeline total: events table (bloom filter)", func(org string, _ time.Time, x sample) readsql.Statement {
		return readsql.Count(org, resourceFilter(x))
	}},
	{"resource timeline total: lookup table (as served)", func(org string, _ time.Time, x sample) readsql.Statement {
		_, total, _ := readsql.Timeline(org, resourceFilter(x), schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
		return total
	}},
	{"resource timeline page keys: lookup table (as served)", func(org string, _ time.Time, x sample) readsql.Statement {
		keys, _, _ := readsql.Timeline(org, resourceFilter(x), schema.DefaultSort(), schema.Page{Limit: 50, Number: 1})
		return keys
	}},
	{"hourly histogram, 30 days", func(org string, now time.Time, _ sample) readsql.Statement {
		st, _ := readsql.Aggregate(org, schema.Filter{From: now.Add(-30 * 24 * time.Hour)},
			schema.Aggregate{Interval: schema.IntervalHour, Metrics: []schema.Metric{schema.MetricCount}}, 10000)
		return st
	}},
	{"top-10 actors, 90 days", func(org string, now time.Time, _ sample) readsql.Statement {
		st, _ := readsql.Aggregate(org, schema.Filter{From: now.Add(-90 * 24 * time.Hour)},
			schema.Aggregate{GroupBy: []schema.Field{schema.FieldActorID}, Top: 10,
				Metrics: []schema.Metric{schema.MetricCount}}, 10000)
		return st
	}},
}

// selectShapes returns the shapes whose names contain one of words.
func selectShapes(all []shape, words []string) []shape {
	var out []shape
	for _, s := range all {
		for _, w := range words {
			if w = strings.TrimSpace(w); w != "" && strings.Contains(s.name, w) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func resourceFilter(x sample) schema.Filter {
	f := schema.Filter{}
	f.Add(schema.FieldResourceType, x.resType)
	f.Add(schema.FieldResourceID, x.resID)
	return f
}
