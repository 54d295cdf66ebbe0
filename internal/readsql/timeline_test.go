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
