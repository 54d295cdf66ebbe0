package query

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// Every byte value, alone and inside text, reaches ClickHouse unchanged.
func TestParametersRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	s := e.handler.read.store
	var vals []string
	for b := range 256 {
		vals = append(vals, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"b")
	}
	vals = append(vals, hostileValues()...)
	vals = append(vals, `\N`, `\\N`, `\t`, `\x41`, `\u0041`, "", " ", "'\\'")
	for _, v := range vals {
		rows, cancel, err := s.query(context.Background(), readsql.Statement{SQL: "SELECT {v:String}", Params: map[string]string{"v": v}})
		if err != nil {
			t.Fatalf("%.40q: %v", v, err)
		}
		var got string
		for rows.Next() {
			if err := rows.Scan(&got); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		cancel()
		if got != v {
			t.Fatalf("%.40q came back as %.40q", v, got)
		}
	}
}

func TestSlowQueriesAnswer503(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.QueryTimeout = time.Second })
	_, err := e.handler.read.store.count(context.Background(), readsql.Statement{SQL: "SELECT count() FROM numbers(10) WHERE sleepEachRow(0.3) = 0"})
	var se *schema.Error
	if !errors.As(err, &se) || se.Code != "query_timeout" || se.Kind != schema.KindUnavailable {
		t.Fatalf("err=%v, want 503 query_timeout", err)
	}
}

// TestFrequentPathsUseIndexes checks with EXPLAIN indexes=1 that the
// frequent shapes reach ClickHouse in a form its order key or skip indexes
// serve: org + time on the primary key; resource, trace, actor, email and
// event id through their bloom filters.
func TestFrequentPathsUseIndexes(t *testing.T) {
	e := newEnv(t, nil)
	now := testClock()
	rng := rand.New(rand.NewPCG(21, 22))
	for _, org := range []string{"acme", "other", "third"} {
		e.load(t, genRows(rng, org, 30000, now))
	}
	from := now.Add(-7 * 24 * time.Hour)
	page := schema.Page{Limit: 50, Number: 1}
	filter := func(field schema.Field, v string) schema.Filter {
		f := schema.Filter{From: from}
		f.Add(field, v)
		f.Normalize()
		return f
	}
	for _, tc := range []struct {
		name  string
		st    readsql.Statement
		wants []string
	}{
		{"org + time", readsql.List("acme", schema.Filter{From: from}, schema.DefaultSort(), page),
			[]string{"PrimaryKey", "org_id", "timestamp", "Partition", "expires_at"}},
		{"org + resource", readsql.List("acme", filter(schema.FieldResourceID, "s-1"), schema.DefaultSort(), page),
			[]string{"PrimaryKey", "idx_resource_id"}},
		{"org + trace", readsql.List("acme", filter(schema.FieldTraceID, "tr-1"), schema.DefaultSort(), page),
			[]string{"PrimaryKey", "idx_trace_id"}},
		{"org + actor", readsql.List("acme", filter(schema.FieldActorID, "u-1"), schema.DefaultSort(), page),
			[]string{"PrimaryKey", "idx_actor_id"}},
		{"org + email", readsql.Count("acme", filter(schema.FieldActorEmail, "Ada@Example.com")),
			[]string{"PrimaryKey", "idx_actor_email"}},
		{"org + event type", readsql.Count("acme", filter(schema.FieldEventType, "execute")),
			[]string{"PrimaryKey", "idx_event_type"}},
		{"event by id", readsql.Get("acme", "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a"),
			[]string{"PrimaryKey", "idx_id"}},
		{"timeline total", readsql.TimelineCount("acme", readsql.Lookup{Kind: schema.KeyResource, Key: "secret/s-1"}, schema.Filter{}),
			[]string{"PrimaryKey", "key_kind", "key in ['secret/s-1', 'secret/s-1']"}},
		{"timeline page keys", readsql.TimelinePage("acme", readsql.Lookup{Kind: schema.KeyActor, Key: "u-1"}, schema.Filter{}, schema.DefaultSort(), 50, 0, nil),
			[]string{"PrimaryKey", "key in ['u-1', 'u-1']"}},
		{"timeline events by key", readsql.Fetch("acme", []schema.Position{{Timestamp: now.Add(-time.Hour), ID: genUUID(rng)}}, schema.DefaultSort()),
			[]string{"PrimaryKey", "timestamp", "1-element set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := explain(t, e, tc.st)
			for _, w := range tc.wants {
				if !strings.Contains(plan, w) {
					t.Fatalf("EXPLAIN indexes=1 does not mention %q:\n%s", w, plan)
				}
			}
			if !strings.Contains(plan, "(org_id in ['acme', 'acme'])") {
				t.Fatalf("the primary key is not narrowed to the org:\n%s", plan)
			}
		})
	}
}

func explain(t *testing.T, e *env, st readsql.Statement) string {
	t.Helper()
	st.SQL = "EXPLAIN indexes = 1 " + st.SQL
	rows, cancel, err := e.handler.read.store.query(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// The export statement's parameters work as sent, over the native
// protocol, for values with backslashes, tabs and newlines too, and it
// selects exactly the events the list counts.
func TestExportStatementMatchesList(t *testing.T) {
	e := newEnv(t, nil)
	token := e.org(t, "acme")
	now := testClock()
	rows := genRows(rand.New(rand.NewPCG(31, 32)), "acme", 400, now)
	e.load(t, rows)
	set := clickhouse.Settings{}
	for k, v := range readsql.ReadSettingsText() {
		set[k] = v
	}
	for _, q := range []string{`resourceId=s\5`, "metadata.env=line\nbreak", `metadata.env=back\slash`, "actorId=u-1&eventType=execute"} {
		s := newSpec()
		name, val, _ := strings.Cut(q, "=")
		if n2, v2, ok := strings.Cut(val, "&"); ok {
			val = n2
			k, v, _ := strings.Cut(v2, "=")
			s.add(k, v)
		}
		s.add(name, val)
		f, err := readsql.ParseFilter(mustValues(t, s.query()), readsql.DefaultLimits(), nil)
		if err != nil {
			t.Fatal(err)
		}
		st := readsql.Export("acme", f, readsql.FormatNative)
		ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters(st.Wire())), clickhouse.WithSettings(set))
		var n uint64
		if err := e.db.Conn.QueryRow(ctx, "SELECT count() FROM ("+st.SQL+")").Scan(&n); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		want := len(evalList(rows, "acme", s, time.Now()))
		if res := e.mustList(t, token, "/v1/events?"+s.query()); n != uint64(want) || deref(res.Total) != uint64(want) || want == 0 {
			t.Fatalf("%q: export counts %d, list %v, evaluation %d", q, n, deref(res.Total), want)
		}
	}
}

func mustValues(t *testing.T, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
