package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/engine"
	"github.com/auditstore/auditstore/internal/servertest"
	"github.com/auditstore/auditstore/internal/testkit"
)

// size is how hard the suite pushes: the CI run or the longer one.
type size struct {
	long        bool
	serverKills int           // server SIGKILLs
	outage      time.Duration // ClickHouse stopped
	clients     int           // concurrent ingest clients
}

// suite returns the size selected by AUDITSTORE_FAULT, or skips.
func suite(t *testing.T) size {
	t.Helper()
	switch v := os.Getenv("AUDITSTORE_FAULT"); v {
	case "":
		t.Skip("fault-injection suite: set AUDITSTORE_FAULT=1 (CI size) or AUDITSTORE_FAULT=long")
	case "long":
		return size{long: true, serverKills: 100, outage: 2 * time.Minute, clients: 4}
	default:
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("AUDITSTORE_FAULT=%q: want 1 or long", v)
		}
	}
	return size{serverKills: 20, outage: 30 * time.Second, clients: 3}
}

// eventType marks the suite's events (the server's own audit events have
// other types).
const eventType = "fault.test"

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// chServer is an embedded engine run by the test itself, on fixed ports
// and a data directory that outlive a stop, so the test can take it away
// from the servers and bring it back. Like the server's own engine it is
// supervised: should it die, it is started again on the same ports.
type chServer struct {
	t        *testing.T
	cfg      engine.Config
	out      *servertest.SyncBuffer // the engine's log lines
	mu       sync.Mutex
	sup      *engine.Supervisor
	restarts int // by the supervisors before the current one
	Addr     string
	HTTPAddr string
}

func startClickHouse(t *testing.T) *chServer {
	t.Helper()
	c := &chServer{t: t, out: &servertest.SyncBuffer{}}
	c.cfg = testkit.EngineConfig(t, "clickhouse")
	c.cfg.Logger = slog.New(slog.NewTextHandler(c.out, nil))
	c.cfg.StartTimeout = 2 * time.Minute
	c.Addr, c.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", c.cfg.TCPPort), fmt.Sprintf("127.0.0.1:%d", c.cfg.HTTPPort)
	c.start()
	// Registered first, so it runs after every server using it has stopped.
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("clickhouse log:\n%s", tail(c.out.String(), 4000))
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *chServer) start() {
	c.t.Helper()
	sup, err := engine.StartSupervised(context.Background(), c.cfg)
	if err != nil {
		c.t.Fatalf("start clickhouse: %v", err)
	}
	c.mu.Lock()
	c.sup = sup
	c.mu.Unlock()
}

func (c *chServer) stop() {
	c.mu.Lock()
	sup := c.sup
	c.sup = nil
	c.mu.Unlock()
	if sup == nil {
		return
	}
	c.mu.Lock()
	c.restarts += sup.Restarts()
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sup.Stop(ctx); err != nil {
		c.t.Logf("stop clickhouse: %v", err)
	}
}

// Restarts counts the times the engine died and was started again.
func (c *chServer) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.restarts
	if c.sup != nil {
		n += c.sup.Restarts()
	}
	return n
}

// waitUp waits until the engine has answered for a second in a row with
// the same process (a restart in between starts the wait again).
func (c *chServer) waitUp(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	pid, since := 0, time.Time{}
	for {
		c.mu.Lock()
		p := c.sup.PID()
		c.mu.Unlock()
		conn, err := net.DialTimeout("tcp", c.Addr, time.Second)
		if err == nil {
			conn.Close()
		}
		switch {
		case err != nil || p == 0 || p != pid:
			pid, since = p, time.Now()
		case time.Since(since) >= time.Second:
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clickhouse not up after %v:\n%s", d, tail(c.out.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// flags point a server at this engine.
func (c *chServer) flags() []string {
	return []string{"-clickhouse", c.Addr, "-clickhouse-http", c.HTTPAddr}
}

// ledger remembers what every request of a scenario got.
type ledger struct {
	mu      sync.Mutex
	acked   map[string]bool
	unacked map[string]bool // sent without a 2xx (refused, or no answer)
	codes   map[string]int  // answers by status ("err" for no answer)
}

func newLedger() *ledger {
	return &ledger{acked: map[string]bool{}, unacked: map[string]bool{}, codes: map[string]int{}}
}

func (l *ledger) note(ids []string, code string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.codes[code]++
	for _, id := range ids {
		if code == "202" {
			l.acked[id] = true
			delete(l.unacked, id)
		} else if !l.acked[id] {
			l.unacked[id] = true
		}
	}
}

func (l *ledger) ackedCount() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.acked) }

func (l *ledger) code(c string) int { l.mu.Lock(); defer l.mu.Unlock(); return l.codes[c] }

// ndjson returns n events of the suite with fresh ids, and the ids.
func ndjson(n int, client int, extra string) ([]byte, []string) {
	var b bytes.Buffer
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		fmt.Fprintf(&b, `{"id":%q,"event":{"type":%q,"metadata":{"i":%d%s}},"actor":{"type":"user","metadata":{"userId":"u%d"}}}`+"\n",
			ids[i], eventType, i, extra, client)
	}
	return b.Bytes(), ids
}

var client = &http.Client{Timeout: 15 * time.Second}

// post sends one request of events and notes the answer in l.
func post(base, key string, body []byte, ids []string, l *ledger) int {
	req, err := http.NewRequest("POST", base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		l.note(ids, "err")
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	l.note(ids, strconv.Itoa(resp.StatusCode))
	return resp.StatusCode
}

// drive posts batches of events to base from n clients until the returned
// stop is called (which waits for them) or limit passes.
func drive(base, key string, n int, l *ledger, limit time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(limit)
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-quit:
					return
				default:
				}
				body, ids := ndjson(10+rand.IntN(40), c, "")
				pause := time.Duration(20+rand.IntN(40)) * time.Millisecond // paced: the checks read every event back
				if code := post(base, key, body, ids, l); code != http.StatusAccepted {
					pause = time.Duration(100+rand.IntN(200)) * time.Millisecond
				}
				select {
				case <-quit:
					return
				case <-time.After(pause):
				}
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(quit); wg.Wait() }) }
}

