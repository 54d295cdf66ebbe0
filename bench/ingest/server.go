package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

const adminToken = "bench-admin-token-0123456789"

type serverResult struct {
	acked, visible         time.Duration
	latencies              []time.Duration
	serverPeak, enginePeak int64
	failures               int64
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects the server's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// childPID returns the first child of pid (the embedded engine), or 0.
func childPID(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return 0
}

// rss returns the resident set of a process, in bytes.
func rss(pid int) int64 {
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

func call(base, method, path, token string, body any) (int, map[string]any) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
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

func measureServer(ctx context.Context, work string, bodies [][]byte, events, clients, orgs int) serverResult {
	bin := filepath.Join(work, "auditstore")
	log.Printf("building ./cmd/auditstore ...")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/auditstore").CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort())
	base := "http://" + listen
	tcp := freePort()
	cmd := exec.Command(bin, "serve", "-listen", listen, "-data", filepath.Join(work, "data"),
		"-admin-token", adminToken, "-engine-tcp-port", strconv.Itoa(tcp), "-log-level", "warn")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log.Fatalf("server not ready:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	engine := childPID(cmd.Process.Pid)
	keys := make([]string, orgs)
	for i := range keys {
		org := fmt.Sprintf("org-%03d", i)
		if code, body := call(base, "POST", "/v1/orgs", adminToken, map[string]string{"id": org, "plan": "pro"}); code != 201 {
			log.Fatalf("create org: %d %v", code, body)
		}
		code, body := call(base, "POST", "/v1/orgs/"+org+"/keys", adminToken, map[string]string{"role": "ingest", "name": "bench"})
		if code != 201 {
			log.Fatalf("create key: %d %v", code, body)
		}
		keys[i] = body["key"].(string)
	}

	var res serverResult
	stopSampling := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Add(1)
	go func() {
		defer samplerDone.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			res.serverPeak = max(res.serverPeak, rss(cmd.Process.Pid))
			if engine != 0 {
				res.enginePeak = max(res.enginePeak, rss(engine))
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", tcp)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	log.Printf("posting %d events from %d clients ...", events, clients)
	work2 := make(chan int, len(bodies))
	for i := range bodies {
		work2 <- i
	}
	close(work2)
	latencies := make([][]time.Duration, clients)
	var failures atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := range work2 {
				for {
					req, _ := http.NewRequest("POST", base+"/v1/events", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", "Bearer "+keys[i%len(keys)])
					req.Header.Set("Content-Type", "application/json")
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						log.Fatalf("post: %v", err)
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						latencies[c] = append(latencies[c], time.Since(t0))
						break
					}
					failures.Add(1)
					time.Sleep(100 * time.Millisecond) // 503 when the log is full: back off, resend
				}
			}
		}(c)
	}
	wg.Wait()
	res.acked = time.Since(start)
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE user_agent_type != 'api'").Scan(&n); err != nil {
			log.Fatal(err)
		}
		if n >= uint64(events) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.visible = time.Since(start)
	close(stopSampling)
	samplerDone.Wait()
	for _, l := range latencies {
		res.latencies = append(res.latencies, l...)
	}
	res.failures = failures.Load()
	return res
}
