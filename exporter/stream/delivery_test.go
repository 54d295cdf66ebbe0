package stream

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// allProviders starts a fake of every provider and returns them with the
// create bodies of their streams.
type destinations struct {
	dd, sp, cr, cu *fake
	az             *azureFake
}

func startDestinations(t *testing.T) *destinations {
	return &destinations{
		dd: newDatadog(t, "dd-api-key-0123456789abcdef01"),
		sp: newSplunk(t, "splunk-hec-token-0123456789abcdef"),
		cr: newCribl(t, "cribl-auth-token-0123456789abcdef"),
		cu: newCustom(t, "Authorization", "Bearer custom-secret-0123456789abcdef", true),
		az: newAzure(t, "azure-client-secret-0123456789abcdef", 3600),
	}
}

func (d *destinations) tweak(c *Config) {
	c.DatadogURL = d.dd.srv.URL
	c.AzureLoginURL = d.az.login.URL
}

func (d *destinations) create(t *testing.T, h *harness, org string) map[*fake]string {
	ids := map[*fake]string{}
	ids[d.dd] = h.mustCreate(t, org, map[string]any{"name": "datadog", "provider": "datadog",
		"config": map[string]any{"site": "us5", "apiKey": "dd-api-key-0123456789abcdef01", "tags": "env:test"}})
	ids[d.sp] = h.mustCreate(t, org, map[string]any{"name": "splunk", "provider": "splunk",
		"config": map[string]any{"host": strings.TrimPrefix(d.sp.srv.URL, "https://"), "token": "splunk-hec-token-0123456789abcdef"}})
	ids[d.cr] = h.mustCreate(t, org, map[string]any{"name": "cribl", "provider": "cribl",
		"config": map[string]any{"url": d.cr.srv.URL + "/cribl/_bulk", "token": "cribl-auth-token-0123456789abcdef"}})
	ids[d.cu] = h.mustCreate(t, org, map[string]any{"name": "hook", "provider": "custom",
		"config": map[string]any{"url": d.cu.srv.URL + "/hook", "headers": map[string]string{"Authorization": "Bearer custom-secret-0123456789abcdef"}}})
	ids[d.az.ingest] = h.mustCreate(t, org, azureStream(d.az))
	return ids
}

// TestDeliversToEveryProvider: every event of the org accepted after the
// streams were created reaches every destination once, in order, in each
// destination's wire format, and nothing of another org does.
func TestDeliversToEveryProvider(t *testing.T) {
	d := startDestinations(t)
	h := newHarness(t, d.tweak)
	h.insertN(t, "acme", 10, 0) // before the streams: not delivered
	ids := d.create(t, h, "acme")
	var want []string
	for range 5 {
		want = append(want, h.insertN(t, "acme", 500, 0)...)
		h.insertN(t, "other", 50, 0)
	}
	for f := range ids {
		eventually(t, 60*time.Second, "every event at every destination", func() bool { return f.distinct() >= len(want) })
	}
	for f, id := range ids {
		f.checkClean(t)
		if dups := checkOrder(t, want, f.received()); dups != 0 {
			t.Errorf("stream %s: %d duplicates without any failure", id, dups)
		}
		if len(f.received()) != len(want) {
			t.Errorf("stream %s: received %d records, want %d (no event before its creation, none of another org)", id, len(f.received()), len(want))
		}
		eventually(t, 10*time.Second, "status caught up", func() bool {
			st := h.status(t, "acme", id)
			return st["state"] == StateActive && st["delivered"].(float64) == float64(len(want)) && st["lagEvents"].(float64) == 0
		})
		if got := counter(t, h.reg, "auditstore_stream_events_delivered_total", id); got != float64(len(want)) {
			t.Errorf("stream %s: delivered metric %v, want %d", id, got, len(want))
		}
	}
	if d.dd.count() < 3 {
		t.Errorf("datadog got %d requests for 2500 events: the 1,000-entry limit was not applied", d.dd.count())
	}
}

