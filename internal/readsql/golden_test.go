package readsql

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// render is the golden form of a statement: the SQL, then its parameters.
func render(title string, st Statement) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- %s\n%s\n\n-- parameters\n", title, st.SQL)
	names := make([]string, 0, len(st.Params))
	for k := range st.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "-- %s = %q\n", k, st.Params[k])
	}
	return b.String()
}

// mustParse parses a query string as the list and aggregate endpoints do.
func mustParse(tb testing.TB, raw string) (*Parser, schema.Filter) {
	tb.Helper()
	p, err := NewParser(raw, DefaultLimits())
	if err != nil {
		tb.Fatal(err)
	}
	return p, p.Filter()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/readsql -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update if intended):\n%s", path, got)
	}
}

// TestCompileGolden pins the SQL of a representative set of requests.
func TestCompileGolden(t *testing.T) {
	after := &schema.Position{Value: "u-7", Timestamp: time.Date(2026, 5, 1, 12, 0, 0, 123e6, time.UTC),
		ID: uuid.MustParse("0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a")}
	lists := []struct {
		name, query string
		after       *schema.Position
	}{
		{"list_default", "", nil},
		{"list_org_30_days_page_3", "from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00.0005Z&page=3&limit=100", nil},
		{"list_two_filters", "eventType=create-secret,delete-secret&actorType=user", nil},
		{"list_every_filter", "eventType=login&actorType=user&actorType=service&actorId=u-1,u-2&actorEmail=Ada@Example.com" +
			"&actorEmailPrefix=ADA&actorEmailContains=example&ipAddress=203.0.113.7,10.0.0.0/8,2001:db8::/32,::ffff:192.168.0.0/112" +
			"&userAgentType=web&projectId=p-1&resourceType=secret&resourceId=s-42&traceId=tr-1" +
			"&from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00Z&metadata.environment=prod&metadata.count=3" +
			"&metadata.flags.enabled=true&sort=eventType", nil},
		{"list_metadata_nested", "metadata.a.b.c=x&metadata.a.b.c=1e3&metadata.env=staging", nil},
		{"list_cursor_newest_first", "limit=20", after},
		{"list_cursor_oldest_first", "order=asc", after},
		{"list_cursor_by_actor", "sort=actor&order=desc", after},
	}
	for _, tt := range lists {
		t.Run(tt.name, func(t *testing.T) {
			p, f := mustParse(t, tt.query)
			s, pg, _ := p.Listing()
			if err := p.Err(); err != nil {
				t.Fatal(err)
			}
			pg.After = tt.after
			checkGolden(t, tt.name, render("GET /v1/events?"+tt.query, List("acme", f, s, pg)))
		})
	}
	t.Run("count_two_filters", func(t *testing.T) {
		_, f := mustParse(t, "eventType=create-secret&actorId=u-1")
		checkGolden(t, "count_two_filters", render("total of GET /v1/events?eventType=create-secret&actorId=u-1", Count("acme", f)))
	})
	t.Run("hour_marks", func(t *testing.T) {
		from, to := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		checkGolden(t, "hour_marks", render("hour marks of April 2026", HourMarks("acme", from, to, 2*time.Minute)))
	})
	t.Run("hour_pieces", func(t *testing.T) {
		spans := []Span{
			{time.Date(2026, 4, 1, 0, 30, 0, 0, time.UTC), time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC)},
			{time.Date(2026, 4, 3, 7, 0, 0, 0, time.UTC), time.Date(2026, 4, 3, 9, 0, 0, 0, time.UTC)},
		}
		checkGolden(t, "hour_pieces", render("hours counted again: a left edge and two whole hours", HourPieces("acme", schema.Filter{}, spans)))
	})
	t.Run("hour_type_pieces", func(t *testing.T) {
		_, f := mustParse(t, "projectId=p-1")
		rest, _, _ := HourFilter(f)
		spans := []Span{{From: time.Date(2026, 4, 30, 22, 0, 0, 0, time.UTC)}}
		checkGolden(t, "hour_type_pieces", render("the event-type catalog's hours counted again: project p-1, the hours from the newest kept on",
			HourTypePieces("acme", rest, spans, 200_000)))
	})
	t.Run("day_groups", func(t *testing.T) {
		q := "groupBy=actorId&top=10&from=2026-02-01T09:30:00Z&to=2026-05-01T12:00:00Z"
		p, f := mustParse(t, q)
		a := p.Aggregate()
		if err := p.Err(); err != nil || !DayGroupsFit(f, a) {
			t.Fatalf("%v: the top-10 actors over a range do not fit the day groups", err)
		}
		shape := DayShape(f, a.GroupBy)
		d := func(day int) time.Time { return time.Date(2026, 4, day, 0, 0, 0, 0, time.UTC) }
		at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		checkGolden(t, "day_marks", render("when each whole day of the range was last written", DayMarks("acme", d(2), d(30), 2*time.Minute)))
		checkGolden(t, "day_runs", render("the runs kept of the range's days", DayRuns("acme", shape, d(2), d(30))))
		checkGolden(t, "day_groups_write", render("two days counted into run 7", DayGroupsWrite("acme", shape, 7, at, f, a.GroupBy, 1, []time.Time{d(3), d(4), d(6)})))
		checkGolden(t, "day_groups_write_weeks", render("two weeks counted into run 7", DayGroupsWrite("acme", shape, 7, at, f, a.GroupBy, 7, []time.Time{d(2), d(16)})))
		checkGolden(t, "day_run_rows", render("what run 7 wrote", DayRunRows("acme", shape, 7, 1, d(3), d(7))))
		checkGolden(t, "day_markers", render("the markers of run 7", DayMarkers("acme", shape, 7, at, []DayMarker{
			{Day: d(3), Days: 1, Mark: at.Add(-time.Hour), Rows: 12, Expires: at.AddDate(0, 3, 0)}, {Day: d(2), Days: 7, Mark: at.Add(-2 * time.Hour), Expires: at.AddDate(0, 1, 0)}})))
		st, _ := DayGroupsAggregate("acme", shape, f, a, []uint64{DayRunID(7, Block{d(2), 7}), DayRunID(9, Block{d(9), 1})}, d(2), d(9),
			[]Span{{From: f.From, To: d(2)}, {From: d(10), To: f.To}}, 10000)
		checkGolden(t, "day_groups_aggregate", render("GET /v1/aggregates?"+q+" from two kept days and the rest read", st))
		p2, f2 := mustParse(t, "groupBy=eventType,projectId&metrics=count")
		st, _ = DayGroupsAggregate("acme", DayShape(f2, p2.Aggregate().GroupBy), f2, p2.Aggregate(), []uint64{DayRunID(7, Block{d(3), 1})}, d(3), d(3), nil, 10000)
		checkGolden(t, "day_groups_aggregate_plain", render("GET /v1/aggregates?groupBy=eventType,projectId&metrics=count from one kept day alone", st))
	})
	t.Run("get", func(t *testing.T) {
		checkGolden(t, "get", render("GET /v1/events/{id}", Get("acme", "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a")))
	})
	t.Run("event_types", func(t *testing.T) {
		_, f := mustParse(t, "from=2026-04-01T00:00:00Z&projectId=p-1")
		checkGolden(t, "event_types", render("GET /v1/event-types?from=2026-04-01T00:00:00Z&projectId=p-1", EventTypes("acme", f, 10001)))
	})
	t.Run("timeline", func(t *testing.T) {
		f := schema.Filter{From: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
		f.Add(schema.FieldResourceType, "secret")
		f.Add(schema.FieldResourceID, "s-42")
		k, ok := LookupFor(f)
		if !ok {
			t.Fatal("a resource filter is not a timeline")
		}
		checkGolden(t, "timeline_total", render("total of GET /v1/resources/secret/s-42/events?from=2026-04-01T00:00:00Z", TimelineCount("acme", k, f)))
		checkGolden(t, "timeline_page_keys", render("keys of the page after a cursor of GET /v1/resources/secret/s-42/events",
			TimelinePage("acme", k, f, schema.DefaultSort(), 50, 0, after)))
		checkGolden(t, "timeline_fetch", render("the events of a page of keys", Fetch("acme", []schema.Position{*after, {
			Timestamp: after.Timestamp.Add(-time.Second), ID: uuid.MustParse("0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3b")}}, schema.DefaultSort())))
	})
	aggs := []struct{ name, query string }{
		{"aggregate_hourly_histogram", "interval=hour&from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00Z"},
		{"aggregate_top_actors", "groupBy=actorId&top=10&metrics=count,resources,ips"},
		{"aggregate_grouped_buckets_top", "groupBy=eventType,actorType&interval=day&top=5&metrics=count,actors&resourceType=secret"},
		{"aggregate_totals", "metrics=count,actors,resources,ips"},
	}
	for _, tt := range aggs {
		t.Run(tt.name, func(t *testing.T) {
			p, f := mustParse(t, tt.query)
			a := p.Aggregate()
			if err := p.Err(); err != nil {
				t.Fatal(err)
			}
			st, _ := Aggregate("acme", f, a, 10000)
			checkGolden(t, tt.name, render("GET /v1/aggregates?"+tt.query, st))
		})
	}
}

