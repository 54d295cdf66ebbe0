package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/servertest"
)

const clusterCursorKey = "cluster-test-cursor-key-0123456789abcdef"

// startClusterServer runs auditstore on the cluster c, configured with
// node's address (any node: the cluster is read from its system.clusters).
func startClusterServer(tb testing.TB, c *chtest.Cluster, node int, dataDir string) *servertest.Server {
	tb.Helper()
	n := c.Nodes[node]
	c.WaitUp(tb) // a server starts only with every node reachable
	return servertest.StartIn(tb, dataDir, "-clickhouse", n.Addr, "-clickhouse-http", n.HTTPAddr,
		"-clickhouse-database", c.Name, "-clickhouse-cluster", chtest.ClusterName,
		"-cursor-key", clusterCursorKey, "-key-refresh", "200ms")
}

// clusterEvents returns n events of org as NDJSON lines, with ids and times.
func clusterEvents(prefix string, n int) ([]string, []string) {
	var ids, lines []string
	base := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
	for i := 0; i < n; i++ {
		id := uuid.NewString()
		ids = append(ids, id)
		lines = append(lines, fmt.Sprintf(`{"id":%q,"timestamp":%q,"event":{"type":"%s.%s","metadata":{"i":%d,"o":{"k":"v%d"}}},`+
			`"actor":{"type":"user","metadata":{"userId":"%s-u%d","email":"u%d@example.com"}},"ipAddress":"203.0.113.%d",`+
			`"resource":{"type":"secret","id":"%s-s%d"},"traceId":"%s-t%d","projectId":"p-%d"}`,
			id, base.Add(time.Duration(i%97)*time.Minute+time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano),
			prefix, []string{"login", "read", "write"}[i%3], i, i%5, prefix, i%7, i%4, i%11, prefix, i%13, prefix, i%17, i%3))
	}
	return ids, lines
}

// normalized drops what differs between two stores holding the same events:
// receive times (and the expiry and creation times derived from them) and
// opaque cursors.
func normalized(tb testing.TB, b []byte) string {
	tb.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("not JSON: %s", b)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range []string{"receivedAt", "createdAt", "expiresAt", "nextCursor"} {
				delete(x, k)
			}
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return v
	}
	out, _ := json.Marshal(walk(v))
	return string(out)
}

