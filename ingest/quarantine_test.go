package ingest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/auditstore/auditstore/schema"
)

// poisonConn is the real ClickHouse connection, except that it refuses a
// batch holding an event whose traceId is "poison" with ClickHouse's own
// error type and a code that refuses the data (TYPE_MISMATCH), as the
// server does for a value it cannot take. Every other batch goes to the
// real ClickHouse.
type poisonConn struct {
	driver.Conn
	refusals atomic.Int64
}

const traceIDColumn = 3 + 16 // org, timestamp, id, then str[16] (see columns)

func (c *poisonConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	b, err := c.Conn.PrepareBatch(ctx, query, opts...)
	if err != nil {
		return nil, err
	}
	return &poisonBatch{Batch: b, c: c}, nil
}

type poisonBatch struct {
	driver.Batch
	c        *poisonConn
	poisoned bool
}

func (b *poisonBatch) Column(i int) driver.BatchColumn {
	col := b.Batch.Column(i)
	if i != traceIDColumn {
		return col
	}
	return poisonColumn{col, b}
}

func (b *poisonBatch) Send() error {
	if b.poisoned {
		_ = b.Batch.Abort()
		b.c.refusals.Add(1)
		return &clickhouse.Exception{Code: 53, Name: "DB::Exception", Message: "Type mismatch in a column (test: an event marked poison)"}
	}
	return b.Batch.Send()
}

type poisonColumn struct {
	driver.BatchColumn
	b *poisonBatch
}

func (c poisonColumn) Append(v any) error {
	for _, s := range v.([]string) {
		if s == "poison" {
			c.b.poisoned = true
		}
	}
	return c.BatchColumn.Append(v)
}

func poisoned(i int, id string) map[string]any {
	e := event(i, id, true)
	e["traceId"] = "poison"
	return e
}

func quarantineList(t *testing.T, h *harness) []QuarantineEntry {
	t.Helper()
	resp := h.operator(t, "GET", "/v1/quarantine")
	if resp.code != 200 {
		t.Fatalf("list: %d %s", resp.code, resp.raw)
	}
	var out struct{ Entries []QuarantineEntry }
	if err := json.Unmarshal([]byte(resp.raw), &out); err != nil {
		t.Fatal(err)
	}
	return out.Entries
}