// TestCompiledTextCarriesNoValues: whatever the filter values, the SQL text
// holds none of them; only the parameters do.
func TestCompiledTextCarriesNoValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		marker := fmt.Sprintf("ZQX%dQXZ", i)
		hostile := []string{marker + "' OR 1=1 --", marker + "\\", marker + " FORMAT JSON", marker + " SETTINGS x=1", marker + ") UNION ALL SELECT"}
		v := hostile[rng.IntN(len(hostile))]
		f := schema.Filter{Metadata: []schema.MetadataMatch{{Path: []string{"k" + marker}, Values: []string{v}}}}
		for _, field := range schema.MatchFields {
			if rng.IntN(2) == 0 {
				f.Add(field, v)
			}
		}
		f.EmailPrefixes = []string{strings.ToLower(v)}
		f.EmailContains = []string{strings.ToLower(v)}
		f.Normalize()
		after := &schema.Position{Value: v}
		sts := []Statement{List("org"+marker, f, schema.Sort{By: schema.SortActor}, schema.Page{Limit: 10, After: after}),
			Count("org"+marker, f), EventTypes("org"+marker, f, 5)}
		st, _ := Aggregate("org"+marker, f, schema.Aggregate{GroupBy: []schema.Field{schema.FieldActorEmail}, Top: 3,
			Metrics: []schema.Metric{schema.MetricCount}}, 100)
		sts = append(sts, st)
		for _, st := range sts {
			if strings.Contains(strings.ToLower(st.SQL), strings.ToLower(marker)) {
				t.Fatalf("value reached the SQL text:\n%s", st.SQL)
			}
		}
	}
}

