package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"

	"github.com/auditstore/auditstore/schema"
)

func gz(tb testing.TB, b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func zst(tb testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

func TestBodyFormsAndEncodings(t *testing.T) {
	db := migrated(t)
	h := newHarness(t, db.Conn, t.TempDir(), nil)
	want := map[string]int{}
	n := 0
	for _, form := range []string{"object", "array", "ndjson"} {
		for _, enc := range []string{"", "gzip", "zstd"} {
			org := fmt.Sprintf("org-%s-%s", form, enc)
			if enc == "" {
				org += "identity"
			}
			var events []map[string]any
			count := 1
			if form != "object" {
				count = 5
			}
			for i := 0; i < count; i++ {
				id := uuid.NewString()
				events = append(events, event(n, id, i%2 == 0))
				want[org+"/"+id] = 1
				n++
			}
			var body []byte
			hdr := map[string]string{"Content-Type": "application/json"}
			switch form {
			case "object":
				body = mustJSON(t, events[0])
			case "array":
				body = mustJSON(t, events)
			case "ndjson":
				body = ndjson(t, events)
				hdr["Content-Type"] = "application/x-ndjson"
			}
			switch enc {
			case "gzip":
				body = gz(t, body)
			case "zstd":
				body = zst(t, body)
			}
			if enc != "" {
				hdr["Content-Encoding"] = enc
			}
			resp := h.post(t, org, body, hdr)
			if resp.code != 202 || resp.body["accepted"] != float64(count) {
				t.Fatalf("%s/%s: %d %s, want 202 accepted %d", form, enc, resp.code, resp.raw, count)
			}
		}
	}
	h.flush(t)
	for key := range want {
		org, id, _ := strings.Cut(key, "/")
		ids, _ := stored(t, db.Conn, org)
		if ids[id] != 1 {
			t.Errorf("%s: event %s stored %d times, want 1", org, id, ids[id])
		}
	}
}

func TestRejectedWholeWithIndices(t *testing.T) {
	db := migrated(t)
	h := newHarness(t, db.Conn, t.TempDir(), nil)
	events := []map[string]any{event(0, "", true), event(1, "", true), event(2, "", true), event(3, "", true), event(4, "", true)}
	events[1]["actor"] = map[string]any{"type": "robot"}
	events[3]["ipAddress"] = "999.1.1.1"
	events[3]["event"] = map[string]any{"type": "bad type"}

	t.Run("array", func(t *testing.T) {
		resp := h.post(t, "acme", mustJSON(t, events), nil)
		if resp.code != 400 || errCode(resp) != "invalid_events" {
			t.Fatalf("%d %s, want 400 invalid_events", resp.code, resp.raw)
		}
		got := map[string]bool{}
		for _, d := range errDetails(resp) {
			got[fmt.Sprintf("%v %v %v", d["index"], d["field"], d["code"])] = true
		}
		for _, want := range []string{"1 actor.type enum", "3 ipAddress ip_address", "3 event.type pattern"} {
			if !got[want] {
				t.Errorf("details lack %q: %v", want, got)
			}
		}
	})
	t.Run("ndjson lines", func(t *testing.T) {
		body := append([]byte("\n"), ndjson(t, events)...) // a blank first line shifts every line by one
		resp := h.post(t, "acme", body, map[string]string{"Content-Type": "application/x-ndjson"})
		if resp.code != 400 {
			t.Fatalf("%d %s", resp.code, resp.raw)
		}
		d := errDetails(resp)[0]
		if d["line"] != float64(3) || d["index"] != float64(1) {
			t.Fatalf("first problem at line %v index %v, want line 3 index 1", d["line"], d["index"])
		}
	})
	t.Run("org mismatch", func(t *testing.T) {
		e := event(9, "", true)
		e["orgId"] = "someone-else"
		resp := h.post(t, "acme", mustJSON(t, []any{event(8, "", true), e}), nil)
		if resp.code != 400 || errDetails(resp)[0]["field"] != "orgId" || errDetails(resp)[0]["index"] != float64(1) {
			t.Fatalf("%d %s, want 400 naming orgId of event 1", resp.code, resp.raw)
		}
	})
	t.Run("reserved type", func(t *testing.T) {
		// The store's records of reads are hidden by their type unless a
		// read asks for them: an event of the org may not take one.
		for _, typ := range schema.AccessEventTypes {
			e := event(11, "", true)
			e["event"] = map[string]any{"type": typ}
			resp := h.post(t, "acme", mustJSON(t, []any{event(10, "", true), e}), nil)
			d := errDetails(resp)
			if resp.code != 400 || len(d) != 1 || d[0]["code"] != "reserved_event_type" || d[0]["field"] != "event.type" || d[0]["index"] != float64(1) {
				t.Fatalf("%s: %d %s, want 400 reserved_event_type for event 1", typ, resp.code, resp.raw)
			}
		}
	})
	h.flush(t)
	if _, rows := stored(t, db.Conn, "acme"); rows != 0 {
		t.Fatalf("rows stored from rejected requests=%d, want 0", rows)
	}
	if d := h.pipe.wal.Durable(); d != 0 {
		t.Fatalf("wal records from rejected requests=%d, want 0", d)
	}
}

func TestLimits(t *testing.T) {
	db := migrated(t)
	h := newHarness(t, db.Conn, t.TempDir(), func(c *Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxEvents = 10
		c.MaxEventBytes = 8 << 10
	})
	big := bytes.Repeat([]byte(" "), 70<<10) // whitespace is valid JSON padding
	bomb := append(append([]byte("["), bytes.Repeat([]byte(" "), 50<<20)...), ']')
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	eleven := make([]map[string]any, 11)
	for i := range eleven {
		eleven[i] = event(i, "", true)
	}
	hugeMeta := event(0, "", true)
	hugeMeta["event"] = map[string]any{"type": "x", "metadata": map[string]any{"blob": strings.Repeat("x", 9<<10)}}
	deepMeta := event(0, "", true)
	deepMeta["event"] = map[string]any{"type": "x", "metadata": map[string]any{}}

	for _, tt := range []struct {
		name   string
		body   []byte
		hdr    map[string]string
		status int
		code   string
	}{
		{"body too large", append(append([]byte{'['}, big...), ']'), nil, 413, "body_too_large"},
		{"gzip bomb", gz(t, bomb), map[string]string{"Content-Encoding": "gzip"}, 413, "body_too_large"},
		{"zstd bomb", zst(t, bomb), map[string]string{"Content-Encoding": "zstd"}, 413, "body_too_large"},
		{"too many events", mustJSON(t, eleven), nil, 413, "too_many_events"},
		{"event too large", mustJSON(t, []any{hugeMeta}), nil, 400, "invalid_events"},
		{"deep nesting", []byte(`{"event":{"type":"x","metadata":` + deep + `},"actor":{"type":"user"}}`), nil, 400, "invalid_events"},
		{"bad content type", mustJSON(t, event(0, "", true)), map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"bad encoding", mustJSON(t, event(0, "", true)), map[string]string{"Content-Encoding": "br"}, 415, "unsupported_encoding"},
		{"corrupt gzip", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, "invalid_body"},
		{"empty", nil, nil, 400, "invalid_body"},
		{"empty array", []byte("[]"), nil, 400, "no_events"},
		{"not json", []byte("hello"), nil, 400, "invalid_body"},
		{"broken array", []byte(`[{"a":1},`), nil, 400, "invalid_body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.post(t, "acme", tt.body, tt.hdr)
			if resp.code != tt.status || errCode(resp) != tt.code {
				t.Fatalf("%d %s, want %d %s", resp.code, resp.raw, tt.status, tt.code)
			}
		})
	}
	h.flush(t)
	if _, rows := stored(t, db.Conn, "acme"); rows != 0 {
		t.Fatalf("rows stored=%d, want 0", rows)
	}
}

func TestResendYieldsOneCopy(t *testing.T) {
	db := migrated(t)
	h := newHarness(t, db.Conn, t.TempDir(), nil)
	var events []map[string]any
	for i := 0; i < 20; i++ {
		events = append(events, event(i, uuid.NewString(), i%2 == 0)) // half without timestamp
	}
	body := mustJSON(t, events)
	for attempt := 0; attempt < 3; attempt++ {
		if resp := h.post(t, "acme", body, nil); resp.code != 202 {
			t.Fatalf("attempt %d: %d %s", attempt, resp.code, resp.raw)
		}
		h.flush(t) // separate batches, separate parts: the copies really are in ClickHouse
	}
	ids, rows := stored(t, db.Conn, "acme")
	if rows != 20 || len(ids) != 20 {
		t.Fatalf("after 3 sends of 20 events: %d rows, %d distinct ids through reads, want 20 and 20", rows, len(ids))
	}
	// And physically, once merged.
	if err := db.Conn.Exec(t.Context(), "OPTIMIZE TABLE events FINAL"); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := db.Conn.QueryRow(t.Context(), "SELECT count() FROM events WHERE org_id = 'acme'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 20 {
		t.Fatalf("rows after merge=%d, want 20", n)
	}
}

func TestIngestSeqFollowsTheLog(t *testing.T) {
	db := migrated(t)
	h := newHarness(t, db.Conn, t.TempDir(), nil)
	for r := 0; r < 5; r++ {
		var events []map[string]any
		for i := 0; i < 7; i++ {
			events = append(events, event(r*7+i, uuid.NewString(), true))
		}
		if resp := h.post(t, "acme", mustJSON(t, events), nil); resp.code != 202 {
			t.Fatal(resp.raw)
		}
	}
	h.flush(t)
	rows, err := db.Conn.Query(t.Context(), "SELECT ingest_node, ingest_seq FROM events FINAL WHERE org_id = 'acme' ORDER BY ingest_seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var prev uint64
	n := 0
	for rows.Next() {
		var node string
		var seq uint64
		if err := rows.Scan(&node, &seq); err != nil {
			t.Fatal(err)
		}
		if node != h.pipe.NodeID() || node == "" {
			t.Fatalf("ingest_node=%q, want %q", node, h.pipe.NodeID())
		}
		if seq <= prev || seq > h.pipe.Confirmed() {
			t.Fatalf("ingest_seq %d after %d (confirmed %d): want increasing and confirmed", seq, prev, h.pipe.Confirmed())
		}
		prev = seq
		n++
	}
	if n != 35 {
		t.Fatalf("rows=%d, want 35", n)
	}
	if first := Seq(1, 0); prev < first {
		t.Fatalf("last seq %d below the first record's %d", prev, first)
	}
}

// TestMaxEventsBounded: a row's ingest_seq holds its index in its request in
// 16 bits, so a request of more than 65,535 events would reuse the sequence
// numbers of the next record (streams would skip events).
func TestMaxEventsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEvents = MaxEventsLimit
	if err := cfg.Validate(); err != nil {
		t.Fatalf("MaxEvents=%d: %v", cfg.MaxEvents, err)
	}
	cfg.MaxEvents = MaxEventsLimit + 1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "at most 65535") {
		t.Fatalf("MaxEvents=%d: err=%v, want it refused with the bound", cfg.MaxEvents, err)
	}
	if Seq(1, MaxEventsLimit) >= Seq(2, 0) {
		t.Fatalf("Seq(1, %d)=%d overlaps Seq(2, 0)=%d", MaxEventsLimit, Seq(1, MaxEventsLimit), Seq(2, 0))
	}
}
