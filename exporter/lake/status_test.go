package lake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/internal/testkit"
)

func gauge(tb testing.TB, reg *prometheus.Registry, name, dest string) float64 {
	tb.Helper()
	return testkit.Metric(tb, reg, name, "destination", dest)
}

// Events waiting for their file show as lag in the status and metrics; a
// shorter interval set by PATCH delivers them at once.
func TestStatusLagAndMetrics(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	reg := prometheus.NewRegistry()
	h := newHarness(t, db, "node-a", nil)
	h.stop()
	h.reg = reg
	h.start(t, nil)
	target := s3Target(s3, "lag")
	target["every"] = "1h"
	id := h.mustCreate(t, "acme", map[string]any{"name": "lake", "target": target})
	now := time.Now().UTC()
	h.insert(t, time.Now(), events("acme", 15, now, 1), true)
	eventually(t, 30*time.Second, "the lag in the status", func() bool {
		_, out, _ := h.do(t, "acme", "GET", "/v1/lake/destinations/"+id, nil)
		st := out["status"].(map[string]any)
		return st["lagEvents"].(float64) == 15 && st["lagSeconds"].(float64) > 0 && st["files"].(float64) == 0
	})
	if v := gauge(t, reg, "auditstore_lake_lag_events", id); v != 15 {
		t.Fatalf("lag metric %v, want 15", v)
	}
	target["every"] = "100ms"
	target["s3"].(map[string]any)["accessKeyId"] = "****0001"
	target["s3"].(map[string]any)["secretAccessKey"] = "********"
	if code, _, raw := h.do(t, "acme", "PATCH", "/v1/lake/destinations/"+id, map[string]any{"target": target}); code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, raw)
	}
	eventually(t, 60*time.Second, "the delivery", func() bool { _, n := manifestFiles(t, filepath.Join(s3.dir, "lake", "lag")); return n == 15 })
	eventually(t, 30*time.Second, "no lag", func() bool {
		_, out, _ := h.do(t, "acme", "GET", "/v1/lake/destinations/"+id, nil)
		st := out["status"].(map[string]any)
		return st["lagEvents"].(float64) == 0 && st["rows"].(float64) == 15 && st["state"] == "active"
	})
	if v := gauge(t, reg, "auditstore_lake_rows_total", id); v != 15 {
		t.Fatalf("rows metric %v, want 15", v)
	}
}

// Files are closed by size: with an interval of an hour, a backlog larger
// than fileBytes is delivered at once in files of about fileBytes, and the
// remainder waits for the interval (here shortened by PATCH).
func TestFilesClosedBySize(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	h := newHarness(t, db, "node-a", nil)
	target := s3Target(s3, "size")
	target["every"], target["fileBytes"] = "1h", 1<<20
	id := h.mustCreate(t, "acme", map[string]any{"name": "lake", "target": target})
	// Yesterday's noon: the events (up to ~3 h before it) stay in one
	// day's partition whatever the time of day the test runs.
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(-12 * time.Hour)
	var ids []string
	for i := 0; i < 4; i++ {
		evs := events("acme", 10000, now, 1)
		for j := range evs { // ~100 incompressible bytes each
			pad := make([]byte, 50)
			_, _ = rand.Read(pad)
			evs[j].Event.Metadata, _ = json.Marshal(map[string]any{"n": j, "pad": hex.EncodeToString(pad)})
		}
		ids = append(ids, h.insert(t, time.Now(), evs, true)...)
	}
	root := filepath.Join(s3.dir, "lake", "size")
	var last uint64
	stable := 0
	eventually(t, 120*time.Second, "the size-closed files", func() bool {
		_, n := manifestFiles(t, root)
		if n > 0 && n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
		return stable >= 20 // unchanged for a second
	})
	if last == 0 || last >= 40000 {
		t.Fatalf("delivered %d of 40000 before the interval, want full files only", last)
	}
	for _, m := range manifests(t, root) {
		if len(m.Files) < 2 {
			t.Fatalf("%d file(s) for %d rows: not closed by size", len(m.Files), m.Rows)
		}
		for _, f := range m.Files[1:] { // the first is sized by a guessed row size, the next by the measured one
			if f.Bytes > 2<<20 || f.Bytes < 1<<19 {
				t.Fatalf("file %s has %d bytes, want about 1 MiB", f.Name, f.Bytes)
			}
		}
	}
	target["every"] = "100ms"
	target["s3"].(map[string]any)["accessKeyId"] = "****0001"
	target["s3"].(map[string]any)["secretAccessKey"] = "********"
	if code, _, raw := h.do(t, "acme", "PATCH", "/v1/lake/destinations/"+id, map[string]any{"target": target}); code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, raw)
	}
	eventually(t, 60*time.Second, "the remainder", func() bool { _, n := manifestFiles(t, root); return n == 40000 })
	deliveredOnce(t, root, ids)
}
