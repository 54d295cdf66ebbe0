package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/servertest"
)

// TestKilledServerLosesNothing posts from concurrent clients, kills the
// server with SIGKILL mid-stream, restarts it on the same data directory and
// finds every acknowledged event exactly once.
func TestKilledServerLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	dir := t.TempDir()
	s := servertest.StartIn(t, dir, "-flush-interval", "50ms")
	key := s.Org(t, "acme", "ingest")["ingest"]

	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				ids := make([]string, 100)
				var body strings.Builder
				for j := range ids {
					ids[j] = uuid.NewString()
					ts := ""
					if j%2 == 0 {
						ts = fmt.Sprintf(`"timestamp":%q,`, time.Now().UTC().Format(time.RFC3339Nano))
					}
					fmt.Fprintf(&body, `{"id":%q,%s"event":{"type":"user.login","metadata":{"i":%d}},"actor":{"type":"user","metadata":{"userId":"u%d"}}}`+"\n", ids[j], ts, i, c)
				}
				req, _ := http.NewRequest("POST", s.Base+"/v1/events", strings.NewReader(body.String()))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue // the server is gone: not acknowledged
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					mu.Unlock()
				}
			}
		}(c)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for count() < 5000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Process().Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.WaitExit(t, 10*time.Second)
	close(stop)
	wg.Wait()
	s.WaitEngineGone(t)
	t.Logf("acknowledged %d events before SIGKILL", len(acked))

	s2 := servertest.StartIn(t, dir)
	conn := engineConn(t, s2)
	found := map[string]int{}
	var rows int
	waitUntil := time.Now().Add(60 * time.Second)
	for {
		found, rows = map[string]int{}, 0
		r, err := conn.Query(context.Background(),
			"SELECT toString(id) FROM events FINAL WHERE org_id = 'acme' AND event_type = 'user.login' AND expires_at > now64(3)")
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var id string
			if err := r.Scan(&id); err != nil {
				t.Fatal(err)
			}
			found[id]++
			rows++
		}
		r.Close()
		missing := 0
		for id := range acked {
			if found[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(waitUntil) {
			t.Fatalf("%d of %d acknowledged events missing 60s after the restart", missing, len(acked))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for id := range acked {
		if found[id] != 1 {
			t.Fatalf("event %s present %d times, want 1", id, found[id])
		}
	}
	if rows != len(found) {
		t.Fatalf("%d rows for %d ids: duplicates visible", rows, len(found))
	}

	code, out := s2.Do(t, "GET", "/metrics", servertest.AdminToken, nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics with the operator token: %d", code)
	}
	metrics := bytes.NewBuffer(out)
	for _, name := range []string{"auditstore_ingest_events_accepted_total", "auditstore_ingest_events_rejected_total",
		"auditstore_ingest_request_duration_seconds", "auditstore_wal_bytes", "auditstore_wal_segments",
		"auditstore_ingest_batch_events", "auditstore_ingest_flush_duration_seconds",
		"auditstore_ingest_insert_errors_total", "auditstore_ingest_events_pending",
		`auditstore_query_hours_reused_total{counts="filtered"}`, `auditstore_query_hours_counted_total{counts="whole"}`,
		`auditstore_query_hour_counts_kept{counts="whole"}`, `auditstore_query_hours_counted_total{counts="event_types"}`,
		"auditstore_query_day_groups_counted_total"} {
		if !strings.Contains(metrics.String(), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
