package readsql

import (
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

func TestLookupForTimelinesOnly(t *testing.T) {
	res := schema.Filter{}
	res.Add(schema.FieldResourceType, "secret")
	res.Add(schema.FieldResourceID, "s/1")
	actor := schema.Filter{From: time.Now()}
	actor.Add(schema.FieldActorID, "u-1")
	two := schema.Filter{}
	two.Add(schema.FieldActorID, "u-1", "u-2")
	more := schema.Filter{}
	more.Add(schema.FieldActorID, "u-1")
	more.Add(schema.FieldEventType, "login")
	meta := schema.Filter{Metadata: []schema.MetadataMatch{{Path: []string{"a"}, Values: []string{"b"}}}}
	meta.Add(schema.FieldActorID, "u-1")
	idOnly := schema.Filter{}
	idOnly.Add(schema.FieldResourceID, "s-1")
	for _, tc := range []struct {
		f    schema.Filter
		want Lookup
		ok   bool
	}{
		{res, Lookup{schema.KeyResource, "secret/s/1"}, true},
		{actor, Lookup{schema.KeyActor, "u-1"}, true},
		{two, Lookup{}, false},
		{more, Lookup{}, false},
		{meta, Lookup{}, false},
		{idOnly, Lookup{}, false},
		{schema.Filter{}, Lookup{}, false},
	} {
		if got, ok := LookupFor(tc.f); got != tc.want || ok != tc.ok {
			t.Errorf("%+v: %v %v, want %v %v", tc.f, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFilterKeySeparatesFilters(t *testing.T) {
	f := func(kv ...string) schema.Filter {
		var x schema.Filter
		for i := 0; i < len(kv); i += 2 {
			x.Add(schema.Field(kv[i]), kv[i+1])
		}
		x.Normalize()
		return x
	}
	a, b := f("eventType", "x\x00eventType=y", "projectId", "z"), f("eventType", "x", "projectId", "y\x00projectId=z")
	scoped := f("eventType", "x")
	scoped.Scope = map[schema.Field][]string{schema.FieldProjectID: {"p-1"}}
	distinct := []schema.Filter{{}, f("eventType", "x"), f("eventType", "y"), f("projectId", "x"), f("eventType", "x", "projectId", "y"),
		a, b, scoped, {Metadata: []schema.MetadataMatch{{Path: []string{"a"}, Values: []string{"b"}}}}}
	seen := map[[32]byte]int{}
	for i, x := range distinct {
		k := FilterKey(x)
		if j, dup := seen[k]; dup {
			t.Errorf("filters %d and %d share a key: %+v, %+v", j, i, distinct[j], x)
		}
		seen[k] = i
	}
	one, two := f("eventType", "b", "eventType", "a"), f("eventType", "a", "eventType", "b")
	if FilterKey(one) != FilterKey(two) {
		t.Errorf("the same filter, values in another order: keys differ")
	}
}