// renderArrays adds a statement's array parameters to its golden form.
func renderArrays(title string, st Statement) string {
	out := render(title, st)
	names := make([]string, 0, len(st.Arrays))
	for k := range st.Arrays {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out += fmt.Sprintf("-- %s = %q\n", k, st.Arrays[k])
	}
	return out
}

// TestExportAndFeedGolden pins the SQL of exports, stream reads and the
// data lake's selections.
func TestExportAndFeedGolden(t *testing.T) {
	for _, tt := range []struct{ name, format string }{
		{"export_parquet", FormatParquet}, {"export_arrow", FormatArrow}, {"export_csv", FormatCSV}, {"export_ndjson", FormatNative},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := "eventType=login&actorId=u-1&from=2026-04-01T00:00:00Z"
			f, err := ParseFilter(mustQuery(t, q), DefaultLimits(), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, render("GET /v1/export?format="+tt.name[len("export_"):]+"&"+q, Export("acme", f, tt.format)))
		})
	}
	t.Run("export_viewer_scope", func(t *testing.T) {
		f, err := ParseFilter(mustQuery(t, "includeAccess=true"), DefaultLimits(), map[schema.Field][]string{schema.FieldProjectID: {"p-1", "p-2"}})
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "export_viewer_scope", render("GET /v1/export?format=ndjson&includeAccess=true by a viewer of p-1, p-2", Export("acme", f, FormatNative)))
	})
	sf := StreamFilter{EventTypes: []string{"login", "logout"}, ActorTypes: []string{"user"}}
	checkGolden(t, "stream_batch", renderArrays("a stream's batch", StreamBatch("acme", "node-1", sf, 41, 99, 500)))
	checkGolden(t, "stream_batch_unfiltered", renderArrays("a stream's batch, no filter", StreamBatch("acme", "node-1", StreamFilter{}, 0, 7, 100)))
	checkGolden(t, "stream_lag", renderArrays("a stream's lag", StreamLag("acme", sf, map[string]uint64{"node-1": 41})))
	created := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	checkGolden(t, "stream_start", render("a stream's start on a node", StreamStart("acme", "node-1", created, 99)))
	checkGolden(t, "lake_start_all_orgs", render("a whole-store destination's start on a node", StreamStart("", "node-1", created, 99)))
	step := LakeStep("acme", "node-1", 41, 99, created)
	checkGolden(t, "lake_step_select", render("a lake step's rows", step.Select(ExportSelect(false))))
	checkGolden(t, "lake_step_partitions", render("a lake step's partitions", step.Partitions("formatDateTime(timestamp, '%Y%m%d', 'UTC')")))
	checkGolden(t, "lake_step_pending", render("a lake destination's pending events", step.Pending()))
	checkGolden(t, "lake_step_nth", render("the end of a lake step of 1000 events", LakeStep("", "node-1", 41, 99, created).Nth(1000)))
	bf := LakeBackfill("acme", created.Add(-48*time.Hour), created.Add(-24*time.Hour), created)
	checkGolden(t, "lake_backfill_select", render("a lake backfill's rows", bf.Select("id")))
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
