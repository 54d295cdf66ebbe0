package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/engine"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/schema"
)

// ours is auditstore on one ClickHouse database of the private engine: the
// real server binary (benchutil.StartServer) in front of it, and a direct
// connection for loading, counting and sizes.
type ours struct {
	eng  *engine.Engine
	db   string
	conn driver.Conn
	srv  *benchutil.Server
	keys map[string]string // org → key
}

// openOurs connects to database db (creating it and its tables).
func openOurs(ctx context.Context, e *engine.Engine, db string) (*ours, error) {
	cfg := chconn.DefaultConfig()
	cfg.Addr, cfg.Database = e.Addr(), db
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := migrate.Run(ctx, conn, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		conn.Close()
		return nil, err
	}
	return &ours{eng: e, db: db, conn: conn, keys: map[string]string{}}, nil
}

// serve starts the server binary (built once into e.work) on the
// database, with its write-ahead log under e.work, and creates the orgs on
// their plans with a key of role each. The server stops in drop, or in
// e's cleanups.
func (o *ours) serve(e *env, orgs []orgPlan, role string) {
	srv := benchutil.StartServer(e.work, "-data", filepath.Join(e.work, "data-"+o.db), "-clickhouse", o.eng.Addr(),
		"-clickhouse-http", o.eng.HTTPAddr(), "-clickhouse-database", o.db, "-log-level", "warn")
	o.srv = srv
	e.clean.add(srv.Stop)
	for _, op := range orgs {
		o.keys[op.id] = o.srv.OrgKey(op.id, op.plan, role)
	}
}

type orgPlan struct{ id, plan string }

// drop stops the server and drops the database.
func (o *ours) drop(ctx context.Context) error {
	if o.srv != nil {
		o.srv.Stop()
	}
	err := o.conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+o.db+"` SYNC")
	o.conn.Close()
	return err
}

// count returns the stored events the bench sent (not the store's own
// audit events, whose user agent type is "api").
func (o *ours) count(ctx context.Context) (uint64, error) {
	var n uint64
	err := o.conn.QueryRow(ctx, "SELECT count() FROM events WHERE user_agent_type != 'api'").Scan(&n)
	return n, err
}

// size returns the bytes on disk of the active parts of the events table.
func (o *ours) size(ctx context.Context) (int64, error) {
	var n uint64
	err := o.conn.QueryRow(ctx, "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = ? AND table = 'events'",
		o.db).Scan(&n)
	return int64(n), err
}

// settle merges the table's parts (what background merges reach at rest).
func (o *ours) settle(ctx context.Context) error {
	return o.conn.Exec(ctx, "OPTIMIZE TABLE events FINAL")
}

// post sends bodies (orgOf[i] is the org of body i) from clients
// concurrent HTTP clients, as bench/ingest does, and returns when every
// request is acknowledged (202: durable in the write-ahead log) and want
// events are visible in ClickHouse.
func (o *ours) post(ctx context.Context, bodies [][]byte, orgOf []string, clients int, want uint64) (time.Duration, error) {
	next := make(chan int, len(bodies))
	for i := range bodies {
		next <- i
	}
	close(next)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var (
		wg       sync.WaitGroup
		backoffs atomic.Int64
		mu       sync.Mutex
		first    error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				for !failed() {
					req, _ := http.NewRequest("POST", o.srv.Base+"/v1/events", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", "Bearer "+o.keys[orgOf[i]])
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						fail(err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						break
					}
					// 503 is the server's back-pressure (the write-ahead log
					// is full while ClickHouse catches up, or it is being
					// repaired): a client backs off and sends again. The
					// clock keeps running, so it counts against the rate.
					if resp.StatusCode != http.StatusServiceUnavailable || time.Since(start) > 30*time.Minute {
						fail(fmt.Errorf("ingest: %d %s", resp.StatusCode, body))
						return
					}
					backoffs.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	if n := backoffs.Load(); n > 0 {
		log.Printf("ingest: %d answers were 503 (back-pressure), each sent again after 100 ms", n)
	}
	for deadline := time.Now().Add(10 * time.Minute); ; {
		n, err := o.count(ctx)
		if err != nil {
			return 0, err
		}
		if n >= want {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("ingest: %d of %d events visible after 10 minutes", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// insertRows is the raw columnar INSERT the ingest path ends in: batches of
// rows straight into ClickHouse.
func (o *ours) insertRows(ctx context.Context, rows []schema.Row, token string) error {
	return ingest.InsertRows(ctx, o.conn, rows, token)
}

// get runs one GET with the org's key and returns the body.
func (o *ours) get(client *http.Client, org, target string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, o.srv.Base+target, nil)
	req.Header.Set("Authorization", "Bearer "+o.keys[org])
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", target, resp.StatusCode, body)
	}
	return body, err
}

// signature reads what the cross-check compares from an answer: the
// events of a page, or for an aggregate the number of groups (histogram)
// or the count of the first kept group (top).
func signature(s shape, body []byte) (rows int, sig int64, err error) {
	var v struct {
		Events []json.RawMessage `json:"events"`
		Groups []map[string]any  `json:"groups"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, 0, err
	}
	if !s.agg {
		return len(v.Events), 0, nil
	}
	for _, g := range v.Groups {
		if g["other"] == nil {
			c, _ := g["count"].(float64)
			return len(v.Groups), int64(c), nil
		}
	}
	return len(v.Groups), 0, nil
}

// export downloads the org's whole log as Parquet through the server and
// returns the bytes read.
func (o *ours) export(client *http.Client, org string) (int64, error) {
	req, _ := http.NewRequest(http.MethodGet, o.srv.Base+"/v1/export?format=parquet", nil)
	req.Header.Set("Authorization", "Bearer "+o.keys[org])
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("export: %d", resp.StatusCode)
	}
	return n, err
}
