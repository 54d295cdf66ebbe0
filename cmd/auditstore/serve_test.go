package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// mustBinary builds the auditstore binary once per test run.
func mustBinary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "auditstore-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "auditstore")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binPath
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type server struct {
	cmd      *exec.Cmd
	out      *syncBuffer
	base     string
	tcpPort  int
	exited   chan struct{}
	exitErr  error
	dataDir  string
	httpPort int
}

// startServer runs `auditstore serve` on the embedded engine in dataDir and
// waits for /readyz.
func startServer(tb testing.TB, dataDir string, extra ...string) *server {
	tb.Helper()
	s := &server{out: &syncBuffer{}, dataDir: dataDir, tcpPort: freePort(tb), httpPort: freePort(tb), exited: make(chan struct{})}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	s.base = "http://" + listen
	s.cmd = exec.Command(mustBinary(tb), "serve", "-listen", listen, "-data", dataDir,
		"-engine-tcp-port", strconv.Itoa(s.tcpPort), "-engine-http-port", strconv.Itoa(s.httpPort))
	s.cmd.Args = append(s.cmd.Args, extra...)
	s.cmd.Env = os.Environ()
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	tb.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		waitPortClosed(tb, s.tcpPort)
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code, _ := s.get(tb, "/readyz"); code == http.StatusOK {
			return s
		}
		select {
		case <-s.exited:
			tb.Fatalf("server exited before ready: %v\n%s", s.exitErr, s.out)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("server not ready after 2m:\n%s", s.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) get(tb testing.TB, path string) (int, map[string]any) {
	tb.Helper()
	resp, err := http.Get(s.base + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (s *server) waitExit(tb testing.TB, within time.Duration) {
	tb.Helper()
	select {
	case <-s.exited:
	case <-time.After(within):
		tb.Fatalf("server still running %s after the signal:\n%s", within, s.out)
	}
}

// waitPortClosed waits until nothing accepts on 127.0.0.1:port.
func waitPortClosed(tb testing.TB, port int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			tb.Fatalf("engine still listening on %d 30s after its server ended", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServeReadyStopRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	dir := t.TempDir()
	s := startServer(t, dir)

	code, body := s.get(t, "/healthz")
	if code != http.StatusOK {
		t.Fatalf("healthz=%d, want 200", code)
	}
	code, body = s.get(t, "/readyz")
	ch, _ := body["clickhouse"].(map[string]any)
	if ver, _ := ch["version"].(string); code != http.StatusOK || !strings.HasPrefix(ver, "26.") {
		t.Fatalf("readyz=%d %v, want 200 with a 26.x version", code, body)
	}
	if code, body = s.get(t, "/nope"); code != http.StatusNotFound || body["error"] == nil {
		t.Fatalf("unknown path=%d %v, want 404 in the error shape", code, body)
	}

	// Write a row through the engine, stop with Ctrl-C, restart: it is there.
	ctx := context.Background()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", s.tcpPort)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "INSERT INTO events (org_id, timestamp, id, event_type, actor_type, received_at, expires_at) "+
		"VALUES ('acme', now64(3), generateUUIDv4(), 'create-secret', 'user', now64(3), now64(3) + INTERVAL 1 DAY)"); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	s.waitExit(t, 60*time.Second)
	if s.exitErr != nil {
		t.Fatalf("exit after Ctrl-C: %v, want 0\n%s", s.exitErr, s.out)
	}
	waitPortClosed(t, s.tcpPort)
	if !strings.Contains(s.out.String(), "applied migration") {
		t.Fatalf("first start applied no migration:\n%s", s.out)
	}

	s2 := startServer(t, dir)
	if strings.Contains(s2.out.String(), "applied migration") {
		t.Fatalf("restart re-applied migrations:\n%s", s2.out)
	}
	conn, err = clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", s2.tcpPort)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE org_id = 'acme'").Scan(&n); err != nil {
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
	s := startServer(t, t.TempDir())
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.waitExit(t, 10*time.Second)
	// The engine's stdin pipe closed with its parent: it shuts itself down.
	waitPortClosed(t, s.tcpPort)
}

var enginePID = regexp.MustCompile(`embedded clickhouse ready.*pid=(\d+)`)

func TestEngineDeathIsReportedThenRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s := startServer(t, t.TempDir())
	m := enginePID.FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no engine pid in the log:\n%s", s.out)
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Until the server has reaped the engine, readyz may fail with the
		// refused connection; then it names the engine's death.
		code, body := s.get(t, "/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(body["reasons"]), "embedded clickhouse") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz=%d %v 30s after the engine died, want 503 naming the engine", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := s.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz=%d while the process lives, want 200", code)
	}
	if !strings.Contains(s.out.String(), "embedded clickhouse died") {
		t.Fatalf("no log line about the engine's death:\n%s", s.out)
	}
	// The supervisor starts it again on the same ports.
	for {
		if code, _ := s.get(t, "/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not restarted 30s after it died:\n%s", s.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.out.String(), "embedded clickhouse restarted") {
		t.Fatalf("no log line about the restart:\n%s", s.out)
	}
}
