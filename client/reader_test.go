package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/auditstore/auditstore/client"
	"github.com/auditstore/auditstore/internal/servertest"
)

// TestClientAgainstServer drives every call of the client against the real
// server: orgs and keys, sending, pages and cursors, one event, timelines,
// the catalog, aggregates, exports and streams.
func TestClientAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	ctx := context.Background()
	s := servertest.Start(t, "-allow-private-destinations")
	keys := org(t, s, "acme")
	op := newClient(t, s.Base, servertest.AdminToken)
	if o, err := op.SetPlan(ctx, "acme", "enterprise"); err != nil || o.Plan != "enterprise" {
		t.Fatalf("SetPlan: %+v %v", o, err)
	}
	ks, err := op.Keys(ctx, "acme")
	if err != nil || len(ks) != 3 {
		t.Fatalf("Keys: %d %v", len(ks), err)
	}
	spare, err := op.CreateKey(ctx, "acme", "read", "spare")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.RevokeKey(ctx, "acme", spare.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}

	for _, comp := range []string{client.Gzip, client.Zstd, client.None} {
		p, err := newClient(t, s.Base, keys["ingest"]).NewProducer(client.ProducerConfig{Compression: comp, BatchEvents: 7})
		if err != nil {
			t.Fatal(err)
		}
		evs := make([]client.Event, 20)
		for i := range evs {
			evs[i] = sample("invoice.paid", i)
		}
		evs[3].TraceID = "trace-one"
		if err := p.SendWait(ctx, evs...); err != nil {
			t.Fatalf("%s: SendWait: %v", comp, err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatalf("%s: Close: %v", comp, err)
		}
	}
	rd := newClient(t, s.Base, keys["read"])
	waitCount(t, rd, "invoice.paid", 60)

	pg, err := rd.Events(ctx, client.ListOptions{Filter: client.Filter{EventTypes: []string{"invoice.paid"}}, Limit: 25, Page: 2})
	if err != nil || len(pg.Events) != 25 || *pg.Pages != 3 || *pg.Page != 2 {
		t.Fatalf("page 2: %v %+v", err, pg)
	}
	seen := map[string]bool{}
	for e, err := range rd.All(ctx, client.ListOptions{Filter: client.Filter{EventTypes: []string{"invoice.paid"}}, Limit: 8}) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.ID] || e.Action.Type != "invoice.paid" || e.ExpiresAt.IsZero() || len(e.Raw) == 0 {
			t.Fatalf("All: %+v (seen %v)", e, seen[e.ID])
		}
		seen[e.ID] = true
	}
	if len(seen) != 60 {
		t.Fatalf("All gave %d events, want 60", len(seen))
	}
	tr, err := rd.Events(ctx, client.ListOptions{TraceID: "trace-one"})
	if err != nil || len(tr.Events) != 3 {
		t.Fatalf("trace: %v %d", err, len(tr.Events))
	}
	one, err := rd.Event(ctx, tr.Events[0].ID)
	if err != nil || one.ID != tr.Events[0].ID || one.Action.Metadata["n"] != float64(3) {
		t.Fatalf("Event: %v %+v", err, one)
	}
	var ae *client.APIError
	if _, err := rd.Event(ctx, "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("missing event: %v", err)
	}
	res, err := rd.Events(ctx, client.ListOptions{Resource: &client.Resource{Type: "invoice", ID: "inv-3"}})
	if err != nil || len(res.Events) != 6 {
		t.Fatalf("resource timeline: %v %d", err, len(res.Events))
	}
	types, _, err := rd.EventTypes(ctx, client.Filter{ActorTypes: []string{"service"}})
	if err != nil || len(types) != 1 || types[0].Count != 60 {
		t.Fatalf("EventTypes: %v %+v", err, types)
	}
	groups, err := rd.Aggregates(ctx, client.AggregateOptions{GroupBy: []string{"resourceType"}, Metrics: []string{"count"},
		Filter: client.Filter{EventTypes: []string{"invoice.paid"}}})
	if err != nil || len(groups) != 1 || groups[0]["count"] != float64(60) {
		t.Fatalf("Aggregates: %v %+v", err, groups)
	}
	_, err = rd.Events(ctx, client.ListOptions{Filter: client.Filter{Params: map[string][]string{"bogus": {"1"}}}})
	if !errors.As(err, &ae) || ae.Status != 400 || len(ae.Details) != 1 || ae.Details[0].Field != "bogus" {
		t.Fatalf("unknown parameter: %v", err)
	}
	body, err := rd.Export(ctx, client.FormatNDJSON, client.Filter{EventTypes: []string{"invoice.paid"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || strings.Count(string(b), "\n") != 60 {
		t.Fatalf("export: %v, %d lines", err, strings.Count(string(b), "\n"))
	}

	// Streams.
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer dest.Close()
	ad := newClient(t, s.Base, keys["admin"])
	cfg, _ := json.Marshal(map[string]any{"url": dest.URL, "headers": map[string]string{"X-Token": "secret"}})
	st, err := ad.CreateStream(ctx, client.Stream{Name: "tool", Provider: "custom", Config: cfg,
		Filter: client.StreamFilter{EventTypes: []string{"invoice.paid"}}})
	if err != nil || st.ID == "" || strings.Contains(string(st.Config), "secret") {
		t.Fatalf("CreateStream: %v %+v", err, st)
	}
	list, err := ad.Streams(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("Streams: %v %d", err, len(list))
	}
	paused := true
	if up, err := ad.UpdateStream(ctx, st.ID, client.StreamUpdate{Paused: &paused}); err != nil || !up.Paused {
		t.Fatalf("UpdateStream: %v %+v", err, up)
	}
	if got, err := ad.Stream(ctx, st.ID); err != nil || got.Status == nil || got.Status.State != "paused" {
		t.Fatalf("Stream: %v %+v", err, got)
	}
	if res, err := ad.TestStream(ctx, st.ID); err != nil || !res.OK || res.Status != 200 {
		t.Fatalf("TestStream: %v %+v", err, res)
	}
	if err := ad.DeleteStream(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ad.Stream(ctx, st.ID); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("deleted stream: %v", err)
	}
}
