package query

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// isolated loads acme with the shared pools and other with values found
// nowhere else, so that any of other's values in an answer to acme is a
// leak.
func isolated(t *testing.T) (*env, []schema.Row, []schema.Row) {
	e := newEnv(t, nil)
	e.org(t, "acme")
	e.org(t, "other")
	now := testClock()
	rng := rand.New(rand.NewPCG(11, 12))
	a := genRows(rng, "acme", 1500, now)
	b := genRows(rng, "other", 800, now)
	for i := range b {
		r := &b[i]
		r.ActorID, r.TraceID, r.ProjectID = fmt.Sprintf("b-actor-%d", i%7), fmt.Sprintf("b-trace-%d", i%9), "b-project"
		r.ResourceType, r.ResourceID, r.EventType = "b_resource", fmt.Sprintf("b-res-%d", i%5), "b-only-type"
		r.ActorEmail, r.IPAddress = fmt.Sprintf("b%d@other.example", i%4), "198.51.100.77"
		r.EventMetadata = `{"env":"b-env","secretOfB":"yes"}`
	}
	e.load(t, a)
	e.load(t, b)
	return e, a, b
}

// TestCrossOrgAccessIsImpossible queries every endpoint as acme, with many
// filters naming other's values, and never sees one of other's events.
func TestCrossOrgAccessIsImpossible(t *testing.T) {
	e, a, b := isolated(t)
	token := e.keys["acme"]
	var targets []string
	for _, q := range []string{"", "actorId=b-actor-1", "traceId=b-trace-2", "resourceType=b_resource&resourceId=b-res-3",
		"eventType=b-only-type", "projectId=b-project", "actorEmail=b1@other.example", "actorEmailContains=other.example",
		"ipAddress=198.51.100.77", "ipAddress=198.51.100.0/24", "metadata.env=b-env", "metadata.secretOfB=yes",
		"actorId=b-actor-1,u-1", "eventType=b-only-type,create-secret", "sort=actor&order=desc", "sort=eventType"} {
		targets = append(targets, "/v1/events?"+q)
		if strings.HasPrefix(q, "sort=") {
			continue // only the lists sort
		}
		targets = append(targets, "/v1/event-types?"+q,
			"/v1/aggregates?groupBy=eventType,actorId,projectId&"+q,
			"/v1/aggregates?groupBy=resourceType,ipAddress,actorEmail&interval=day&metrics=count,actors,resources,ips&top=3&"+q)
	}
	targets = append(targets, "/v1/resources/b_resource/b-res-1/events", "/v1/traces/b-trace-4/events",
		"/v1/events/"+b[0].ID.String(), "/v1/traces/b-trace-4/events?actorId=b-actor-1")
	leaks := []string{"b-actor", "b-trace", "b-res", "b_resource", "b-only-type", "b-project", "other.example", "198.51.100.77", "secretOfB"}
	for _, target := range targets {
		r := e.get(t, token, target)
		switch {
		case strings.HasPrefix(target, "/v1/events/") && r.status != 404:
			t.Errorf("%s: %d, want 404 for another org's event", target, r.status)
		case !strings.HasPrefix(target, "/v1/events/") && r.status != 200:
			t.Errorf("%s: %d %s", target, r.status, r.raw)
		}
		for _, l := range leaks {
			if strings.Contains(string(r.raw), l) {
				t.Fatalf("%s: answer mentions %q of the other org:\n%.500s", target, l, r.raw)
			}
		}
		for _, ev := range r.list.Events {
			if ev.OrgID != "acme" {
				t.Fatalf("%s: event of org %q", target, ev.OrgID)
			}
		}
	}
	// The org cannot be chosen by a parameter.
	for _, q := range []string{"orgId=other", "org_id=other", "org=other", "OrgId=other"} {
		if r := e.get(t, token, "/v1/events?"+q); r.status != 400 || r.err.Error.Code != "unknown_parameter" {
			t.Errorf("?%s: %d %s, want 400 unknown_parameter", q, r.status, r.raw)
		}
	}
	// And other's own key sees its events: the data was there.
	res := e.mustList(t, e.keys["other"], "/v1/events?eventType=b-only-type&limit=1")
	if want := len(evalList(b, "other", newSpec(), time.Now())); deref(res.Total) != uint64(want) || want == 0 {
		t.Fatalf("other sees %v of its %d events", deref(res.Total), want)
	}
	if got := e.mustList(t, token, "/v1/events?limit=1"); deref(got.Total) != uint64(len(evalList(a, "acme", newSpec(), time.Now()))) {
		t.Fatalf("acme sees %v events", deref(got.Total))
	}
}

