package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/client"
	"github.com/auditstore/auditstore/internal/servertest"
)

// loadEvents is how many events TestSendExactlyOnce sends: the issue's
// 1,000,000 with AUDITSTORE_CLIENT_EVENTS=1000000, a CI-sized run by default.
func loadEvents(tb testing.TB) int {
	n := 60_000
	if v := os.Getenv("AUDITSTORE_CLIENT_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			tb.Fatalf("AUDITSTORE_CLIENT_EVENTS=%q: want a number of at least 1000", v)
		}
	}
	return n
}

// TestSendExactlyOnce sends events through Send from several goroutines
// while the server is restarted twice (once gracefully, once with SIGKILL)
// and its ClickHouse is stopped for a while; every event arrives exactly
// once, counted in ClickHouse and read through the API.
func TestSendExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	n := loadEvents(t)
	const senders, perCall = 4, 100
	dir := t.TempDir()
	s := servertest.StartIn(t, dir)
	keys := org(t, s, "acme")
	px := newProxy(t)
	px.point(s.Base)

	var retries, delivered atomic.Int64
	p, err := newClient(t, px.URL, keys["ingest"]).NewProducer(client.ProducerConfig{
		Compression: client.Zstd, QueueEvents: 5000, MaxBackoff: 2 * time.Second,
		Hooks: client.Hooks{
			Retry:     func(int, time.Duration, error) { retries.Add(1) },
			Delivered: func(n, _ int, _ time.Duration) { delivered.Add(int64(n)) },
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Three disruptions, each begun when a share of the events was handed
	// over; the senders wait at that point until it has begun, then go on
	// sending through it.
	thresholds := []int64{int64(n) * 2 / 10, int64(n) * 45 / 100, int64(n) * 7 / 10}
	gates := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	var wg sync.WaitGroup
	var sent atomic.Int64
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := g * perCall; start < n; start += senders * perCall {
				for k, th := range thresholds {
					if sent.Load() >= th {
						<-gates[k]
					}
				}
				evs := make([]client.Event, 0, perCall)
				for seq := start; seq < min(start+perCall, n); seq++ {
					e := sample("load.test", seq)
					e.Action.Metadata = map[string]any{"seq": seq}
					evs = append(evs, e)
				}
				if err := p.Send(ctx, evs...); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
				sent.Add(int64(len(evs)))
			}
		}()
	}
	reach := func(k int) {
		for sent.Load() < thresholds[k] {
			time.Sleep(5 * time.Millisecond)
		}
	}
	restart := func(k int, kill bool) {
		reach(k)
		t.Logf("restart %d (kill=%v) at %d handed over, %d acknowledged", k, kill, sent.Load(), delivered.Load())
		close(gates[k])
		time.Sleep(100 * time.Millisecond) // requests in flight when it goes
		if kill {
			_ = s.Process().Kill()
		} else {
			_ = s.Process().Signal(os.Interrupt)
		}
		_ = s.WaitExit(t, 2*time.Minute)
		s.WaitEngineGone(t)
		s = servertest.StartIn(t, dir)
		px.point(s.Base)
	}
	restart(0, false)
	reach(1)
	engines := childPIDs(t, s.Process().Pid)
	t.Logf("ClickHouse (pid %v) stopped for 5s at %d handed over, %d acknowledged", engines, sent.Load(), delivered.Load())
	for _, pid := range engines {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	close(gates[1])
	time.Sleep(5 * time.Second)
	for _, pid := range engines {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	restart(2, true)
	wg.Wait()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if int(sent.Load()) != n {
		t.Fatalf("handed over %d events, want %d", sent.Load(), n)
	}
	t.Logf("%d events, %d retried requests", n, retries.Load())

	rd := newClient(t, s.Base, keys["read"])
	waitCount(t, rd, "load.test", int64(n))
	// Through the API: each seq once, each id once.
	body, err := rd.Export(ctx, client.FormatNDJSON, client.Filter{EventTypes: []string{"load.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	seqs := make([]int, n)
	ids := make(map[string]bool, n)
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e client.StoredEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		seq := int(e.Action.Metadata["seq"].(float64))
		seqs[seq]++
		if ids[e.ID] {
			t.Fatalf("id %s read twice", e.ID)
		}
		ids[e.ID] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for seq, c := range seqs {
		if c != 1 {
			t.Fatalf("event seq %d read %d times, want once", seq, c)
		}
	}
	// In ClickHouse: as many ids as events; copies not yet merged away are
	// what FINAL (and so every read) folds.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", s.TCPPort)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var rows, uniq, final uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(id) FROM events WHERE org_id = 'acme' AND event_type = 'load.test'").Scan(&rows, &uniq); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM events FINAL WHERE org_id = 'acme' AND event_type = 'load.test'").Scan(&final); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse: %d rows without FINAL (%d copies from retries, folded by reads), %d ids, %d with FINAL", rows, rows-uniq, uniq, final)
	if uniq != uint64(n) || final != uint64(n) {
		t.Fatalf("ids=%d, rows with FINAL=%d, want %d", uniq, final, n)
	}
}

// childPIDs returns the processes whose parent is pid.
func childPIDs(tb testing.TB, pid int) []int {
	tb.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			c, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Dir(f), "/proc/"), "/"))
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("the server (pid %d) has no child process: no embedded engine to stop", pid)
	}
	return out
}