func ndjsonNormalized(tb testing.TB, b []byte) string {
	tb.Helper()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		lines = append(lines, normalized(tb, sc.Bytes()))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// Two auditstore nodes on a 3-shard cluster of embedded engines answer
// every filter, page, cursor walk, timeline, aggregate and export exactly
// as a single-node reference loaded with the same events; events re-sent
// through the other node fold; a key revoked on one node is refused by the
// other.
func TestClusterMatchesSingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 engines and 3 servers")
	}
	c := chtest.NewCluster(t, 3)
	a := startClusterServer(t, c, 0, t.TempDir())
	b := startClusterServer(t, c, 1, t.TempDir()) // configured with another node
	ref := servertest.Start(t, "-cursor-key", clusterCursorKey)

	keysA := a.Org(t, "acme", "ingest", "read")
	keysRef := ref.Org(t, "acme", "ingest", "read")
	ids, lines := clusterEvents("x", 400)
	for i := 0; i < len(lines); i += 50 {
		chunk := []byte(strings.Join(lines[i:i+50], "\n") + "\n")
		// Through both cluster nodes; keys made on A work on B (one
		// designated node holds them).
		if (i/50)%2 == 0 {
			a.Ingest(t, keysA["ingest"], chunk)
		} else {
			waitKey(t, b, keysA["ingest"])
			b.Ingest(t, keysA["ingest"], chunk)
		}
		ref.Ingest(t, keysRef["ingest"], chunk)
	}
	// Re-sent through the other node: the copies fold on their shard.
	b.Ingest(t, keysA["ingest"], []byte(strings.Join(lines[:100], "\n")+"\n"))
	ref.Ingest(t, keysRef["ingest"], []byte(strings.Join(lines[:100], "\n")+"\n"))
	types := "eventType=x.login,x.read,x.write"
	a.WaitTotal(t, keysA["read"], types, len(ids))
	ref.WaitTotal(t, keysRef["read"], types, len(ids))
	for i, n := range c.Nodes {
		var rows uint64
		if err := n.Conn.QueryRow(context.Background(), "SELECT count() FROM events_local FINAL WHERE event_type LIKE 'x.%'").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows == 0 || rows > uint64(len(ids)) {
			t.Errorf("shard %d holds %d of the %d events, want a share", i+1, rows, len(ids))
		}
	}

	for _, q := range []string{
		"/v1/events?" + types + "&limit=1000",
		"/v1/events?" + types + "&limit=37&page=3",
		"/v1/events?" + types + "&limit=50&order=asc",
		"/v1/events?eventType=x.read&actorId=x-u3",
		"/v1/events?" + types + "&actorEmail=u2@example.com&limit=500",
		"/v1/events?" + types + "&ipAddress=203.0.113.4&limit=500",
		"/v1/events?" + types + "&projectId=p-1&limit=500",
		"/v1/events?" + types + "&metadata.o.k=v3&limit=500",
		"/v1/events?" + types + "&from=" + url.QueryEscape(time.Now().Add(-100*time.Minute).UTC().Format(time.RFC3339)) + "&limit=500",
		"/v1/events/" + ids[17],
		"/v1/resources/secret/x-s5/events?limit=10&page=2",
		"/v1/traces/x-t4/events",
		"/v1/aggregates?" + types + "&groupBy=eventType,actorType&interval=hour&metrics=count,actors,resources,ips&top=3",
		"/v1/aggregates?" + types + "&groupBy=actorId&metrics=count",
	} {
		ca, ba := a.Do(t, "GET", q, keysA["read"], nil)
		cb, bb := b.Do(t, "GET", q, keysA["read"], nil)
		cr, br := ref.Do(t, "GET", q, keysRef["read"], nil)
		if ca != 200 || cb != 200 || cr != 200 {
			t.Fatalf("%s: cluster %d/%d, single node %d: %s", q, ca, cb, cr, br)
		}
		want := normalized(t, br)
		if !strings.Contains(want, `"id"`) && !strings.Contains(want, `"count"`) {
			t.Fatalf("%s: the single node answers nothing to compare: %s", q, want)
		}
		if got := normalized(t, ba); got != want {
			t.Errorf("%s through node A differs from the single node:\ncluster %s\nsingle  %s", q, got, want)
		}
		if got := normalized(t, bb); got != want {
			t.Errorf("%s through node B differs from the single node", q)
		}
	}
	// A cursor walk, alternating between the two cluster nodes.
	walk := func(servers []*servertest.Server, key string) []string {
		var got []string
		cursor := ""
		for i := 0; ; i++ {
			q := "/v1/events?" + types + "&limit=64"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			s := servers[i%len(servers)]
			code, body := s.Do(t, "GET", q, key, nil)
			var page struct {
				Events []struct {
					ID string `json:"id"`
				} `json:"events"`
				NextCursor *string `json:"nextCursor"`
			}
			if code != 200 || json.Unmarshal(body, &page) != nil {
				t.Fatalf("cursor walk: %d %s", code, body)
			}
			for _, e := range page.Events {
				got = append(got, e.ID)
			}
			if page.NextCursor == nil {
				return got
			}
			cursor = *page.NextCursor
		}
	}
	if got, want := walk([]*servertest.Server{a, b}, keysA["read"]), walk([]*servertest.Server{ref}, keysRef["read"]); !slices.Equal(got, want) {
		t.Errorf("cursor walk over the cluster: %d events, single node %d; the orders differ", len(got), len(want))
	}
	for _, f := range []string{"ndjson"} {
		q := "/v1/export?format=" + f + "&" + types
		ca, ba := b.Do(t, "GET", q, keysA["read"], nil)
		cr, br := ref.Do(t, "GET", q, keysRef["read"], nil)
		if ca != 200 || cr != 200 {
			t.Fatalf("export %s: %d, %d", f, ca, cr)
		}
		if got, want := ndjsonNormalized(t, ba), ndjsonNormalized(t, br); got != want {
			t.Errorf("%s export differs from the single node's", f)
		}
	}
	for _, f := range []string{"csv", "parquet"} {
		q := "/v1/export?format=" + f + "&" + types
		ca, ba := a.Do(t, "GET", q, keysA["read"], nil)
		if ca != 200 || len(ba) == 0 {
			t.Errorf("export %s through the cluster: %d (%d bytes)", f, ca, len(ba))
		}
		if f == "csv" {
			if n := bytes.Count(ba, []byte("\n")); n != len(ids)+1 {
				t.Errorf("csv export: %d lines, want %d events and a header", n, len(ids))
			}
		}
	}

	// A key revoked through A is refused by B within -key-refresh.
	var key struct{ ID string }
	code, out := a.Do(t, "POST", "/v1/orgs/acme/keys", servertest.AdminToken, []byte(`{"role":"read","name":"tmp"}`))
	if code != 201 || json.Unmarshal(out, &key) != nil {
		t.Fatalf("create key: %d %s", code, out)
	}
	var full struct{ Key string }
	_ = json.Unmarshal(out, &full)
	waitKey(t, b, full.Key)
	if code, out := a.Do(t, "DELETE", "/v1/orgs/acme/keys/"+key.ID, servertest.AdminToken, nil); code/100 != 2 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := b.Do(t, "GET", "/v1/events?limit=1", full.Key, nil); code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B still accepts a key revoked through node A")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitKey waits until s accepts key (keys are re-read every -key-refresh).
