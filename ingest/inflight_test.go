package ingest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// rawCounts returns, for org, the rows of events and of events_by_key as
// stored, without FINAL (a row written twice shows twice until a merge),
// per event id.
func rawCounts(tb testing.TB, conn driver.Conn, org string) (events, byKey map[string]uint64) {
	tb.Helper()
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"org": org}))
	count := func(q string) map[string]uint64 {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			tb.Fatal(err)
		}
		defer rows.Close()
		out := map[string]uint64{}
		for rows.Next() {
			var id string
			var n uint64
			if err := rows.Scan(&id, &n); err != nil {
				tb.Fatal(err)
			}
			out[id] = n
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		return out
	}
	return count("SELECT toString(id), count() FROM events WHERE org_id = {org:String} GROUP BY id"),
		count("SELECT toString(id), count() FROM events_by_key WHERE org_id = {org:String} GROUP BY id")
}

// stopMerges keeps ClickHouse from folding rows written twice before the
// test counts them.
func stopMerges(tb testing.TB, conn driver.Conn) {
	tb.Helper()
	for _, table := range []string{"events", "events_by_key"} {
		if err := conn.Exec(context.Background(), "SYSTEM STOP MERGES "+table); err != nil {
			tb.Fatal(err)
		}
	}
}

// crashOn returns a crashAfter hook that stops the pipeline after the
// first confirmed INSERT whose token ends with suffix, and a channel
// closed then.
func crashOn(suffix string) (func(string) bool, <-chan struct{}) {
	crashed := make(chan struct{})
	done := false
	return func(token string) bool {
		if done || !strings.HasSuffix(token, suffix) {
			return false
		}
		done = true
		close(crashed)
		return true
	}, crashed
}

func waitCrash(tb testing.TB, crashed <-chan struct{}) {
	tb.Helper()
	select {
	case <-crashed:
	case <-time.After(time.Minute):
		tb.Fatal("the batch was not inserted within a minute")
	}
}

// assertOnce checks that each id is stored exactly once in events, with
// one row per key in events_by_key (resource and actor), and others never.
func assertOnce(tb testing.TB, conn driver.Conn, org string, once, never []string) {
	tb.Helper()
	events, byKey := rawCounts(tb, conn, org)
	for _, id := range once {
		if events[id] != 1 || byKey[id] != 2 {
			tb.Errorf("event %s: %d rows in events, %d in events_by_key; want 1 and 2 (raw, without FINAL)", id, events[id], byKey[id])
		}
	}
	for _, id := range never {
		if events[id] != 0 || byKey[id] != 0 {
			tb.Errorf("event %s: %d rows in events, %d in events_by_key; want none", id, events[id], byKey[id])
		}
	}
	if len(events) != len(once) {
		tb.Errorf("events holds %d ids, want %d", len(events), len(once))
	}
}

// TestCrashAfterInsertReplaysTheSameBatch: the server stops (as if killed)
// after ClickHouse confirmed a batch and before the log was committed; at
// the next start, with more records waiting and batching that would now
// put them all in one batch, the replay sends first exactly the batch in
// flight, with its token: ClickHouse deduplicates it, and every event is
// stored once on disk, in events and in events_by_key.
func TestCrashAfterInsertReplaysTheSameBatch(t *testing.T) {
	db := migrated(t)
	stopMerges(t, db.Conn)
	dir := t.TempDir()
	hook, crashed := crashOn("-1-1")
	h := newHarnessBeforeRun(t, db.Conn, dir, nil, func(p *Pipeline) { p.crashAfter = hook })
	var ids []string
	post := func(h *harness, n int) {
		var batch []map[string]any
		for i := 0; i < n; i++ {
			ids = append(ids, uuid.NewString())
			batch = append(batch, event(len(ids), ids[len(ids)-1], true))
		}
		if resp := h.post(t, "acme", mustJSON(t, batch), nil); resp.code != 202 {
			t.Fatalf("post: %d %s", resp.code, resp.raw)
		}
	}
	post(h, 3) // record 1: inserted, then the crash
	waitCrash(t, crashed)
	post(h, 2) // record 2: acknowledged after the crash, not inserted
	h.stop()
	if got := h.pipe.wal.Committed(); got != 0 {
		t.Fatalf("committed=%d after the crash, want 0", got)
	}
	if events, _ := rawCounts(t, db.Conn, "acme"); len(events) != 3 {
		t.Fatalf("events stored before the restart: %d, want the 3 of the batch in flight", len(events))
	}

	h = newHarness(t, db.Conn, dir, func(c *Config) { c.FlushInterval = time.Second })
	h.flush(t)
	assertOnce(t, db.Conn, "acme", ids, nil)
	if got := h.pipe.wal.Committed(); got != 2 {
		t.Fatalf("committed=%d, want 2", got)
	}
}

