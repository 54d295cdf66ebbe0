package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
)

// singleResult is one run of the one-event-per-request shape.
type singleResult struct {
	setup              string // which server: the binary, or in process with its slots
	clients            int
	elapsed            time.Duration
	acked, failed      int
	latencies          []time.Duration // of acknowledged requests, sorted
	stored, storedOnce int             // acknowledged ids found; found exactly once
	extra              int             // rows of the run beyond the acknowledged ids (unacknowledged requests that landed)
	visibleAfter       time.Duration   // from the end of the run until every acknowledged event was visible
	serverPeak         int64
	bare               bool // HTTP alone (serveBare): nothing stored to check
	// CPU time during the run: the server (or the bare HTTP server), its
	// embedded engine (0 for the bare one) and this load generator.
	serverCPU, engineCPU, loadCPU time.Duration
}

// cpuMark holds the CPU time a server process, its engine (pid 0: none)
// and this load generator had used when it was taken.
type cpuMark struct {
	server, engine int
	s, e, l        time.Duration
}

func markCPU(server, engine int) cpuMark {
	m := cpuMark{server: server, engine: engine, s: benchutil.CPUTime(server), l: benchutil.SelfCPU()}
	if engine != 0 {
		m.e = benchutil.CPUTime(engine)
	}
	return m
}

// since returns the CPU time each has used since the mark.
func (m cpuMark) since() (server, engine, load time.Duration) {
	server, load = benchutil.CPUTime(m.server)-m.s, benchutil.SelfCPU()-m.l
	if m.engine != 0 {
		engine = benchutil.CPUTime(m.engine) - m.e
	}
	return server, engine, load
}

// cpuDuring runs f and adds to its result the CPU time that server, engine
// (0: none) and this process spent meanwhile.
func cpuDuring(server, engine int, f func() singleRun) singleRun {
	m := markCPU(server, engine)
	r := f()
	r.serverCPU, r.engineCPU, r.loadCPU = m.since()
	return r
}

// templates are single events as JSON with a placeholder id, encoded
// before the clock starts; a request copies one and writes a fresh id in.
type templates struct {
	bodies [][]byte
	idAt   []int
}

const placeholderID = "00000000-0000-4000-8000-000000000000"

func newTemplates(g *generator, n int, project string) templates {
	var t templates
	for range n {
		ev := g.event()
		ev["id"], ev["projectId"] = placeholderID, project
		b, err := json.Marshal(ev)
		if err != nil {
			log.Fatal(err)
		}
		at := bytes.Index(b, []byte(placeholderID))
		t.bodies, t.idAt = append(t.bodies, b), append(t.idAt, at)
	}
	return t
}

// body returns template i with id written in.
func (t templates) body(i int, id string) []byte {
	i %= len(t.bodies)
	b := append([]byte(nil), t.bodies[i]...)
	copy(b[t.idAt[i]:], id)
	return b
}

// measureSingle runs, for each client count, clients goroutines that each
// POST one JSON event per request over keep-alive connections for d, to
// one server started for all runs; then checks that every acknowledged
// event is stored exactly once. With perfOut, the last run's server is
// sampled by `perf record`.
func measureSingle(ctx context.Context, work string, seed uint64, counts []int, d time.Duration, orgs int, perfOut string) []singleResult {
	log.Printf("starting the server ...")
	tcp := benchutil.FreePort()
	srv := benchutil.StartServer(work, "-data", filepath.Join(work, "single-data"), "-engine-tcp-port", strconv.Itoa(tcp), "-log-level", "warn")
	defer srv.Stop()
	keys := make([]string, orgs)
	for i := range keys {
		keys[i] = srv.OrgKey(fmt.Sprintf("org-%03d", i), "pro", "ingest")
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", tcp)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	g := newGenerator(seed)
	var out []singleResult
	for i, n := range counts {
		project := fmt.Sprintf("bench-single-%d", i)
		t := newTemplates(g, 4096, project)
		var perf *exec.Cmd
		if perfOut != "" && i == len(counts)-1 {
			perf = startPerf(perfOut, srv.PID())
		}
		sampler := benchutil.Sample(srv.PID())
		r := cpuDuring(srv.PID(), srv.EnginePID(), func() singleRun { return runSingle(srv.Base, keys, t, n, d) })
		r.serverPeak = sampler.Stop()
		r.setup = "server binary"
		if perf != nil {
			stopPerf(perf)
		}
		verifySingle(ctx, conn, project, &r)
		log.Printf("%d clients: %.0f requests/s, p50 %s p99 %s, %d acknowledged, %d stored once, %d failed",
			n, float64(r.acked)/r.elapsed.Seconds(), pct(r.latencies, 0.50), pct(r.latencies, 0.99), len(r.ids), r.storedOnce, r.failed)
		out = append(out, r.singleResult)
	}
	return out
}

type singleRun struct {
	singleResult
	ids map[string]bool
}

func runSingle(base string, keys []string, t templates, clients int, d time.Duration) singleRun {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	type worker struct {
		ids    []string
		lat    []time.Duration
		failed int
	}
	ws := make([]worker, clients)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range ws {
		wg.Add(1)
		go func(w *worker, c int) {
			defer wg.Done()
			key := "Bearer " + keys[c%len(keys)]
			for i := c; time.Now().Before(deadline); i += clients {
				id := uuid.NewString()
				req, _ := http.NewRequest("POST", base+"/v1/events", bytes.NewReader(t.body(i, id)))
				req.Header.Set("Authorization", key)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					w.failed++
					time.Sleep(10 * time.Millisecond)
					continue
				}
				_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body) // drain, so the connection is reused
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					w.failed++
					time.Sleep(10 * time.Millisecond) // 503 when the log is full: back off
					continue
				}
				w.lat = append(w.lat, time.Since(t0))
				w.ids = append(w.ids, id)
			}
		}(&ws[c], c)
	}
	wg.Wait()
	r := singleRun{singleResult: singleResult{clients: clients, elapsed: time.Since(start)}, ids: map[string]bool{}}
	for _, w := range ws {
		r.latencies = append(r.latencies, w.lat...)
		r.failed += w.failed
		for _, id := range w.ids {
			r.ids[id] = true
		}
	}
	r.acked = len(r.latencies)
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	return r
}

