package exporter

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// stallingClient reads through a connection with a small receive buffer,
// so that a download it stops reading fills the buffers quickly.
func stallingClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// TestStalledExportIsEnded: a client that stops reading an export is cut
// after WriteTimeout without progress, and the export's ClickHouse query
// stops (it leaves system.processes).
func TestStalledExportIsEnded(t *testing.T) {
	e := newEnv(t)
	e.x.cfg.WriteTimeout = 2 * time.Second
	err := e.db.Conn.Exec(context.Background(), `INSERT INTO events (org_id, timestamp, id, event_type, event_metadata, actor_type, received_at, expires_at)
		SELECT 'acme', now64(3) - number, generateUUIDv4(), 'bulk', repeat('x', 200), 'user', now64(3), now64(3) + INTERVAL 1 DAY
		FROM numbers(2000000)`)
	if err != nil {
		t.Fatal(err)
	}
	client := stallingClient()
	for _, format := range []string{"csv", "parquet", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/v1/export?format="+format, nil)
			req.Header.Set("X-Test-Org", "acme")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			// The client stops reading, but keeps the connection open.
			stalled := time.Now()
			id := e.runningExport(t)
			if id == "" {
				t.Fatal("no export query running while the client stalls")
			}
			deadline := stalled.Add(e.x.cfg.WriteTimeout + 30*time.Second)
			for {
				running, err := e.x.ch.running(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if !running {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("query %s still running %s after the client stalled", id, time.Since(stalled))
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s: query gone %s after the client stopped reading (write timeout %s)",
				format, time.Since(stalled).Round(100*time.Millisecond), e.x.cfg.WriteTimeout)
			// What the client gets is a broken download, never a clean end.
			if _, err := io.Copy(io.Discard, resp.Body); err == nil {
				t.Fatal("the cut download ended cleanly")
			}
		})
	}
}