// TestCrashInBisectionReplaysTheSamePath: the server stops in the middle
// of a bisection (ClickHouse refused the batch for one event; some halves
// are stored, the event is in the quarantine), and the cause of the
// refusal is lifted before the next start. The replay follows the recorded
// path instead of sending the batch whole again (which ClickHouse would
// now take, storing the halves a second time): every good event is stored
// once, the refused one stays only in the quarantine.
func TestCrashInBisectionReplaysTheSamePath(t *testing.T) {
	db := migrated(t)
	stopMerges(t, db.Conn)
	ctx := context.Background()
	if err := db.Conn.Exec(ctx, "ALTER TABLE events ADD CONSTRAINT no_poison CHECK trace_id != 'poison'"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// One record: [good, poison] [good, good]. The whole and its first half
	// are refused and split; "aa" is stored, "ab" quarantined, then "b" is
	// stored and the server stops.
	hook, crashed := crashOn("-1-1b")
	h := newHarnessBeforeRun(t, db.Conn, dir, nil, func(p *Pipeline) { p.crashAfter = hook })
	good := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	bad := uuid.NewString()
	body := []map[string]any{event(0, good[0], true), poisoned(1, bad), event(2, good[1], true), event(3, good[2], true)}
	if resp := h.post(t, "acme", mustJSON(t, body), nil); resp.code != 202 {
		t.Fatalf("post: %d %s", resp.code, resp.raw)
	}
	waitCrash(t, crashed)
	h.stop()
	if e := quarantineList(t, h); len(e) != 1 || e[0].EventIDs[0] != bad {
		t.Fatalf("quarantine before the restart: %+v, want the refused event", e)
	}

	if err := db.Conn.Exec(ctx, "ALTER TABLE events DROP CONSTRAINT no_poison"); err != nil {
		t.Fatal(err)
	}
	h = newHarness(t, db.Conn, dir, nil)
	h.flush(t)
	assertOnce(t, db.Conn, "acme", good, []string{bad})
	if e := quarantineList(t, h); len(e) != 1 || e[0].EventIDs[0] != bad {
		t.Fatalf("quarantine after the replay: %+v, want the refused event alone", e)
	}
}

// TestLostCheckpointIsRecoveredFromTheBatchInFlight: the commit of a batch
// did not reach the disk (a failed checkpoint write), then the next batch
// was in flight when the server stopped. The recorded batch shows that the
// records before it were confirmed: the next start commits them instead of
// replaying them in batches cut differently, then replays the batch in
// flight with its token: every event is stored once on disk.
func TestLostCheckpointIsRecoveredFromTheBatchInFlight(t *testing.T) {
	db := migrated(t)
	stopMerges(t, db.Conn)
	dir := t.TempDir()
	hook, crashed := crashOn("-2-2")
	h := newHarnessBeforeRun(t, db.Conn, dir, nil, func(p *Pipeline) { p.crashAfter = hook })
	var ids []string
	for i := 0; i < 2; i++ {
		var batch []map[string]any
		for j := 0; j < 3; j++ {
			ids = append(ids, uuid.NewString())
			batch = append(batch, event(len(ids), ids[len(ids)-1], true))
		}
		if resp := h.post(t, "acme", mustJSON(t, batch), nil); resp.code != 202 {
			t.Fatalf("post: %d %s", resp.code, resp.raw)
		}
		if i == 0 {
			h.flush(t) // record 1 committed
		}
	}
	waitCrash(t, crashed) // record 2 inserted, not committed
	h.stop()
	if err := os.WriteFile(filepath.Join(dir, "checkpoint"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err) // the commit of record 1 lost
	}

	h = newHarness(t, db.Conn, dir, func(c *Config) { c.FlushInterval = time.Second })
	h.flush(t)
	assertOnce(t, db.Conn, "acme", ids, nil)
	if got := h.pipe.wal.Committed(); got != 2 {
		t.Fatalf("committed=%d, want 2", got)
	}
}