// verifySingle waits (up to two minutes) until every acknowledged event of
// the run is visible, then counts how often each is stored.
func verifySingle(ctx context.Context, conn driver.Conn, project string, r *singleRun) {
	end := time.Now()
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE project_id = ?", project).Scan(&n); err != nil {
			log.Fatal(err)
		}
		if n >= uint64(len(r.ids)) || time.Since(end) > 2*time.Minute {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.visibleAfter = time.Since(end)
	rows, err := conn.Query(ctx, "SELECT toString(id), count() FROM events WHERE project_id = ? GROUP BY id", project)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			log.Fatal(err)
		}
		switch {
		case !r.ids[id]:
			r.extra++
		case n == 1:
			r.stored++
			r.storedOnce++
		default:
			r.stored++
		}
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
}

func startPerf(out string, pid int) *exec.Cmd {
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", out, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Printf("perf record: %v (no profile)", err)
		return nil
	}
	return cmd
}

func stopPerf(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return percentile(sorted, p).Round(10 * time.Microsecond)
}

func renderSingle(rs []singleResult, d time.Duration, orgs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## One event per request\n\nMachine: %s; load average %s at the end. Each row: N clients, each POSTing one JSON event "+
		"(about 730 bytes) per request over keep-alive, for %s, to one server (%d orgs, an ingest key each); the load generator runs on "+
		"the same machine. Stored: the acknowledged ids found in ClickHouse exactly once.\n\n", benchutil.Machine(), benchutil.LoadAverage(), d, orgs)
	fmt.Fprintf(&b, "| server | clients | requests/s (202) | p50 | p99 | max | non-202 / errors | acknowledged | stored once | stored twice or more | missing | visible after the run | peak RSS, server "+
		"| CPU µs per request: server / engine / load generator |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		max := time.Duration(0)
		if len(r.latencies) > 0 {
			max = r.latencies[len(r.latencies)-1]
		}
		rss := "—"
		if r.serverPeak > 0 {
			rss = fmt.Sprintf("%.0f MB", float64(r.serverPeak)/1e6)
		}
		stored := fmt.Sprintf("%d | %d | %d | %s", r.storedOnce, r.stored-r.storedOnce, r.acked-r.stored, r.visibleAfter.Round(time.Millisecond))
		if r.bare {
			stored = "— | — | — | —"
		}
		cpu := "—"
		if r.acked > 0 && r.serverCPU > 0 {
			us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.acked) }
			engine := fmt.Sprintf("%.0f", us(r.engineCPU))
			if r.bare {
				engine = "—" // no engine behind the bare HTTP server
			}
			cpu = fmt.Sprintf("%.0f / %s / %.0f", us(r.serverCPU), engine, us(r.loadCPU))
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %d | %d | %s | %s | %s |\n", r.setup, r.clients, float64(r.acked)/r.elapsed.Seconds(),
			pct(r.latencies, 0.50), pct(r.latencies, 0.99), max.Round(10*time.Microsecond), r.failed, r.acked, stored, rss, cpu)
	}
	return b.String()
}
