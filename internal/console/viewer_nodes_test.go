package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/servertest"
)

// TestViewerExchangeAcrossNodes: two auditstore servers on one ClickHouse
// database, a viewer token exchanged on both at once: one session (both
// answers, if both succeed, carry the same one, and it works on both), one
// audit record, and every later exchange refused on either node.
func TestViewerExchangeAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server binaries")
	}
	db := chtest.NewDB(t)
	if db.HTTPAddr == "" {
		t.Skip("the test ClickHouse has no known HTTP address")
	}
	flags := []string{"-clickhouse", db.Addr, "-clickhouse-http", db.HTTPAddr, "-clickhouse-user", db.User,
		"-clickhouse-password", db.Password, "-clickhouse-database", db.Name, "-console=false"}
	a := servertest.Start(t, flags...)
	b := servertest.Start(t, flags...)
	keys := a.Org(t, "acme", "read", "admin")
	nodes := []*servertest.Server{a, b}
	// waitRows counts the raw copies the nodes write; a background merge
	// would fold them into one before they are counted.
	if err := db.Conn.Exec(context.Background(), "SYSTEM STOP MERGES events"); err != nil {
		t.Fatal(err)
	}

	for round := range 4 {
		viewer := fmt.Sprintf("user-%d", round)
		code, tok := a.JSON(t, "POST", "/v1/viewer-tokens", keys["admin"], map[string]any{"viewerId": viewer})
		if code != 201 {
			t.Fatalf("create token: %d %v", code, tok)
		}
		token := tok["token"].(string)
		type answer struct {
			code    int
			session string
			err     error
		}
		answers := make([]answer, len(nodes))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				answers[i].code, answers[i].session, answers[i].err = exchange(n.Base, token)
			}()
		}
		close(start)
		wg.Wait()
		var sessions []string
		for i, ans := range answers {
			switch {
			case ans.err != nil:
				t.Fatalf("round %d: node %d: %v", round, i, ans.err)
			case ans.code == 201:
				sessions = append(sessions, ans.session)
			case ans.code != 401:
				t.Fatalf("round %d: node %d answered %d", round, i, ans.code)
			}
		}
		if len(sessions) == 0 || (len(sessions) == 2 && sessions[0] != sessions[1]) {
			t.Fatalf("round %d: sessions %q, want one", round, sessions)
		}
		for i, n := range nodes {
			if code, out := n.Do(t, "GET", "/v1/events?limit=1", sessions[0], nil); code != 200 {
				t.Fatalf("round %d: node %d refuses the session: %d %s", round, i, code, out)
			}
			if code, _, err := exchange(n.Base, token); err != nil || code != 401 {
				t.Fatalf("round %d: node %d: a later exchange answered %d %v, want 401", round, i, code, err)
			}
		}
		// Every node that opened the session wrote its record (the rows
		// arrive as the nodes flush); the log shows one.
		waitRows(t, db, viewer, len(sessions))
		a.WaitTotal(t, keys["read"], "eventType=audit-log.viewer-session&actorId="+viewer, 1)
		t.Logf("round %d: %d of 2 exchanges answered 201, one session, one record", round, len(sessions))
	}
}

// exchange posts a viewer token to base's POST /v1/viewer-sessions.
func exchange(base, token string) (int, string, error) {
	body, _ := json.Marshal(map[string]string{"token": token})
	resp, err := http.Post(base+"/v1/viewer-sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var s struct{ Session string }
	_ = json.Unmarshal(out, &s)
	return resp.StatusCode, s.Session, nil
}

// waitRows waits until the events table holds n rows (copies, before
// FINAL) of viewer's session record.
func waitRows(t *testing.T, db *chtest.DB, viewer string, n int) {
	t.Helper()
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"u": viewer}))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got uint64
		if err := db.Conn.QueryRow(ctx, "SELECT count() FROM events WHERE event_type = 'audit-log.viewer-session' AND actor_id = {u:String}").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if int(got) == n {
			return
		}
		if int(got) > n || time.Now().After(deadline) {
			t.Fatalf("rows of %s's session record=%d, want %d", viewer, got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
