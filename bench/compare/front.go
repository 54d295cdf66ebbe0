package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// front is PostgreSQL behind the same kind of Go HTTP layer as auditstore,
// so that the query section compares stores rather than a server against
// a bare database round trip. For each shape it serves the same URL with
// the same parameters and does what auditstore's query path does:
//
//   - authentication: a bearer key whose secret's SHA-256 is looked up in
//     memory (keys live in PostgreSQL, loaded at start, as auditstore
//     caches its keys);
//   - the audit record of the read: a row in a table like audit_logs,
//     committed (PostgreSQL's WAL flushed, synchronous_commit on) before
//     the query runs;
//   - pages: the same SQL as the bare baseline, with the total for "Page X
//     of Y" counted on a second connection alongside it, answered as
//     auditstore's JSON (events, total, page, pages, nextCursor);
//   - aggregates: the baseline's SQL, answered as auditstore's groups.
//
// gin, its error middleware and encoding/json are the ones the server uses.
type front struct {
	pool *connPool
	srv  *httptest.Server
	keys map[string]string // org → bearer token
	orgs map[[32]byte]string
}

// newFront creates the keys table and one key per org in the baseline's
// database and serves the routes on loopback.
func newFront(ctx context.Context, b *baseline, orgs []string) (*front, error) {
	pool, err := newConnPool(ctx, b, 16)
	if err != nil {
		return nil, err
	}
	f := &front{pool: pool, keys: map[string]string{}, orgs: map[[32]byte]string{}}
	// The reads' audit records go to a table like audit_logs (same
	// columns, same indexes) rather than into it, so that the bare SQL
	// asked after the layer sees the same data as auditstore.
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS api_keys (id varchar PRIMARY KEY, "orgId" varchar NOT NULL, "secretHash" bytea NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS audit_logs_reads (LIKE audit_logs INCLUDING ALL)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			pool.Close(ctx)
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	for i, org := range orgs {
		var secret [24]byte
		_, _ = rand.Read(secret[:])
		token := "bk_" + strconv.Itoa(i) + "_" + hex.EncodeToString(secret[:])
		h := sha256.Sum256([]byte(token))
		if _, err := pool.Exec(ctx, `INSERT INTO api_keys VALUES ($1, $2, $3)`, fmt.Sprintf("key-%d", i), org, h[:]); err != nil {
			pool.Close(ctx)
			return nil, err
		}
		f.keys[org] = token
	}
	rows, err := pool.Query(ctx, `SELECT "orgId", "secretHash" FROM api_keys`)
	if err != nil {
		pool.Close(ctx)
		return nil, err
	}
	for rows.Next() {
		var org string
		var h []byte
		if err := rows.Scan(&org, &h); err != nil {
			rows.Close()
			pool.Close(ctx)
			return nil, err
		}
		f.orgs[[32]byte(h)] = org
	}
	rows.Close()
	// Errors (none expected) reach the bench's log.
	log0 := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.Errors(log0), f.authenticate)
	r.GET("/v1/events", f.list)
	r.GET("/v1/resources/:type/:id/events", f.list)
	r.GET("/v1/traces/:trace/events", f.list)
	r.GET("/v1/aggregates", f.aggregates)
	f.srv = httptest.NewServer(r)
	return f, nil
}

func (f *front) close() {
	f.srv.Close()
	f.pool.Close(context.Background())
}

func (f *front) get(client *http.Client, org, target string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+target, nil)
	req.Header.Set("Authorization", "Bearer "+f.keys[org])
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("front: GET %s: %d %s", target, resp.StatusCode, body)
	}
	return body, err
}

func (f *front) authenticate(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	org, known := f.orgs[sha256.Sum256([]byte(token))]
	if !ok || !known {
		_ = c.Error(&schema.Error{Kind: schema.KindUnauthenticated, Code: "unauthenticated", Message: "unknown key"})
		c.Abort()
		return
	}
	c.Set("org", org)
	c.Next()
}

