package ingest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/auditstore/auditstore/schema"
)

// TestTwoNodesAndAWipedLogKeepEveryEvent: the insert deduplication token
// names the node and its log's epoch, so two nodes on one database, and a
// node whose data directory was wiped, never discard each other's batches
// as retries.
func TestTwoNodesAndAWipedLogKeepEveryEvent(t *testing.T) {
	db := migrated(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	named := func(c *Config) { c.NodeID = "node-a" } // the same name before and after the wipe
	a := newHarness(t, db.Conn, dirA, named)
	b := newHarness(t, db.Conn, dirB, nil)
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	for i, h := range []*harness{a, b} {
		if resp := h.post(t, "acme", mustJSON(t, event(i, ids[i], true)), nil); resp.code != 202 {
			t.Fatalf("node %d: %d %s", i, resp.code, resp.raw)
		}
		h.flush(t)
	}
	tokenBefore := a.pipe.token(1, 1)
	a.stop()
	a = newHarness(t, db.Conn, dirA, named)
	if got := a.pipe.token(1, 1); got != tokenBefore {
		t.Fatalf("token after a restart on the same log=%q, want %q (a replayed batch must keep its token)", got, tokenBefore)
	}
	a.stop()
	if err := os.RemoveAll(dirA); err != nil {
		t.Fatal(err)
	}
	a = newHarness(t, db.Conn, dirA, named)
	if got := a.pipe.token(1, 1); got == tokenBefore {
		t.Fatalf("token after a wipe=%q, the same as before it", got)
	}
	if resp := a.post(t, "acme", mustJSON(t, event(2, ids[2], true)), nil); resp.code != 202 {
		t.Fatalf("after the wipe: %d %s", resp.code, resp.raw)
	}
	a.flush(t)
	got, rows := stored(t, db.Conn, "acme")
	for i, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %d (%s) stored %d times, want 1", i, id, got[id])
		}
	}
	if rows != 3 {
		t.Errorf("rows=%d, want 3", rows)
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory (root only;
// the test is skipped where mounting is not allowed).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// bigEvent is an event of about 30 KiB: more than the slack of a page.
func bigEvent(i int, id string) map[string]any {
	e := event(i, id, true)
	blob := strings.Repeat("z", 10<<10)
	e["event"] = map[string]any{"type": "create-secret", "metadata": map[string]any{"a": blob, "b": blob, "c": blob}}
	return e
}

// TestFullDiskAnswers503AndHeals: while the disk under the write-ahead log
// is full, ingest answers 503 wal_unavailable with Retry-After, readiness
// names the fault and a metric counts it; once space is back the log takes
// events again without a restart, and the refused events never appear.
func TestFullDiskAnswers503AndHeals(t *testing.T) {
	dir := mountTmpfs(t, 1<<20)
	db := migrated(t)
	h := newHarness(t, db.Conn, filepath.Join(dir, "wal"), func(c *Config) {
		c.WAL.SegmentBytes = 64 << 10
		c.WAL.MaxBytes = 64 << 20 // beyond the disk: the disk fills first
	})
	before, refused, after := uuid.NewString(), uuid.NewString(), uuid.NewString()
	if resp := h.post(t, "acme", mustJSON(t, bigEvent(0, before)), nil); resp.code != 202 {
		t.Fatalf("before: %d %s", resp.code, resp.raw)
	}
	h.flush(t)
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	for i := 0; i < 3; i++ {
		resp := h.post(t, "acme", mustJSON(t, bigEvent(1, refused)), nil)
		if resp.code != 503 || errCode(resp) != "wal_unavailable" || resp.header.Get("Retry-After") == "" {
			t.Fatalf("disk full, post %d: %d %s (Retry-After %q), want 503 wal_unavailable with Retry-After",
				i, resp.code, resp.raw, resp.header.Get("Retry-After"))
		}
	}
	for _, when := range []string{"at once", "after an idle probe"} {
		if reasons := strings.Join(h.pipe.Health(), "; "); !strings.Contains(reasons, "write-ahead log cannot write") ||
			!strings.Contains(reasons, "no space left") {
			t.Fatalf("health while the disk is full, %s: %q", when, reasons)
		}
		time.Sleep(1500 * time.Millisecond) // the log probes the disk each second while idle
	}
	if n := counterValue(t, h.pipe.m.walFaults); n < 3 {
		t.Fatalf("auditstore_wal_write_errors_total=%v, want >= 3", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if resp := h.post(t, "acme", mustJSON(t, bigEvent(2, after)), nil); resp.code != 202 {
		t.Fatalf("space back: %d %s, want 202 without a restart", resp.code, resp.raw)
	}
	if reasons := h.pipe.Health(); len(reasons) != 0 {
		t.Fatalf("health after recovery: %q", reasons)
	}
	h.flush(t)
	h.stop() // and replay whatever the log holds: the refused event must not be in it
	h = newHarness(t, db.Conn, filepath.Join(dir, "wal"), nil)
	h.flush(t)
	got, rows := stored(t, db.Conn, "acme")
	if got[before] != 1 || got[after] != 1 || got[refused] != 0 || rows != 2 {
		t.Fatalf("stored %v (rows %d), want before and after once, the refused event never", got, rows)
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestDamagedLogKeepsLaterEvents: damage in the middle of the log found
// when it is opened costs only the damaged record: the events after it are
// inserted, and the damage is reported (degraded) and counted.
func TestDamagedLogKeepsLaterEvents(t *testing.T) {
	db := migrated(t)
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.WAL.Dir, cfg.WAL.Logger = dir, quiet()
	p, err := Open(db.Conn, fixedPlans{proPlan}, cfg, quiet(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	for _, id := range ids {
		e := schema.Event{ID: id, Event: schema.EventInfo{Type: "create-secret"}, Actor: schema.Actor{Type: "user"}}
		if err := p.Record(context.Background(), "acme", e); err != nil {
			t.Fatal(err)
		}
	}
	p.Close() // acknowledged, not yet in ClickHouse
	flipPayloadByte(t, dir, 2)
	h := newHarness(t, db.Conn, dir, nil)
	h.flush(t)
	got, _ := stored(t, db.Conn, "acme")
	if got[ids[0]] != 1 || got[ids[1]] != 0 || got[ids[2]] != 1 {
		t.Fatalf("stored %v, want the events of records 1 and 3", got)
	}
	if d := strings.Join(h.pipe.Degraded(), "; "); !strings.Contains(d, "was damaged") || !strings.Contains(d, "1 lost (2-2)") {
		t.Fatalf("degraded=%q, want the damage reported", d)
	}
	if r := h.pipe.Health(); len(r) != 0 {
		t.Fatalf("health=%q, want none (the node serves)", r)
	}
	if n := counterValue(t, h.pipe.m.walLost); n != 1 {
		t.Fatalf("auditstore_wal_lost_records_total=%v, want 1", n)
	}
}
