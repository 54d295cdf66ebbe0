package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/servertest"
)

// engineConn connects to the embedded engine of a test server.
func engineConn(tb testing.TB, s *servertest.Server) driver.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", s.TCPPort)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func TestServeReadyStopRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	dir := t.TempDir()
	s := servertest.StartIn(t, dir)

	if code, _ := s.JSON(t, "GET", "/healthz", "", nil); code != http.StatusOK {
		t.Fatalf("healthz=%d, want 200", code)
	}
	code, body := s.JSON(t, "GET", "/readyz", servertest.AdminToken, nil)
	ch, _ := body["clickhouse"].(map[string]any)
	if ver, _ := ch["version"].(string); code != http.StatusOK || !strings.HasPrefix(ver, "26.") {
		t.Fatalf("readyz=%d %v, want 200 with a 26.x version", code, body)
	}
	if code, body = s.JSON(t, "GET", "/nope", "", nil); code != http.StatusNotFound || body["error"] == nil {
		t.Fatalf("unknown path=%d %v, want 404 in the error shape", code, body)
	}

	// Write a row through the engine, stop with Ctrl-C, restart: it is there.
	ctx := context.Background()
	if err := engineConn(t, s).Exec(ctx, "INSERT INTO events (org_id, timestamp, id, event_type, actor_type, received_at, expires_at) "+
		"VALUES ('acme', now64(3), generateUUIDv4(), 'create-secret', 'user', now64(3), now64(3) + INTERVAL 1 DAY)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Process().Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitExit(t, 60*time.Second); err != nil {
		t.Fatalf("exit after Ctrl-C: %v, want 0\n%s", err, s.Output())
	}
	s.WaitEngineGone(t)
	if !strings.Contains(s.Output(), "applied migration") {
		t.Fatalf("first start applied no migration:\n%s", s.Output())
	}

	s2 := servertest.StartIn(t, dir)
	if strings.Contains(s2.Output(), "applied migration") {
		t.Fatalf("restart re-applied migrations:\n%s", s2.Output())
	}
	var n uint64
	if err := engineConn(t, s2).QueryRow(ctx, "SELECT count() FROM events WHERE org_id = 'acme'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("rows after restart=%d, want 1", n)
	}
}

func TestKilledServerTakesEngineDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s := servertest.Start(t)
	if err := s.Process().Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.WaitExit(t, 10*time.Second)
	// The engine's stdin pipe closed with its parent: it shuts itself down.
	s.WaitEngineGone(t)
}

var enginePID = regexp.MustCompile(`embedded clickhouse ready.*pid=(\d+)`)

func TestEngineDeathIsReportedThenRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s := servertest.Start(t)
	m := enginePID.FindStringSubmatch(s.Output())
	if m == nil {
		t.Fatalf("no engine pid in the log:\n%s", s.Output())
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Until the server has reaped the engine, readyz may fail with the
		// refused connection; then it names the engine's death.
		code, body := s.JSON(t, "GET", "/readyz", servertest.AdminToken, nil)
		if code == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(body["reasons"]), "embedded clickhouse") {
			// Without the operator token: unavailable, and nothing more.
			if code, body := s.JSON(t, "GET", "/readyz", "", nil); code != http.StatusServiceUnavailable || len(body) != 1 {
				t.Fatalf("public readyz=%d %v, want 503 {\"status\":\"unavailable\"} only", code, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz=%d %v 30s after the engine died, want 503 naming the engine", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := s.JSON(t, "GET", "/healthz", "", nil); code != http.StatusOK {
		t.Fatalf("healthz=%d while the process lives, want 200", code)
	}
	if !strings.Contains(s.Output(), "embedded clickhouse died") {
		t.Fatalf("no log line about the engine's death:\n%s", s.Output())
	}
	// The supervisor starts it again on the same ports.
	for {
		if code, _ := s.JSON(t, "GET", "/readyz", "", nil); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not restarted 30s after it died:\n%s", s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.Output(), "embedded clickhouse restarted") {
		t.Fatalf("no log line about the restart:\n%s", s.Output())
	}
}