func waitKey(tb testing.TB, s *servertest.Server, key string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := s.Do(tb, "GET", "/v1/event-types", key, nil)
		if code != 401 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("key not accepted by %s within 20s", s.Base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SIGKILL of one auditstore node of a cluster while both ingest: after its
// restart on the same data, every acknowledged event is stored exactly once
// (raw rows on the shards, without FINAL).
func TestClusterNodeKilledDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 engines and servers")
	}
	c := chtest.NewCluster(t, 3)
	dirA := t.TempDir()
	a := startClusterServer(t, c, 0, dirA)
	b := startClusterServer(t, c, 2, t.TempDir())
	keys := a.Org(t, "acme", "ingest", "read")
	waitKey(t, b, keys["ingest"])
	// Rows written twice must stay visible as two until counted.
	for _, n := range c.Nodes {
		if err := n.Conn.Exec(context.Background(), "SYSTEM STOP MERGES events_local"); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var acked []string
	send := func(s *servertest.Server, stop <-chan struct{}) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ids, lines := clusterEvents("k", 40)
			code, _, err := doQuiet(s, keys["ingest"], []byte(strings.Join(lines, "\n")+"\n"))
			if err != nil {
				return // the node died mid-request: not acknowledged
			}
			if code == 202 {
				mu.Lock()
				acked = append(acked, ids...)
				mu.Unlock()
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { send(a, stop) })
	wg.Go(func() { send(b, stop) })
	time.Sleep(1500 * time.Millisecond)
	if err := a.Process().Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.WaitExit(t, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	startClusterServer(t, c, 0, dirA) // replays its log

	mu.Lock()
	want := len(acked)
	mu.Unlock()
	if want == 0 {
		t.Fatal("nothing acknowledged before the kill")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts := map[string]uint64{}
		for _, n := range c.Nodes {
			rows, err := n.Conn.Query(context.Background(), "SELECT toString(id), count() FROM events_local WHERE org_id = 'acme' AND event_type LIKE 'k.%' GROUP BY id")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				var k uint64
				if err := rows.Scan(&id, &k); err != nil {
					t.Fatal(err)
				}
				counts[id] += k
			}
			rows.Close()
		}
		missing, twice := 0, 0
		for _, id := range acked {
			switch counts[id] {
			case 0:
				missing++
			case 1:
			default:
				twice++
			}
		}
		if twice > 0 {
			t.Fatalf("%d acknowledged events stored more than once", twice)
		}
		if missing == 0 {
			t.Logf("%d acknowledged events, each stored once (%d stored in all)", want, len(counts))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events missing after the restart", missing, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// doQuiet posts NDJSON to s and returns an error, rather than failing the
// test, when the server goes away mid-request.
func doQuiet(s *servertest.Server, key string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest("POST", s.Base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}
