package gen

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

func TestGeneratorIsDeterministicOrderedAndValid(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events = 50_000
	cfg.End = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg)
	lim := schema.DefaultLimits()
	lim.MaxPast = cfg.Span + 24*time.Hour
	var last time.Time
	counts := map[string]int{}
	mdBytes, resent, n := 0, 0, 0
	for {
		x, ok := a.Next()
		y, _ := b.Next()
		if !ok {
			break
		}
		n++
		if !reflect.DeepEqual(x.Event, y.Event) || !x.Received.Equal(y.Received) {
			t.Fatalf("event %d differs between two generators of one seed", n)
		}
		if x.Resent {
			resent++
			continue
		}
		if x.Event.Timestamp.Before(last) || x.Received.Before(x.Event.Timestamp) {
			t.Fatalf("event %d out of order", n)
		}
		last = x.Event.Timestamp
		counts[x.Org.ID]++
		mdBytes += len(x.Event.Event.Metadata)
		raw, _ := json.Marshal(x.Event)
		if _, errs := schema.DecodeEvent(raw, 0, lim, cfg.End); len(errs) > 0 {
			t.Fatalf("event %d is invalid: %v\n%s", n, errs, raw)
		}
		if r := x.Row(); r.ActorID == "" || r.OrgID != x.Org.ID {
			t.Fatalf("row %+v", r)
		}
	}
	if n != cfg.Events {
		t.Fatalf("%d events, want %d", n, cfg.Events)
	}
	if avg := mdBytes / (n - resent); avg < 150 || avg > 600 {
		t.Errorf("metadata averages %d bytes", avg)
	}
	if resent == 0 || resent > n/100 {
		t.Errorf("%d re-sent of %d", resent, n)
	}
	orgs := a.Orgs()
	if got := float64(counts[orgs[0].ID]) / float64(n); got < orgs[0].Share*0.8 || got > orgs[0].Share*1.2 || got < 0.1 {
		t.Errorf("the largest org has %.3f of the events, its share is %.3f", got, orgs[0].Share)
	}
	if len(counts) < 100 {
		t.Errorf("only %d orgs have events", len(counts))
	}
}
