package faulttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/servertest"
)

const org = "fault"

// waitAcked waits up to d until l holds n acknowledged events.
func waitAcked(t *testing.T, l *ledger, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for l.ackedCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events acknowledged after %v, want %d", l.ackedCount(), d, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServerSIGKILL kills the server with SIGKILL at random points while
// clients post, restarts it on the same data directory each time, and
// finds every acknowledged event once.
func TestServerSIGKILL(t *testing.T) {
	sz := suite(t)
	ch := startClickHouse(t)
	dir := t.TempDir()
	s := servertest.StartIn(t, dir, ch.flags()...)
	keys := s.Org(t, org, "ingest", "read")
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	l := newLedger()
	deadline := time.Now().Add(time.Duration(sz.serverKills) * 20 * time.Second)
	runs := 0
	for runs < sz.serverKills && time.Now().Before(deadline) {
		stop := drive(s.Base, keys["ingest"], sz.clients, l, time.Minute)
		time.Sleep(time.Duration(50+r.IntN(1500)) * time.Millisecond)
		if err := s.Process().Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = s.WaitExit(t, 30*time.Second)
		stop()
		runs++
		// The engine may die of a client killed mid-insert (its supervisor
		// starts it again): the server needs it to start.
		ch.waitUp(t, 2*time.Minute)
		// Restarted as an operator's supervisor would; it must serve again
		// on its own (StartIn waits for /readyz 200).
		s = servertest.StartIn(t, dir, ch.flags()...)
	}
	if runs < sz.serverKills {
		t.Errorf("only %d of %d kills within the time bound", runs, sz.serverKills)
	}
	verify(t, "server-sigkill", runs, openDB(t, ch.Addr), s.Base, keys["read"], org, l, fmt.Sprintf(" engine_restarts=%d seed=%d", ch.Restarts(), seed))
}

// TestClickHouseStopped stops ClickHouse for a while under load: ingest
// keeps acknowledging (the write-ahead log holds the events), /readyz says
// why it is not ready, and once ClickHouse is back everything arrives with
// no action on the server.
func TestClickHouseStopped(t *testing.T) {
	sz := suite(t)
	ch := startClickHouse(t)
	s := servertest.Start(t, ch.flags()...)
	keys := s.Org(t, org, "ingest", "read")
	l := newLedger()
	stop := drive(s.Base, keys["ingest"], sz.clients, l, sz.outage+10*time.Minute)
	defer stop()
	waitAcked(t, l, 500, time.Minute)

	ch.stop()
	before, began := l.ackedCount(), time.Now()
	var reasons string
	for time.Since(began) < sz.outage {
		if code, body := readyz(s.Base); code == http.StatusServiceUnavailable {
			reasons = body
		}
		time.Sleep(time.Second)
	}
	during := l.ackedCount() - before
	errs := metric(s.Base, "auditstore_ingest_insert_errors_total")
	ch.start()
	waitReady(t, s.Base, 3*time.Minute)
	recovered := time.Since(began) - sz.outage
	time.Sleep(2 * time.Second)
	stop()

	if reasons == "" {
		t.Errorf("/readyz never answered 503 while ClickHouse was stopped")
	}
	if during == 0 {
		t.Errorf("nothing acknowledged while ClickHouse was stopped: the write-ahead log should take events")
	}
	if errs <= 0 {
		t.Errorf("auditstore_ingest_insert_errors_total=%v during the outage, want > 0", errs)
	}
	t.Logf("readyz during the outage: %s", reasons)
	verify(t, "clickhouse-stopped", 1, openDB(t, ch.Addr), s.Base, keys["read"], org, l,
		fmt.Sprintf(" outage=%s acked_during_outage=%d ready_again_after=%s", sz.outage, during, recovered.Round(time.Second)))
}

// enginePID returns the pid of a child process of pid (the server's
// embedded engine).
func enginePID(t *testing.T, pid int) int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				return n
			}
		}
	}
	return 0
}

