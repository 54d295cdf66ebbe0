// Package servertest runs the real auditstore binary for end-to-end tests:
// built once per test binary, started on a free port with the embedded
// engine in a temporary directory, stopped when the test ends.
package servertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// AdminToken is the operator token every test server runs with.
const AdminToken = "servertest-admin-token-0123456789"

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds ./cmd/auditstore once and returns its path.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "auditstore-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "auditstore")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/auditstore")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binary
}

// FreePort returns a free port on 127.0.0.1.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers:
// it collects the log output of a process or of concurrent goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Server is a running auditstore.
type Server struct {
	Base    string
	TCPPort int // the embedded engine's native port; 0 with -clickhouse
	cmd     *exec.Cmd
	out     *SyncBuffer
	done    chan struct{}
	exitErr error
}

// Start runs `auditstore serve` on a new data directory with extra flags
// and waits for /readyz.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return StartIn(tb, tb.TempDir(), extra...)
}

// StartIn is Start on a given data directory (to restart on the same data).
func StartIn(tb testing.TB, dataDir string, extra ...string) *Server {
	tb.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
	s := &Server{Base: "http://" + listen, TCPPort: FreePort(tb), out: &SyncBuffer{}, done: make(chan struct{})}
	args := append([]string{"serve", "-listen", listen, "-data", dataDir, "-admin-token", AdminToken,
		"-flush-interval", "20ms", "-engine-tcp-port", fmt.Sprint(s.TCPPort)}, extra...)
	for _, a := range extra {
		if a == "-clickhouse" || strings.HasPrefix(a, "-clickhouse=") {
			s.TCPPort = 0 // an external ClickHouse: no engine of its own
		}
	}
	s.cmd = exec.Command(Binary(tb), args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.done) }()
	tb.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		s.WaitEngineGone(tb)
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(s.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-s.done:
			tb.Fatalf("server exited before ready:\n%s", s.out)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("server not ready after 2m:\n%s", s.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Process is the server's process (to signal it).
func (s *Server) Process() *os.Process { return s.cmd.Process }

// WaitExit waits up to d for the process to end and returns its error.
func (s *Server) WaitExit(tb testing.TB, d time.Duration) error {
	tb.Helper()
	select {
	case <-s.done:
		return s.exitErr
	case <-time.After(d):
		tb.Fatalf("server still running %s after the signal:\n%s", d, s.out)
		return nil
	}
}

// WaitEngineGone waits until nothing accepts on the engine's port (at
// once for a server on an external ClickHouse).
func (s *Server) WaitEngineGone(tb testing.TB) {
	tb.Helper()
	if s.TCPPort == 0 {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.TCPPort), time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			tb.Fatalf("engine still listening on %d 30s after its server ended", s.TCPPort)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output is what the server printed so far.
func (s *Server) Output() string { return s.out.String() }

// JSON sends a request like Do and decodes a JSON answer.
func (s *Server) JSON(tb testing.TB, method, path, token string, body any) (int, map[string]any) {
	tb.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			tb.Fatal(err)
		}
	}
	code, out := s.Do(tb, method, path, token, b)
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return code, m
}

// Do sends a request with a bearer token and returns the status and body.
func (s *Server) Do(tb testing.TB, method, path, token string, body []byte, header ...string) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, s.Base+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// Org creates an org on plan pro and returns a key of each role asked.
func (s *Server) Org(tb testing.TB, org string, roles ...string) map[string]string {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"id": org, "plan": "pro"})
	if code, out := s.Do(tb, "POST", "/v1/orgs", AdminToken, b); code != 201 {
		tb.Fatalf("create org %s: %d %s", org, code, out)
	}
	keys := map[string]string{}
	for _, role := range roles {
		b, _ := json.Marshal(map[string]string{"role": role, "name": role})
		code, out := s.Do(tb, "POST", "/v1/orgs/"+org+"/keys", AdminToken, b)
		if code != 201 {
			tb.Fatalf("create %s key: %d %s", role, code, out)
		}
		var k struct{ Key string }
		if err := json.Unmarshal(out, &k); err != nil {
			tb.Fatal(err)
		}
		keys[role] = k.Key
	}
	return keys
}

// Ingest posts NDJSON with an ingest key and fails the test unless 202.
func (s *Server) Ingest(tb testing.TB, key string, ndjson []byte) {
	tb.Helper()
	code, out := s.Do(tb, "POST", "/v1/events", key, ndjson, "Content-Type", "application/x-ndjson")
	if code != 202 {
		tb.Fatalf("ingest: %d %s", code, out)
	}
}

// WaitTotal waits until GET /v1/events?query reports total n.
func (s *Server) WaitTotal(tb testing.TB, key, query string, n int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out := s.Do(tb, "GET", "/v1/events?limit=1&"+query, key, nil)
		var p struct{ Total int }
		_ = json.Unmarshal(out, &p)
		if code == 200 && p.Total == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("total for %q: %d (%d %s), want %d", query, p.Total, code, out, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
