package ingest

import (
	"os"
	"testing"

	"github.com/google/uuid"
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