// hostileValues are filter values built to break out of a string, a
// parameter or a statement, or to exhaust something.
func hostileValues() []string {
	return []string{
		`'`, `''`, `' OR '1'='1`, `' OR 1=1 --`, `\`, `\\`, `\'`, `\N`, `\0`, "\x00", "a\x00b", `"`,
		`"; DROP TABLE events; --`, `) OR 1=1 --`, `1 FORMAT JSON`, `x SETTINGS max_threads=1`, `FORMAT TabSeparated`,
		`SETTINGS readonly=0`, `file('/etc/passwd')`, `url('http://127.0.0.1:1/')`, `remote('127.0.0.1', system.one)`,
		`numbers(1000000000)`, `{org:String}`, `{x:Identifier}`, `$1`, `?`, `%s`, "\n", "\r\n", "\t", "\u2028", "😀",
		"\xff\xfe", "acme", "other", strings.Repeat("a", 1<<20), strings.Repeat("'", 100_000), "UNION ALL SELECT * FROM events",
	}
}

// TestHostileValues sends each hostile value in every parameter and path
// segment: the answer is a correct (evaluated) result or a 400 naming the
// parameter, never a 500, never another org's event.
func TestHostileValues(t *testing.T) {
	e, a, _ := isolated(t)
	token := e.keys["acme"]
	params := []string{"eventType", "actorType", "actorId", "actorEmail", "actorEmailPrefix", "actorEmailContains",
		"ipAddress", "userAgentType", "projectId", "resourceType", "resourceId", "traceId", "from", "to",
		"metadata.env", "metadata.a.b.c", "sort", "order", "limit", "page", "cursor"}
	aggParams := []string{"groupBy", "interval", "metrics", "top"}
	for _, v := range hostileValues() {
		name := fmt.Sprintf("%.20q(%d bytes)", v, len(v))
		t.Run(name, func(t *testing.T) {
			for _, p := range params {
				s := newSpec().add(p, v)
				r := e.get(t, token, "/v1/events?"+s.query())
				checkHostile(t, r, p)
				if r.status == 200 {
					want := rowIDs(evalList(a, "acme", s, time.Now()))
					if got := ids(r.list.Events); deref(r.list.Total) != uint64(len(want)) ||
						!slices.Equal(got, want[:min(len(want), schema.DefaultPageLimit)]) {
						t.Errorf("%s=%.30q: %d events (total %v), want %d", p, v, len(got), deref(r.list.Total), len(want))
					}
				}
			}
			for _, p := range append(aggParams, "eventType", "metadata.env", "actorEmailContains") {
				checkHostile(t, e.get(t, token, "/v1/aggregates?groupBy=eventType&"+url.Values{p: {v}}.Encode()), p)
				checkHostile(t, e.get(t, token, "/v1/event-types?"+url.Values{p: {v}}.Encode()), p)
			}
			checkHostile(t, e.get(t, token, "/v1/events?"+url.Values{"metadata." + v: {"x"}}.Encode()), "metadata."+v)
			esc := url.PathEscape(v)
			for _, path := range []string{"/v1/events/" + esc, "/v1/traces/" + esc + "/events",
				"/v1/resources/" + esc + "/x/events", "/v1/resources/secret/" + esc + "/events"} {
				r := e.get(t, token, path)
				if r.status != 200 && r.status != 400 && r.status != 404 {
					t.Errorf("%.60s: status %d %.300s", path, r.status, r.raw)
				}
				for _, ev := range r.list.Events {
					if ev.OrgID != "acme" {
						t.Fatalf("%.60s: event of org %q", path, ev.OrgID)
					}
				}
			}
		})
	}
}

func checkHostile(t *testing.T, r response, param string) {
	t.Helper()
	switch r.status {
	case 200:
		for _, ev := range r.list.Events {
			if ev.OrgID != "acme" {
				t.Fatalf("%.40s: event of org %q", param, ev.OrgID)
			}
		}
		if strings.Contains(string(r.raw), "b-only-type") {
			t.Fatalf("%.40s: answer holds another org's values", param)
		}
	case 400:
		if r.err.Error.Code == "" || len(r.err.Error.Details) == 0 || r.err.Error.Details[0].Field == "" {
			t.Errorf("%.40s: 400 without naming the parameter: %.300s", param, r.raw)
		} else if f := r.err.Error.Details[0].Field; !strings.HasPrefix(param, f) && f != safeName(param) {
			t.Errorf("%.40s: 400 names %q", param, f)
		}
	default:
		t.Errorf("%.40s: status %d %.300s", param, r.status, r.raw)
	}
	if !json.Valid(r.raw) {
		t.Errorf("%.40s: answer is not JSON", param)
	}
}

// safeName is how an error names a client-chosen parameter: at most 64
// bytes, valid UTF-8 (readsql's rule).
func safeName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
