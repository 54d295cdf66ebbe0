package stream

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// failingRecorder is memRecorder refusing every record, as a full
// write-ahead log would, while fail is set.
type failingRecorder struct {
	memRecorder
	fail atomic.Bool
}

func (r *failingRecorder) Record(ctx context.Context, org string, e schema.Event) error {
	if r.fail.Load() {
		return schema.Unavailable("wal_full", "the write-ahead log is full (test)")
	}
	return r.memRecorder.Record(ctx, org, e)
}

func namedStream(f *fake, name string) map[string]any {
	b := customStream(f, "Authorization", "Bearer custom-secret-0123456789abcdef")
	b["name"] = name
	return b
}

func wantUnavailable(tb testing.TB, what string, code int, out map[string]any, raw string) {
	tb.Helper()
	e, _ := out["error"].(map[string]any)
	if code != http.StatusServiceUnavailable || e["code"] != "audit_unavailable" || !strings.Contains(raw, "nothing was changed") {
		tb.Fatalf("%s with a failing audit record: %d %s, want 503 audit_unavailable", what, code, raw)
	}
}

// TestStreamChangeAndRecordAreOneOutcome: a stream created, changed or
// deleted while its audit record cannot be written is undone: a new stream
// is not listed and delivers nothing (another stream created later, once
// records work, delivers every event meanwhile), a paused or deleted one
// keeps delivering; the caller gets 503 audit_unavailable.
func TestStreamChangeAndRecordAreOneOutcome(t *testing.T) {
	undone := newCustom(t, "Authorization", "Bearer custom-secret-0123456789abcdef", true)
	kept := newCustom(t, "Authorization", "Bearer custom-secret-0123456789abcdef", true)
	h := newHarness(t, nil)
	rec := &failingRecorder{}
	h.svc.rec = rec

	rec.fail.Store(true)
	code, out, raw := h.do(t, "acme", "POST", "/v1/streams", namedStream(undone, "undone"))
	wantUnavailable(t, "create", code, out, raw)
	rec.fail.Store(false) // listing is itself recorded
	if _, out, raw := h.do(t, "acme", "GET", "/v1/streams", nil); len(asList(out["streams"])) != 0 {
		t.Fatalf("streams after an undone creation: %s", raw)
	}
	id := h.mustCreate(t, "acme", namedStream(kept, "kept"))
	want := h.insertN(t, "acme", 50, 0)
	eventually(t, 60*time.Second, "the recorded stream delivers", func() bool { return kept.distinct() >= len(want) })

	rec.fail.Store(true)
	code, out, raw = h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"paused": true, "name": "renamed"})
	wantUnavailable(t, "pause", code, out, raw)
	code, out, raw = h.do(t, "acme", "DELETE", "/v1/streams/"+id, nil)
	wantUnavailable(t, "delete", code, out, raw)
	rec.fail.Store(false)
	_, out, raw = h.do(t, "acme", "GET", "/v1/streams", nil)
	rec.fail.Store(true)
	if l := asList(out["streams"]); len(l) != 1 || l[0].(map[string]any)["name"] != "kept" || l[0].(map[string]any)["paused"] != false {
		t.Fatalf("streams after an undone pause and deletion: %s", raw)
	}
	want = append(want, h.insertN(t, "acme", 50, 0)...)
	eventually(t, 60*time.Second, "the stream still delivers", func() bool { return kept.distinct() >= len(want) })
	if dups := checkOrder(t, want, kept.received()); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if n := undone.count(); n != 0 {
		t.Errorf("the stream whose creation was undone delivered %d requests", n)
	}
	var changes []string // reads (stream.list) are recorded too
	for _, typ := range rec.Types() {
		if typ != schema.EventStreamList {
			changes = append(changes, typ)
		}
	}
	if strings.Join(changes, ",") != "stream.create" {
		t.Errorf("changes recorded: %v, want only the kept stream's creation", changes)
	}
	if !strings.Contains(h.logs.String(), "stream change undone") {
		t.Errorf("no log of the undone changes:\n%s", h.logs)
	}
}

// asList is v as a JSON array (nil when it is none, so that a failed
// answer fails the test's check instead of panicking).
func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