// record writes the audit record of the read and returns once it is
// committed.
func (f *front) record(ctx context.Context, c *gin.Context, org string) error {
	md, _ := json.Marshal(map[string]any{"endpoint": "GET " + c.FullPath(), "params": c.Request.URL.Query()})
	now := time.Now().UTC()
	_, err := f.pool.Exec(ctx, `INSERT INTO audit_logs_reads (actor, "actorMetadata", "ipAddress", "eventType", "eventMetadata", "userAgent",
 "userAgentType", "expiresAt", "createdAt", "orgId") VALUES ('apiKey', '{"keyId":"bench"}', $1, $2, $3, $4, 'api', $5, $6, $7)`,
		c.ClientIP(), schema.EventQuery, string(md), c.Request.UserAgent(), now.Add(keepPlan.Retention), now, org)
	return err
}

// where builds the conditions of a request on audit_logs, with its
// parameters ($1 is the org).
func where(c *gin.Context, org string) (string, []any, error) {
	conds, args := []string{`"orgId" = $1`}, []any{org}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if s := c.Query("from"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return "", nil, schema.Invalid("invalid_parameter", "from: "+err.Error())
		}
		add(`"createdAt" >= $?`, t)
	}
	for _, p := range []struct{ param, cond string }{
		{"eventType", `"eventType" = $?`}, {"projectId", `"projectId" = $?`},
		{"metadata.secretPath", `"eventMetadata"->>'secretPath' = $?`},
	} {
		if v := c.Query(p.param); v != "" {
			add(p.cond, v)
		}
	}
	if v := c.Param("type"); v != "" {
		add(`"resourceType" = $?`, v)
		add(`"resourceId" = $?`, c.Param("id"))
	}
	if v := c.Param("trace"); v != "" {
		add(`"traceId" = $?`, v)
	}
	return "WHERE " + strings.Join(conds, " AND "), args, nil
}

// pageResponse is auditstore's list answer (query.ListResponse).
type pageResponse struct {
	Events     []schema.StoredEvent `json:"events"`
	Total      *int64               `json:"total"`
	Page       *int                 `json:"page"`
	Pages      *int64               `json:"pages"`
	NextCursor *string              `json:"nextCursor"`
}