// TestPoisonEventIsQuarantined: an event ClickHouse refuses for good no
// longer blocks the others: the batch is split, the good events are
// stored, the refused one is set aside in a quarantine that survives a
// restart, is reported, and the operator replays or discards it.
func TestPoisonEventIsQuarantined(t *testing.T) {
	db := migrated(t)
	dir := t.TempDir()
	pc := &poisonConn{Conn: db.Conn}
	h := newHarness(t, pc, dir, nil)
	good := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	bad1, bad2 := uuid.NewString(), uuid.NewString()
	for _, body := range [][]map[string]any{
		{event(0, good[0], true)},
		{event(1, good[1], true), poisoned(2, bad1), event(3, good[2], true)},
		{poisoned(4, bad2)},
		{event(5, good[3], true)},
	} {
		if resp := h.post(t, "acme", mustJSON(t, body), nil); resp.code != 202 {
			t.Fatalf("post: %d %s", resp.code, resp.raw)
		}
	}
	h.flush(t)
	got, _ := stored(t, db.Conn, "acme")
	for i, id := range good {
		if got[id] != 1 {
			t.Errorf("good event %d stored %d times, want 1", i, got[id])
		}
	}
	if got[bad1]+got[bad2] != 0 || pc.refusals.Load() == 0 {
		t.Fatalf("poisoned events stored %d/%d times, refusals %d", got[bad1], got[bad2], pc.refusals.Load())
	}
	if r := h.pipe.Health(); len(r) != 0 {
		t.Fatalf("health=%q, want none: ingest flows", r)
	}
	if d := strings.Join(h.pipe.Degraded(), "; "); !strings.Contains(d, "2 quarantine entries (2 events)") {
		t.Fatalf("degraded=%q, want the quarantine reported", d)
	}
	if n := counterValue(t, h.pipe.m.quarantined); n != 2 {
		t.Fatalf("auditstore_ingest_quarantined_events_total=%v, want 2", n)
	}

	h.stop() // the quarantine survives a restart
	h = newHarness(t, pc, dir, nil)
	entries := quarantineList(t, h)
	byEvent := map[string]QuarantineEntry{}
	for _, e := range entries {
		if len(e.EventIDs) != 1 || e.ClickHouseCode != 53 || !strings.Contains(e.Reason, "Type mismatch") {
			t.Fatalf("entry %+v, want one event refused with code 53", e)
		}
		byEvent[e.EventIDs[0]] = e
	}
	if len(entries) != 2 || byEvent[bad1].ID == "" || byEvent[bad2].ID == "" {
		t.Fatalf("after restart, entries=%+v, want bad1 and bad2", entries)
	}
	if len(h.pipe.Degraded()) == 0 {
		t.Fatal("degraded empty after restart")
	}
	// Replayed while ClickHouse still refuses it: it comes back.
	if resp := h.operator(t, "POST", "/v1/quarantine/"+byEvent[bad1].ID+"/replay"); resp.code != 202 {
		t.Fatalf("replay: %d %s", resp.code, resp.raw)
	}
	if resp := h.operator(t, "DELETE", "/v1/quarantine/"+byEvent[bad2].ID); resp.code != 204 {
		t.Fatalf("discard: %d %s", resp.code, resp.raw)
	}
	for _, path := range []string{"/v1/quarantine/" + byEvent[bad2].ID, "/v1/quarantine/..%2F..%2Fcheckpoint", "/v1/quarantine/x"} {
		if resp := h.operator(t, "DELETE", path); resp.code != 404 {
			t.Fatalf("DELETE %s: %d %s, want 404", path, resp.code, resp.raw)
		}
	}
	h.flush(t)
	entries = quarantineList(t, h)
	if len(entries) != 1 || entries[0].EventIDs[0] != bad1 || entries[0].ID == byEvent[bad1].ID {
		t.Fatalf("after replay (refused again) and discard: %+v, want bad1 alone, under a new id", entries)
	}

	// Once ClickHouse takes it, a replay stores it.
	h.stop()
	h = newHarness(t, db.Conn, dir, nil)
	if resp := h.operator(t, "POST", "/v1/quarantine/"+entries[0].ID+"/replay"); resp.code != 202 {
		t.Fatalf("replay: %d %s", resp.code, resp.raw)
	}
	h.flush(t)
	if e := quarantineList(t, h); len(e) != 0 {
		t.Fatalf("entries=%+v, want none", e)
	}
	if d := h.pipe.Degraded(); len(d) != 0 {
		t.Fatalf("degraded=%q, want none", d)
	}
	got, rows := stored(t, db.Conn, "acme")
	if got[bad1] != 1 || got[bad2] != 0 || rows != uint64(len(good)+1) {
		t.Fatalf("bad1 stored %d, bad2 %d, rows %d; want 1, 0, %d", got[bad1], got[bad2], rows, len(good)+1)
	}
	// The operator's only: an org's admin key is refused.
	req := httptest.NewRequest("GET", "/v1/quarantine", nil)
	req.Header.Set("X-Test-Org", "acme")
	req.Header.Set("X-Test-Role", "admin")
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	if w.Code != 403 {
		t.Fatalf("org admin key: %d %s, want 403", w.Code, w.Body)
	}
}

// TestDamagedRecordIsQuarantined: a log record whose checksum fails when
// it is read (damaged on disk after it was written) goes to the
// quarantine; the records after it are inserted.
func TestDamagedRecordIsQuarantined(t *testing.T) {
	db := migrated(t)
	dir := t.TempDir()
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	h := newHarnessBeforeRun(t, db.Conn, dir, nil, func(p *Pipeline) {
		for _, id := range ids {
			e := schema.Event{ID: id, Event: schema.EventInfo{Type: "create-secret"}, Actor: schema.Actor{Type: "user"}}
			if err := p.Record(context.Background(), "acme", e); err != nil {
				t.Fatal(err)
			}
		}
		flipPayloadByte(t, dir, 2)
	})
	h.flush(t)
	got, _ := stored(t, db.Conn, "acme")
	if got[ids[0]] != 1 || got[ids[1]] != 0 || got[ids[2]] != 1 {
		t.Fatalf("stored %v, want records 1 and 3", got)
	}
	entries := quarantineList(t, h)
	if len(entries) != 1 || !entries[0].Damaged || entries[0].LSN != 2 || !strings.Contains(entries[0].Reason, "checksum") {
		t.Fatalf("entries=%+v, want record 2, damaged", entries)
	}
	if resp := h.operator(t, "POST", "/v1/quarantine/"+entries[0].ID+"/replay"); resp.code != 409 {
		t.Fatalf("replay of a damaged record: %d %s, want 409", resp.code, resp.raw)
	}
	if n := counterValue(t, h.pipe.m.quarantinedRecords); n != 1 {
		t.Fatalf("auditstore_wal_quarantined_records_total=%v, want 1", n)
	}
}