// TestEngineDies ends the server's embedded engine under load, each way it
// is known to end: SIGKILL, and a hostile connection to its native port
// (bytes that are not the protocol: clickhouse-local ends its process on an
// exception a connection's thread does not catch, as it does on a failed
// sign-in). /readyz turns 503, the server starts the engine again, and
// every acknowledged event is found once.
func TestEngineDies(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(t *testing.T, pid, tcpPort int)
	}{
		{"sigkill", func(t *testing.T, pid, _ int) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}},
		{"hostile-bytes", func(t *testing.T, _, tcpPort int) {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			junk := make([]byte, 300)
			for i := range junk {
				junk[i] = byte(rand.IntN(256))
			}
			junk[0] = 0xff // not a Hello packet
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write(junk)
			_, _ = c.Read(make([]byte, 512))
		}},
	} {
		t.Run(c.name, func(t *testing.T) { engineDies(t, c.name, c.end) })
	}
}

func engineDies(t *testing.T, name string, end func(t *testing.T, pid, tcpPort int)) {
	sz := suite(t)
	s := servertest.Start(t)
	keys := s.Org(t, org, "ingest", "read")
	l := newLedger()
	stop := drive(s.Base, keys["ingest"], sz.clients, l, 10*time.Minute)
	defer stop()
	waitAcked(t, l, 500, time.Minute)
	old := enginePID(t, s.Process().Pid)
	if old == 0 {
		t.Fatal("no engine process under the server")
	}
	end(t, old, s.TCPPort)
	ended := time.Now()
	notReady := false
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if code, _ := readyz(s.Base); code != http.StatusOK {
			notReady = true
		}
		if p := enginePID(t, s.Process().Pid); p != 0 && p != old {
			break
		}
		if syscall.Kill(old, 0) == nil && time.Since(ended) > 15*time.Second && !notReady {
			t.Logf("the engine (pid %d) outlived %s: nothing to restart", old, name)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine was not started again within 2m:\n%s", s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitReady(t, s.Base, 3*time.Minute)
	back := time.Since(ended)
	time.Sleep(2 * time.Second)
	stop()
	verify(t, "engine-"+name, 1, openDB(t, fmt.Sprintf("127.0.0.1:%d", s.TCPPort)), s.Base, keys["read"], org, l,
		fmt.Sprintf(" not_ready_seen=%t ready_again_after=%s", notReady, back.Round(100*time.Millisecond)))
}

// TestTwoServersOneDatabase runs two servers, each with its own data
// directory, on one database, posting to both at once, and kills one of
// them midway: each keeps every event it acknowledged.
func TestTwoServersOneDatabase(t *testing.T) {
	sz := suite(t)
	ch := startClickHouse(t)
	dirB := t.TempDir()
	a := servertest.Start(t, ch.flags()...)
	b := servertest.StartIn(t, dirB, ch.flags()...)
	keys := a.Org(t, org, "ingest", "read")
	l := newLedger()
	stopA := drive(a.Base, keys["ingest"], sz.clients, l, 5*time.Minute)
	defer stopA()
	stopB := drive(b.Base, keys["ingest"], sz.clients, l, 5*time.Minute)
	waitAcked(t, l, 2000, 2*time.Minute)
	if err := b.Process().Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = b.WaitExit(t, 30*time.Second)
	stopB()
	ch.waitUp(t, 2*time.Minute)
	b = servertest.StartIn(t, dirB, ch.flags()...)
	stopB = drive(b.Base, keys["ingest"], sz.clients, l, 5*time.Minute)
	time.Sleep(3 * time.Second)
	stopA()
	stopB()
	conn := openDB(t, ch.Addr)
	var nodes uint64
	if err := conn.QueryRow(t.Context(), "SELECT uniqExact(ingest_node) FROM events WHERE org_id = 'fault'").Scan(&nodes); err != nil {
		t.Fatal(err)
	}
	if nodes != 2 {
		t.Errorf("events came through %d ingest nodes, want 2", nodes)
	}
	verify(t, "two-servers", 1, conn, b.Base, keys["read"], org, l, fmt.Sprintf(" nodes=%d engine_restarts=%d", nodes, ch.Restarts()))
}

// mountTmpfs mounts a tmpfs of size bytes on dir (root only: skipped
// where mounting is not allowed). It is unmounted after everything the
// test registers later has stopped.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if out, err := execCommand("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := execCommand("umount", dir); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// fill writes path until its file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for i := 0; i < 1<<16; i++ {
		if _, err := f.Write(chunk); err != nil {
			return // ENOSPC (or the bound): full
		}
	}
	t.Fatalf("%s: the file system never filled", path)
}