func (f *front) list(c *gin.Context) {
	ctx, org := c.Request.Context(), c.GetString("org")
	w, args, err := where(c, org)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if err := f.record(ctx, c, org); err != nil {
		_ = c.Error(fmt.Errorf("front: audit record: %w", err))
		return
	}
	var total int64
	var countErr error
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		countErr = f.pool.QueryRow(ctx, "SELECT count(*) FROM audit_logs "+w, args...).Scan(&total)
	}()
	res := pageResponse{Events: []schema.StoredEvent{}}
	rows, err := f.pool.Query(ctx, pageCols+w+` ORDER BY "createdAt" DESC LIMIT 50`, args...)
	if err == nil {
		for rows.Next() {
			var e schema.StoredEvent
			var id [16]byte
			var actorMD, eventMD []byte
			var ip, ua, uat, orgID, project, projectName, resType, resID, resName, trace *string
			var expires *time.Time
			if err = rows.Scan(&id, &e.Actor.Type, &actorMD, &ip, &e.Event.Event.Type, &eventMD, &ua, &uat, &expires, &e.Timestamp,
				&orgID, &project, &projectName, &resType, &resID, &resName, &trace); err != nil {
				break
			}
			e.ID = fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
			e.Actor.Metadata, e.Event.Event.Metadata = actorMD, eventMD
			e.IPAddress, e.UserAgent, e.UserAgentType, e.OrgID = deref(ip), deref(ua), deref(uat), deref(orgID)
			e.ProjectID, e.ProjectName, e.TraceID = deref(project), deref(projectName), deref(trace)
			if resType != nil {
				e.Resource = &schema.Resource{Type: *resType, ID: deref(resID), Name: deref(resName)}
			}
			e.ReceivedAt, e.CreatedAt = e.Timestamp, e.Timestamp
			res.Events = append(res.Events, e)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	<-counted
	if err == nil {
		err = countErr
	}
	if err != nil {
		_ = c.Error(fmt.Errorf("front: %w", err))
		return
	}
	page, pages := 1, (total+49)/50
	res.Total, res.Page, res.Pages = &total, &page, &pages
	c.JSON(http.StatusOK, res)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (f *front) aggregates(c *gin.Context) {
	ctx, org := c.Request.Context(), c.GetString("org")
	w, args, err := where(c, org)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if err := f.record(ctx, c, org); err != nil {
		_ = c.Error(fmt.Errorf("front: audit record: %w", err))
		return
	}
	groups := []map[string]any{}
	var rows pgx.Rows
	switch {
	case c.Query("interval") == "hour":
		rows, err = f.pool.Query(ctx, `SELECT date_trunc('hour', "createdAt") AS t, count(*) FROM audit_logs `+w+` GROUP BY t ORDER BY t`, args...)
		if err == nil {
			for rows.Next() {
				var t time.Time
				var n int64
				if err = rows.Scan(&t, &n); err != nil {
					break
				}
				groups = append(groups, map[string]any{"time": t.UTC(), "count": n})
			}
		}
	case c.Query("groupBy") == "actorId":
		rows, err = f.pool.Query(ctx, `SELECT `+actorExpr+` AS a, count(DISTINCT "resourceType" || ':' || "resourceId") AS resources, count(*) AS n
FROM audit_logs `+w+` GROUP BY a ORDER BY n DESC LIMIT 10`, args...)
		if err == nil {
			for rows.Next() {
				var a *string
				var res, n int64
				if err = rows.Scan(&a, &res, &n); err != nil {
					break
				}
				groups = append(groups, map[string]any{"actorId": deref(a), "count": n, "resources": res})
			}
		}
	default:
		_ = c.Error(schema.Invalid("invalid_parameter", "the front serves the hourly histogram and the top actors only"))
		return
	}
	if rows != nil {
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		_ = c.Error(fmt.Errorf("front: %w", err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"groups": groups})
}

// connPool is a fixed set of connections (the bench keeps to the pgx
// package the baseline already uses): a request takes one for a query.
type connPool struct{ conns chan *pgx.Conn }

func newConnPool(ctx context.Context, b *baseline, n int) (*connPool, error) {
	p := &connPool{conns: make(chan *pgx.Conn, n)}
	for range n {
		c, err := b.connect(ctx)
		if err != nil {
			p.Close(ctx)
			return nil, err
		}
		p.conns <- c
	}
	return p, nil
}

// Close closes the connections not in use.
func (p *connPool) Close(ctx context.Context) {
	for {
		select {
		case c := <-p.conns:
			c.Close(ctx)
		default:
			return
		}
	}
}

func (p *connPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c := <-p.conns
	defer func() { p.conns <- c }()
	return c.Exec(ctx, sql, args...)
}

// QueryRow runs a query of one row and scans it.
func (p *connPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c := <-p.conns
	return &pooledRow{row: c.QueryRow(ctx, sql, args...), release: func() { p.conns <- c }}
}

type pooledRow struct {
	row     pgx.Row
	release func()
}

func (r *pooledRow) Scan(dest ...any) error {
	defer r.release()
	return r.row.Scan(dest...)
}

// Query returns rows that give their connection back when closed.
func (p *connPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c := <-p.conns
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		p.conns <- c
		return nil, err
	}
	return &pooledRows{Rows: rows, release: func() { p.conns <- c }}, nil
}

type pooledRows struct {
	pgx.Rows
	release func()
	once    bool
}

func (r *pooledRows) Close() {
	r.Rows.Close()
	if !r.once {
		r.once = true
		r.release()
	}
}