// TestUnreadableRecordIsReported: a record whose header is damaged after
// the log was opened, with no record after it yet, cannot be delimited:
// readiness says why events wait. Once a record follows, the damaged one
// goes to the quarantine and the rest flows.
func TestUnreadableRecordIsReported(t *testing.T) {
	db := migrated(t)
	dir := t.TempDir()
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	h := newHarnessBeforeRun(t, db.Conn, dir, nil, func(p *Pipeline) {
		for _, id := range ids[:3] {
			e := schema.Event{ID: id, Event: schema.EventInfo{Type: "create-secret"}, Actor: schema.Actor{Type: "user"}}
			if err := p.Record(context.Background(), "acme", e); err != nil {
				t.Fatal(err)
			}
		}
		damageRecord(t, dir, 3, func(b []byte, off, _ int) { b[off+8] ^= 0x40 }) // its sequence number
	})
	for i := 0; !strings.Contains(strings.Join(h.pipe.Health(), "; "), "cannot be read back"); i++ {
		if i > 600 {
			t.Fatalf("health=%q, want the unreadable record named", h.pipe.Health())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp := h.post(t, "acme", mustJSON(t, event(3, ids[3], true)), nil); resp.code != 202 {
		t.Fatalf("post: %d %s", resp.code, resp.raw)
	}
	h.flush(t)
	got, _ := stored(t, db.Conn, "acme")
	if got[ids[0]] != 1 || got[ids[1]] != 1 || got[ids[2]] != 0 || got[ids[3]] != 1 {
		t.Fatalf("stored %v, want all but the damaged third", got)
	}
	if r := h.pipe.Health(); len(r) != 0 {
		t.Fatalf("health=%q after the damage was passed", r)
	}
	e := quarantineList(t, h)
	if len(e) != 1 || !e[0].Damaged || e[0].LSN != 3 {
		t.Fatalf("quarantine=%+v, want record 3, damaged", e)
	}
}

// flipPayloadByte damages the last payload byte of record lsn in the only
// segment of the log in dir.
func flipPayloadByte(t *testing.T, dir string, lsn uint64) {
	t.Helper()
	damageRecord(t, dir, lsn, func(b []byte, off, n int) { b[off+16+n-1] ^= 0xff })
}

// damageRecord lets damage change the bytes of the only segment of the
// log in dir, given the offset and payload length of record lsn.
func damageRecord(t *testing.T, dir string, lsn uint64, damage func(b []byte, off, n int)) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want 1", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for off+16 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if binary.LittleEndian.Uint64(b[off+8:]) == lsn {
			damage(b, off, n)
			f, err := os.OpenFile(segs[0], os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(b, 0); err != nil { // same size: in place, as the disk would
				t.Fatal(err)
			}
			return
		}
		off += 16 + n
	}
	t.Fatalf("record %d not found", lsn)
}

// TestBatchesAreBoundedByBytes: a batch is cut at BatchBytes as well as
// at BatchSize events.
func TestBatchesAreBoundedByBytes(t *testing.T) {
	db := migrated(t)
	h := newHarnessBeforeRun(t, db.Conn, t.TempDir(), func(c *Config) { c.BatchBytes = 1 }, func(p *Pipeline) {
		for i := 0; i < 3; i++ { // durable before Run: without the bound, one batch
			e := schema.Event{ID: uuid.NewString(), Event: schema.EventInfo{Type: "create-secret"}, Actor: schema.Actor{Type: "user"}}
			if err := p.Record(context.Background(), "acme", e); err != nil {
				t.Fatal(err)
			}
		}
	})
	h.flush(t)
	var m dto.Metric
	if err := h.pipe.m.batchSize.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetHistogram().GetSampleCount(); n != 3 {
		t.Fatalf("batches=%d, want 3 (one event each, past BatchBytes)", n)
	}
}

// TestConstraintViolationIsQuarantined: the same through ClickHouse alone:
// a CHECK constraint makes the server itself refuse the marked event
// (VIOLATED_CONSTRAINT), as an operator's constraint or a schema change
// could; the others are stored.
func TestConstraintViolationIsQuarantined(t *testing.T) {
	db := migrated(t)
	if err := db.Conn.Exec(context.Background(), "ALTER TABLE events ADD CONSTRAINT no_poison CHECK trace_id != 'poison'"); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, db.Conn, t.TempDir(), nil)
	good1, bad, good2 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	body := []map[string]any{event(0, good1, true), poisoned(1, bad), event(2, good2, true)}
	if resp := h.post(t, "acme", mustJSON(t, body), nil); resp.code != 202 {
		t.Fatalf("post: %d %s", resp.code, resp.raw)
	}
	h.flush(t)
	got, rows := stored(t, db.Conn, "acme")
	if got[good1] != 1 || got[good2] != 1 || got[bad] != 0 || rows != 2 {
		t.Fatalf("stored %v (rows %d), want the two good events", got, rows)
	}
	e := quarantineList(t, h)
	if len(e) != 1 || e[0].EventIDs[0] != bad || e[0].ClickHouseCode != 469 {
		t.Fatalf("quarantine=%+v, want the marked event refused with code 469", e)
	}
}
