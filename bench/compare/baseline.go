package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditstore/auditstore/bench/internal/pg"
)

// The baseline is PostgreSQL as the open-source peers store audit logs.
//
// Infisical's audit_logs table (backend/src/db/migrations:
// 20240108134148_audit-log.ts, 20240429154610_audit-log-index.ts,
// 20240522193447_index-audit-logs-project-id-org-id.ts and the later
// partitioning migration): a row per event with jsonb actorMetadata and
// eventMetadata, primary key (id, createdAt), range-partitioned by month on
// createdAt, B-tree indexes on (orgId, createdAt), (projectId, createdAt),
// eventType, userAgentType, expiresAt, and (projectId,
// eventMetadata->>'secretPath', createdAt DESC).
//
// Retraced's indexed_events (migrations/pg10/1510858836.do.indexed_events.sql,
// migrations/pg/1721206581.do.more_indexed_events.sql) keeps the event as
// one jsonb doc and indexes the actor id and the target (resource) id, so
// the baseline adds what a user answering our questions would add, as
// B-trees on the same tenant-first pattern: the actor id, the resource
// (type, id) and the trace id. The events' resource and traceId, which
// Infisical's table lacks, are plain added columns (resourceType,
// resourceId, resourceName, traceId): the strongest layout for them. orgId
// is varchar (uuid in Infisical) because the generated org ids are text.
const ddl = `
CREATE TABLE audit_logs (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    actor           varchar NOT NULL,
    "actorMetadata" jsonb NOT NULL,
    "ipAddress"     varchar,
    "eventType"     varchar NOT NULL,
    "eventMetadata" jsonb,
    "userAgent"     varchar,
    "userAgentType" varchar,
    "expiresAt"     timestamptz,
    "createdAt"     timestamptz NOT NULL DEFAULT now(),
    "updatedAt"     timestamptz NOT NULL DEFAULT now(),
    "orgId"         varchar,
    "projectId"     varchar,
    "projectName"   varchar,
    "resourceType"  varchar,
    "resourceId"    varchar,
    "resourceName"  varchar,
    "traceId"       varchar,
    PRIMARY KEY (id, "createdAt")
) PARTITION BY RANGE ("createdAt");
CREATE INDEX ON audit_logs ("orgId", "createdAt");
CREATE INDEX ON audit_logs ("projectId", "createdAt");
CREATE INDEX ON audit_logs ("eventType");
CREATE INDEX ON audit_logs ("userAgentType");
CREATE INDEX ON audit_logs ("expiresAt");
CREATE INDEX ON audit_logs ("projectId", ("eventMetadata"->>'secretPath'), "createdAt" DESC);
CREATE INDEX ON audit_logs ("orgId", (` + actorExpr + `), "createdAt" DESC);
CREATE INDEX ON audit_logs ("orgId", "resourceType", "resourceId", "createdAt" DESC);
CREATE INDEX ON audit_logs ("orgId", "traceId");
`

// actorExpr is the actor id, as auditstore derives it from actor.metadata.
const actorExpr = `COALESCE("actorMetadata"->>'userId', "actorMetadata"->>'serviceId', ` +
	`"actorMetadata"->>'identityId', "actorMetadata"->>'keyId')`

// copyColumns are the columns copyRow fills, in order.
const copyColumns = `id, actor, "actorMetadata", "ipAddress", "eventType", "eventMetadata", "userAgent", ` +
	`"userAgentType", "expiresAt", "createdAt", "orgId", "projectId", "projectName", "resourceType", ` +
	`"resourceId", "resourceName", "traceId"`

// baseline is one database of the private cluster holding audit_logs.
type baseline struct {
	cluster *pg.Cluster
	db      string
	conn    *pgx.Conn // for queries and sizes
}

