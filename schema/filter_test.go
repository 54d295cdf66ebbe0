package schema

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every field of the query API maps to a column the table has.
func TestFieldColumnsAreAllowListed(t *testing.T) {
	for _, f := range slices.Concat(MatchFields, GroupFields) {
		col, ok := f.Column()
		if !ok || !slices.Contains(InsertColumns, col) {
			t.Errorf("field %q: column %q, ok=%v", f, col, ok)
		}
	}
	for _, f := range []Field{"", "orgId", "org_id", "event_metadata", "eventType; DROP TABLE events"} {
		if col, ok := f.Column(); ok {
			t.Errorf("field %q is allowed (column %q)", f, col)
		}
	}
	for _, k := range (Sort{By: SortActor}).Keys() {
		if !slices.Contains(InsertColumns, k.Column) {
			t.Errorf("sort column %q", k.Column)
		}
	}
}

func TestFilterNormalize(t *testing.T) {
	f := Filter{
		EmailPrefixes: []string{"b", "a", "b"},
		IPs:           []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("10.0.0.1")},
		IPRanges:      []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("::ffff:10.0.0.0/104")},
		From:          time.Date(2026, 5, 1, 0, 0, 0, 1, time.FixedZone("", 3600)),
		To:            time.Date(2026, 5, 2, 0, 0, 0, 2e6, time.UTC),
		Metadata: []MetadataMatch{{Path: []string{"b"}, Values: []string{"2"}}, {Path: []string{"a", "x"}, Values: []string{"z", "y"}},
			{Path: []string{"b"}, Values: []string{"1", "2"}}},
	}
	f.Add(FieldEventType, "z", "a", "z")
	f.Add(FieldActorID)
	f.Normalize()
	switch {
	case !slices.Equal(f.Match[FieldEventType], []string{"a", "z"}):
		t.Errorf("match %v", f.Match)
	case len(f.Match) != 1:
		t.Errorf("empty lists kept: %v", f.Match)
	case !slices.Equal(f.EmailPrefixes, []string{"a", "b"}):
		t.Errorf("prefixes %v", f.EmailPrefixes)
	case len(f.IPs) != 1 || f.IPs[0].String() != "10.0.0.1":
		t.Errorf("ips %v", f.IPs)
	case len(f.IPRanges) != 1 || f.IPRanges[0].String() != "10.0.0.0/8":
		t.Errorf("ranges %v", f.IPRanges)
	case f.From.Format(time.RFC3339Nano) != "2026-04-30T23:00:00.001Z" || f.To.Format(time.RFC3339Nano) != "2026-05-02T00:00:00.002Z":
		t.Errorf("times %v %v", f.From, f.To)
	case len(f.Metadata) != 2 || f.Metadata[0].Key() != "a.x" || !slices.Equal(f.Metadata[1].Values, []string{"1", "2"}):
		t.Errorf("metadata %+v", f.Metadata)
	}
}

func TestSortKeysAreTotal(t *testing.T) {
	for _, s := range []Sort{DefaultSort(), {By: SortTimestamp}, {By: SortEventType}, {By: SortEventType, Desc: true}, {By: SortActor}} {
		keys := s.Keys()
		if keys[len(keys)-1].Column != ColID {
			t.Errorf("%+v: the order does not end with the id: %v", s, keys)
		}
		if keys[0].Desc != s.Desc {
			t.Errorf("%+v: first key %v", s, keys[0])
		}
	}
	if k := (Sort{By: SortTimestamp}).Keys(); k[1].Desc {
		t.Errorf("oldest first breaks ties descending: %v", k)
	}
}

func TestMetadataKeyPattern(t *testing.T) {
	for k, want := range map[string]bool{
		"env": true, "a.b.c": true, "k-1_x": true, "a.b.c.d.e.f.g.h": true, strings.Repeat("k", 64): true,
		"": false, "a..b": false, ".a": false, "a.": false, "a b": false, "a.b.c.d.e.f.g.h.i": false,
		strings.Repeat("k", 65): false, "é": false, "a'b": false, "a\x00": false,
	} {
		if got := MetadataKeyPattern.MatchString(k); got != want {
			t.Errorf("%q: %v, want %v", k, got, want)
		}
	}
}

func TestAllowListedExpressions(t *testing.T) {
	for _, iv := range Intervals {
		if e, ok := iv.Bucket(); !ok || !strings.HasPrefix(e, "toDateTime(") {
			t.Errorf("interval %q: %q %v", iv, e, ok)
		}
	}
	if _, ok := Interval("year").Bucket(); ok {
		t.Error("unknown interval allowed")
	}
	for _, m := range Metrics {
		if _, ok := m.Expr(); !ok {
			t.Errorf("metric %q", m)
		}
	}
	if _, ok := Metric("sum(secret)").Expr(); ok {
		t.Error("unknown metric allowed")
	}
	if off := (Page{Limit: 50, Number: 3}).Offset(); off != 100 {
		t.Errorf("offset %d", off)
	}
}