// getJSON GETs base+path with a token and decodes the answer.
func getJSON(base, path, token string, v any) (int, error) {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, fmt.Errorf("%w: %.200s", err, b)
		}
	}
	return resp.StatusCode, nil
}

// operatorGet GETs path with the operator token, which alone sees
// /readyz's reasons and /metrics.
func operatorGet(base, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+servertest.AdminToken)
	return client.Do(req)
}

// readyz returns /readyz's status and its body, as the operator sees it.
func readyz(base string) (int, string) {
	resp, err := operatorGet(base, "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// waitReady waits up to d for /readyz to answer 200, without any action.
func waitReady(t *testing.T, base string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, body := readyz(base)
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready %v after the fault ended: %d %s", d, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metric returns the sum of a metric's samples on /metrics (-1 if absent).
func metric(base, name string) float64 {
	resp, err := operatorGet(base, "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum, found := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// openDB connects to the database the servers use.
func openDB(t *testing.T, addr string) driver.Conn {
	t.Helper()
	cfg := chconn.DefaultConfig()
	cfg.Addr, cfg.Database = addr, "auditstore"
	conn, err := chconn.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rowsByID counts the suite's rows of org per id: raw (without FINAL, so
// a duplicate insert shows until a merge folds it) or as reads see them.
func rowsByID(conn driver.Conn, org string, final bool) (map[string]int, error) {
	q := "SELECT toString(id), count() FROM events"
	if final {
		q += " FINAL"
	}
	q += " WHERE org_id = {org:String} AND event_type = {typ:String} GROUP BY id"
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"org": org, "typ": eventType}))
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = int(n)
	}
	return out, rows.Err()
}

// apiIDs reads every event of the suite through the API (cursor paging)
// and counts each id.
func apiIDs(base, readKey string) (map[string]int, error) {
	out := map[string]int{}
	cursor := ""
	for page := 0; page < 10000; page++ {
		path := "/v1/events?limit=1000&eventType=" + eventType
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var p struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
			NextCursor string `json:"nextCursor"`
		}
		code, err := getJSON(base, path, readKey, &p)
		if err != nil || code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %v", path, code, err)
		}
		for _, e := range p.Events {
			out[e.ID]++
		}
		if p.NextCursor == "" {
			return out, nil
		}
		cursor = p.NextCursor
	}
	return nil, fmt.Errorf("more than 10,000 pages")
}

// verify waits (up to 2 minutes) until every acknowledged event is stored,
// then checks that each is stored exactly once, in the table and through
// the API of base, and prints the scenario's summary line.
func verify(t *testing.T, scenario string, runs int, conn driver.Conn, base, readKey, org string, l *ledger, extra string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var final map[string]int
	var err error
	lost := 0
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if final, err = rowsByID(conn, org, true); err == nil {
			lost = 0
			for id := range l.acked {
				if final[id] == 0 {
					lost++
				}
			}
			if lost == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s: read the events table: %v", scenario, err)
	}
	raw, err := rowsByID(conn, org, false)
	if err != nil {
		t.Fatalf("%s: read the events table: %v", scenario, err)
	}
	api, err := apiIDs(base, readKey)
	if err != nil {
		t.Fatalf("%s: read through the API: %v", scenario, err)
	}
	stored, rawDup, apiDup, finalDup, unackedStored, strangers := 0, 0, 0, 0, 0, 0
	for id, n := range final {
		if n > 1 {
			finalDup++
		}
		switch {
		case l.acked[id]:
			stored++
		case l.unacked[id]:
			unackedStored++
		default:
			strangers++
		}
	}
	for _, n := range raw {
		if n > 1 {
			rawDup++
		}
	}
	apiLost := 0
	for id := range l.acked {
		if api[id] == 0 {
			apiLost++
		}
	}
	for _, n := range api {
		if n > 1 {
			apiDup++
		}
	}
	codes := make([]string, 0, len(l.codes))
	for c, n := range l.codes {
		codes = append(codes, fmt.Sprintf("%s:%d", c, n))
	}
	sort.Strings(codes)
	line := fmt.Sprintf("fault: scenario=%s runs=%d acked=%d stored=%d lost=%d duplicated=%d raw_duplicated=%d api_lost=%d api_duplicated=%d unacked=%d unacked_stored=%d answers=%s%s",
		scenario, runs, len(l.acked), stored, lost, finalDup+apiDup, rawDup, apiLost, apiDup, len(l.unacked), unackedStored, strings.Join(codes, ","), extra)
	fmt.Println(line)
	t.Log(line)
	// Each acknowledged event is stored once on disk too (raw, without
	// FINAL): counts and streams that read without FINAL see it once, and a
	// batch replayed after a crash is deduplicated by ClickHouse.
	if lost != 0 || apiLost != 0 || finalDup != 0 || apiDup != 0 || rawDup != 0 || strangers != 0 {
		t.Errorf("%s: lost=%d api_lost=%d duplicated=%d raw_duplicated=%d api_duplicated=%d unknown ids=%d; want all 0",
			scenario, lost, apiLost, finalDup, rawDup, apiDup, strangers)
	}
	if len(l.acked) == 0 {
		t.Errorf("%s: nothing was acknowledged: the scenario tested nothing", scenario)
	}
}

func execCommand(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