// newBaseline creates database db (dropping an older one) with the table
// and monthly partitions from a month before from to a month after to, plus
// a default partition.
func newBaseline(ctx context.Context, c *pg.Cluster, db string, from, to time.Time) (*baseline, error) {
	admin, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	for _, q := range []string{"DROP DATABASE IF EXISTS " + db, "CREATE DATABASE " + db} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	b := &baseline{cluster: c, db: db}
	if b.conn, err = b.connect(ctx); err != nil {
		return nil, err
	}
	var parts strings.Builder
	m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	for ; m.Before(to.AddDate(0, 1, 0)); m = m.AddDate(0, 1, 0) {
		fmt.Fprintf(&parts, "CREATE TABLE audit_logs_%s PARTITION OF audit_logs FOR VALUES FROM ('%s') TO ('%s');\n",
			m.Format("2006_01"), m.Format(time.DateOnly), m.AddDate(0, 1, 0).Format(time.DateOnly))
	}
	parts.WriteString("CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;\n")
	if _, err := b.conn.Exec(ctx, ddl+parts.String()); err != nil {
		b.close(ctx)
		return nil, fmt.Errorf("create audit_logs: %w", err)
	}
	return b, nil
}

// connect opens a connection as an app would: UTC sessions, and unnamed
// statements with parameters (node-postgres and knex do not prepare), so
// that each query is planned for its own values.
func (b *baseline) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(b.cluster.DSN(b.db))
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	return pgx.ConnectConfig(ctx, cfg)
}

func (b *baseline) close(ctx context.Context) {
	if b.conn != nil {
		b.conn.Close(ctx)
	}
}

// drop closes the connection and drops the database.
func (b *baseline) drop(ctx context.Context) error {
	b.close(ctx)
	admin, err := pgx.Connect(ctx, b.cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+b.db+" WITH (FORCE)")
	if err == nil {
		_, err = admin.Exec(ctx, "CHECKPOINT")
	}
	return err
}

// copyLoad runs chunks of COPY text through writers concurrent connections,
// one COPY (one transaction, committed before the next) per chunk, and
// returns the rows loaded. It returns when every COPY has committed.
func (b *baseline) copyLoad(ctx context.Context, writers int, chunks <-chan []byte) (int64, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		rows  int64
		first error
	)
	conns := make([]*pgx.Conn, writers)
	for i := range conns {
		conn, err := b.connect(ctx)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close(ctx)
			}
			return 0, err
		}
		conns[i] = conn
	}
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close(ctx)
			for c := range chunks {
				tag, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(c), "COPY audit_logs ("+copyColumns+") FROM STDIN")
				mu.Lock()
				rows += tag.RowsAffected()
				if err != nil && first == nil {
					first = fmt.Errorf("copy: %w", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return rows, first
}

// settle runs what autovacuum would have done on a table at rest: VACUUM
// (the visibility map that index-only scans need) and ANALYZE.
func (b *baseline) settle(ctx context.Context) error {
	_, err := b.conn.Exec(ctx, "VACUUM (ANALYZE) audit_logs")
	return err
}

// size returns the size on disk of audit_logs: every partition's heap,
// TOAST and indexes.
func (b *baseline) size(ctx context.Context) (int64, error) {
	var n int64
	err := b.conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint
FROM pg_inherits WHERE inhparent = 'audit_logs'::regclass`).Scan(&n)
	return n, err
}

// query runs one shape and reads every row to the end; it returns the rows
// and, for aggregates, the figure the cross-check compares (see shape.pgSig).
func (b *baseline) query(ctx context.Context, sql string, args []any) (rows int, sig int64, err error) {
	r, err := b.conn.Query(ctx, sql, args...)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	for r.Next() {
		vals := r.RawValues()
		if rows == 0 && len(vals) > 0 {
			// aggregates put their figure last: the first row's, read as text
			fmt.Sscan(string(vals[len(vals)-1]), &sig)
		}
		rows++
	}
	return rows, sig, r.Err()
}

// exportCSV is what a user does without us: COPY (SELECT ...) TO STDOUT
// WITH CSV, read by the client to the end. It returns rows and bytes.
func (b *baseline) exportCSV(ctx context.Context, org string) (int64, int64, error) {
	var w countingWriter
	sql := `COPY (SELECT ` + copyColumns + ` FROM audit_logs WHERE "orgId" = '` +
		strings.ReplaceAll(org, "'", "''") + `') TO STDOUT WITH (FORMAT csv, HEADER)`
	tag, err := b.conn.PgConn().CopyTo(ctx, &w, sql)
	return tag.RowsAffected(), w.n, err
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)