// TestBatchesStayWithinLimits: large events are split into requests within
// each destination's byte limits, and an event over a destination's
// per-element limit is sent cut down rather than blocking the stream.
func TestBatchesStayWithinLimits(t *testing.T) {
	d := startDestinations(t)
	h := newHarness(t, d.tweak)
	ids := d.create(t, h, "acme")
	want := h.insertN(t, "acme", 100, 60_000) // 6 MB in all
	evs := []schema.Event{event("acme", 100, "create-secret", "user", 1_100_000)}
	want = append(want, h.insert(t, evs, true)...)
	for f := range ids {
		eventually(t, 60*time.Second, "every event at every destination", func() bool { return f.distinct() >= len(want) })
		f.checkClean(t)
		checkOrder(t, want, f.received())
	}
	if n := d.az.ingest.count(); n < 7 {
		t.Errorf("azure got %d requests for 6 MB: the 1 MB limit was not applied", n)
	}
	if n := d.dd.count(); n < 2 {
		t.Errorf("datadog got %d requests for 6 MB: the 5 MB limit was not applied", n)
	}
}

// TestFilterAndSkippedEvents: a stream gets only the event and actor types
// it asked for, and its cursor moves past the others.
func TestFilterAndSkippedEvents(t *testing.T) {
	h := newHarness(t, nil)
	cu := newCustom(t, "X-Token", "filter-token-0123456789", false) // plain http: private address, allowed
	id := h.mustCreate(t, "acme", map[string]any{"name": "siem", "provider": "custom",
		"config": map[string]any{"url": cu.srv.URL + "/hook", "headers": map[string]string{"X-Token": "filter-token-0123456789"}},
		"filter": map[string]any{"eventTypes": []string{"user.login", "create-secret"}, "actorTypes": []string{"user"}}})
	var evs []schema.Event
	var want []string
	for i := range 300 {
		typ, actor := "create-secret", "user"
		switch i % 3 {
		case 1:
			typ = "get-secrets"
		case 2:
			actor = "service"
		}
		evs = append(evs, event("acme", i, typ, actor, 0))
	}
	ids := h.insert(t, evs, true)
	for i, id := range ids {
		if i%3 == 0 {
			want = append(want, id)
		}
	}
	h.insertN(t, "other", 20, 0)
	eventually(t, 20*time.Second, "the filtered events", func() bool { return cu.distinct() >= len(want) })
	cu.checkClean(t)
	if dups := checkOrder(t, want, cu.received()); dups != 0 || len(cu.received()) != len(want) {
		t.Fatalf("received %d records (%d duplicates), want exactly the %d matching", len(cu.received()), dups, len(want))
	}
	eventually(t, 10*time.Second, "no lag", func() bool {
		st := h.status(t, "acme", id)
		return st["lagEvents"].(float64) == 0 && st["delivered"].(float64) == float64(len(want))
	})
}

// TestPausedStreamDeliversOnResume: a paused stream keeps its place.
func TestPausedStreamDeliversOnResume(t *testing.T) {
	h := newHarness(t, nil)
	cu := newCustom(t, "X-Token", "pause-token-0123456789", true)
	id := h.mustCreate(t, "acme", map[string]any{"name": "siem", "provider": "custom",
		"config": map[string]any{"url": cu.srv.URL + "/hook", "headers": map[string]string{"X-Token": "pause-token-0123456789"}}})
	if code, _, raw := h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"paused": true}); code != http.StatusOK {
		t.Fatalf("pause: %d %s", code, raw)
	}
	eventually(t, 5*time.Second, "paused state", func() bool { return h.status(t, "acme", id)["state"] == StatePaused })
	want := h.insertN(t, "acme", 20, 0)
	time.Sleep(300 * time.Millisecond)
	if n := cu.count(); n != 0 {
		t.Fatalf("a paused stream sent %d requests", n)
	}
	if st := h.status(t, "acme", id); st["lagEvents"].(float64) != 20 {
		t.Fatalf("paused stream lag %v, want 20", st["lagEvents"])
	}
	h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"paused": false})
	eventually(t, 10*time.Second, "delivery on resume", func() bool { return cu.distinct() == len(want) })
	checkOrder(t, want, cu.received())
}