// TestDiskFull fills the disk under the write-ahead log while clients
// post, then frees it: ingest refuses with 503 meanwhile, /readyz names
// the fault, and ingest resumes without a restart.
func TestDiskFull(t *testing.T) {
	sz := suite(t)
	ch := startClickHouse(t)
	dir := t.TempDir()
	mountTmpfs(t, dir, 64<<20)
	s := servertest.StartIn(t, dir, append(ch.flags(), "-wal-max-bytes", strconv.Itoa(16<<20))...)
	keys := s.Org(t, org, "ingest", "read")
	l := newLedger()
	stop := drive(s.Base, keys["ingest"], sz.clients, l, 10*time.Minute)
	defer stop()
	waitAcked(t, l, 500, time.Minute)

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	refusedBefore := l.code("503") + l.code("500")
	var reasons string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if code, body := readyz(s.Base); code == http.StatusServiceUnavailable {
			reasons = body
		}
	}
	refused := l.code("503") + l.code("500") - refusedBefore
	// A key change whose audit record cannot be written is undone (a small
	// record may still fit in the slack of a page: then it is durable and
	// the key stands).
	keysMade, keyCode, keyOut := 0, 0, []byte(nil)
	for i := 0; i < 10 && keyCode != http.StatusServiceUnavailable; i++ {
		keyCode, keyOut = s.Do(t, "POST", "/v1/orgs/"+org+"/keys", servertest.AdminToken, []byte(`{"role":"ingest","name":"while full"}`))
		if keyCode == http.StatusCreated {
			keysMade++
		}
	}
	writeErrs := metric(s.Base, "auditstore_wal_write_errors_total")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := l.ackedCount()
	waitReady(t, s.Base, 2*time.Minute)
	waitAcked(t, l, freed+500, 2*time.Minute)
	stop()

	if refused == 0 {
		t.Errorf("no request refused while the disk was full")
	}
	if keyCode != http.StatusServiceUnavailable || !strings.Contains(string(keyOut), "audit_unavailable") {
		t.Errorf("key created while the disk was full: %d %s; want 503 audit_unavailable", keyCode, keyOut)
	}
	var ks struct{ Keys []struct{ Name string } }
	if code, err := getJSON(s.Base, "/v1/orgs/"+org+"/keys", servertest.AdminToken, &ks); err != nil || code != http.StatusOK || len(ks.Keys) != 2+keysMade {
		t.Errorf("keys after the undone creation: %d %v %+v, want %d (2 before, %d recorded while full)", code, err, ks.Keys, 2+keysMade, keysMade)
	}
	if c := l.code("500"); c != 0 {
		t.Errorf("%d requests answered 500; a full disk is 503 wal_unavailable", c)
	}
	if !strings.Contains(reasons, "write-ahead log") {
		t.Errorf("/readyz while the disk was full: %q, want the write-ahead log's fault named", reasons)
	}
	if writeErrs <= 0 {
		t.Errorf("auditstore_wal_write_errors_total=%v, want > 0", writeErrs)
	}
	conn := openDB(t, ch.Addr)
	var recorded uint64
	for deadline := time.Now().Add(time.Minute); recorded != uint64(2+keysMade) && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM events FINAL WHERE org_id = 'fault' AND event_type = 'api-key.create'").Scan(&recorded); err != nil {
			t.Fatal(err)
		}
	}
	if recorded != uint64(2+keysMade) {
		t.Errorf("api-key.create records: %d, want %d (one per key that stands)", recorded, 2+keysMade)
	}
	verify(t, "disk-full", 1, conn, s.Base, keys["read"], org, l,
		fmt.Sprintf(" refused_while_full=%d wal_write_errors=%v keys_undone=1 keys_recorded_while_full=%d", refused, writeErrs, keysMade))
}

