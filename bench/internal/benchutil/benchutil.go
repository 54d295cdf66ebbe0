// Package benchutil holds what the benchmarks share: running the server
// binary, a private embedded engine, RSS sampling and the machine line.
package benchutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/engine"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/internal/servertest"
)

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Machine describes this machine for reports.
func Machine() string {
	return fmt.Sprintf("%d cores, %s memory, %s/%s", runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH)
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
		}
	}
	return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
}

// RSS returns the resident set of a process in bytes (0 if gone).
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// CPUTime returns the user + system CPU time a process (all its threads)
// has used so far, from /proc/PID/stat in clock ticks of 10 ms (Linux's
// USER_HZ on every architecture Go supports); 0 if it is gone.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces, inside
	// parentheses): state, ppid, ... utime (14th of the line) and stime.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// SelfCPU is this process's user + system CPU time so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Sampler records the peak RSS of a process until Stop.
type Sampler struct {
	peak int64
	stop chan struct{}
	done chan struct{}
}

// Sample starts sampling pid every 20ms.
func Sample(pid int) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			s.peak = max(s.peak, RSS(pid))
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak.
func (s *Sampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return s.peak
}

// Engine starts a private embedded engine in dir.
func Engine(ctx context.Context, dir string) *engine.Engine {
	cache, err := engine.DefaultCacheDir()
	if err != nil {
		log.Fatal(err)
	}
	lib, err := engine.Fetch(ctx, cache, nil)
	if err != nil {
		log.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Logger = lib, dir, slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := engine.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	return e
}

// OpenMigrated connects to cfg's database and applies the migrations,
// ending the program on failure.
func OpenMigrated(ctx context.Context, cfg chconn.Config) driver.Conn {
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := migrate.Run(ctx, conn, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		conn.Close()
		log.Fatal(err)
	}
	return conn
}

// Server is a running auditstore binary.
type Server struct {
	Base  string
	Admin string
	cmd   *exec.Cmd
	out   *servertest.SyncBuffer
}

// StartServer builds ./cmd/auditstore into work (run from the repository
// root) and starts it with args, waiting for /readyz.
func StartServer(work string, args ...string) *Server {
	bin := filepath.Join(work, "auditstore")
	if _, err := os.Stat(bin); err != nil {
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/auditstore").CombinedOutput(); err != nil {
			log.Fatalf("go build: %v\n%s", err, out)
		}
	}
	listen := fmt.Sprintf("127.0.0.1:%d", FreePort())
	s := &Server{Base: "http://" + listen, Admin: "bench-admin-token-0123456789", out: &servertest.SyncBuffer{}}
	s.cmd = exec.Command(bin, append([]string{"serve", "-listen", listen, "-admin-token", s.Admin}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		log.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(s.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			log.Fatalf("server not ready:\n%s", s.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// EnginePID is the embedded engine's process id (0 if none).
func (s *Server) EnginePID() int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", s.PID()))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return 0
}

// Stop interrupts the server and waits for it.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// Call makes a JSON API call and returns the status and decoded body.
func (s *Server) Call(method, path, token string, body any) (int, map[string]any) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.Base+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// OrgKey creates an org and a key of role for it and returns the key.
func (s *Server) OrgKey(org, plan, role string) string {
	if code, body := s.Call("POST", "/v1/orgs", s.Admin, map[string]string{"id": org, "plan": plan}); code != 201 && code != 409 {
		log.Fatalf("create org %s: %d %v", org, code, body)
	}
	code, body := s.Call("POST", "/v1/orgs/"+org+"/keys", s.Admin, map[string]string{"role": role, "name": "bench"})
	if code != 201 {
		log.Fatalf("create key: %d %v", code, body)
	}
	return body["key"].(string)
}

// LoadAverage is /proc/loadavg's first three fields (1, 5 and 15
// minutes): other work on the machine inflates the figures beside it.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