// TestPoisonEvent makes ClickHouse refuse one event for good (a CHECK
// constraint on the events table refuses its type: code 469
// VIOLATED_CONSTRAINT, as it would a value it cannot store) among good
// ones posted in the same requests: the good ones keep flowing, the
// poison is set aside in the quarantine (readiness "degraded", a metric),
// and once the operator lifts the cause and replays it, it is stored once.
func TestPoisonEvent(t *testing.T) {
	sz := suite(t)
	ch := startClickHouse(t)
	s := servertest.Start(t, ch.flags()...)
	keys := s.Org(t, org, "ingest", "read")
	conn := openDB(t, ch.Addr)
	const poisonType = "fault.poison"
	if err := conn.Exec(t.Context(), "ALTER TABLE events ADD CONSTRAINT fault_poison CHECK event_type != '"+poisonType+"'"); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	stop := drive(s.Base, keys["ingest"], sz.clients, l, 5*time.Minute)
	defer stop()
	waitAcked(t, l, 200, time.Minute)

	// One request: good events around the poison (one log record).
	good, goodIDs := ndjson(20, 99, "")
	poisonID := uuid.NewString()
	body := append(good, fmt.Sprintf(`{"id":%q,"event":{"type":%q},"actor":{"type":"user","metadata":{"userId":"p"}}}`+"\n", poisonID, poisonType)...)
	more, moreIDs := ndjson(20, 99, "")
	body = append(body, more...)
	if code := post(s.Base, keys["ingest"], body, append(goodIDs, moreIDs...), l); code != http.StatusAccepted {
		t.Fatalf("request with the poison event: %d", code)
	}
	after := l.ackedCount()
	waitAcked(t, l, after+500, time.Minute) // ingest keeps flowing

	type entry struct {
		ID       string   `json:"id"`
		EventIDs []string `json:"eventIds"`
		Code     int32    `json:"clickhouseCode"`
	}
	var q struct{ Entries []entry }
	var found entry
	for deadline := time.Now().Add(time.Minute); found.ID == ""; time.Sleep(200 * time.Millisecond) {
		if code, err := getJSON(s.Base, "/v1/quarantine", servertest.AdminToken, &q); err != nil || code != http.StatusOK {
			t.Fatalf("GET /v1/quarantine: %d %v", code, err)
		}
		for _, e := range q.Entries {
			if len(e.EventIDs) == 1 && e.EventIDs[0] == poisonID {
				found = e
			}
		}
		if found.ID == "" && time.Now().After(deadline) {
			t.Fatalf("the poison event is not in the quarantine after 1m: %+v\n%s", q, tail(s.Output(), 4000))
		}
	}
	if len(q.Entries) != 1 {
		t.Errorf("quarantine entries: %+v, want only the poison event", q.Entries)
	}
	code, ready := readyz(s.Base)
	if code != http.StatusOK || !strings.Contains(ready, "degraded") || !strings.Contains(ready, "quarantine") {
		t.Errorf("/readyz with an event in the quarantine: %d %s, want 200 degraded naming the quarantine", code, ready)
	}
	quarantined := metric(s.Base, "auditstore_ingest_quarantined_events_total")
	if quarantined != 1 {
		t.Errorf("auditstore_ingest_quarantined_events_total=%v, want 1", quarantined)
	}
	stop()
	verify(t, "poison", 1, conn, s.Base, keys["read"], org, l, fmt.Sprintf(" quarantined=%v clickhouse_code=%d", quarantined, found.Code))

	// The operator lifts the cause and replays the entry: stored once.
	if err := conn.Exec(t.Context(), "ALTER TABLE events DROP CONSTRAINT fault_poison"); err != nil {
		t.Fatal(err)
	}
	if code, out := s.Do(t, "POST", "/v1/quarantine/"+found.ID+"/replay", servertest.AdminToken, nil); code != http.StatusAccepted {
		t.Fatalf("replay: %d %s", code, out)
	}
	var n uint64
	for deadline := time.Now().Add(time.Minute); n == 0; time.Sleep(200 * time.Millisecond) {
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM events WHERE id = toUUID('"+poisonID+"')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 && time.Now().After(deadline) {
			t.Fatal("the replayed event is not stored after 1m")
		}
	}
	code, ready = readyz(s.Base)
	if n != 1 || code != http.StatusOK || strings.Contains(ready, "degraded") {
		t.Errorf("after the replay: rows=%d, /readyz %d %s; want 1 row, ready", n, code, ready)
	}
	fmt.Printf("fault: scenario=poison-replay quarantined=%v clickhouse_code=%d replayed_rows=%d\n", quarantined, found.Code, n)
}
