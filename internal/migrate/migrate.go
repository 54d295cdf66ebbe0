// Package migrate applies schema's versioned migrations to a ClickHouse
// database and records them, so that running it again is a no-op.
package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Conn is what the runner needs of a ClickHouse connection.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

const createMigrationsTable = "CREATE TABLE IF NOT EXISTS " + schema.MigrationsTable + ` (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY version`

// Run applies, in order, the migrations not yet recorded in the database and
// returns the versions it applied. A recorded migration whose embedded file
// has changed since is an error: migrations are append-only. Each statement
// is idempotent (IF NOT EXISTS), so two servers migrating at once converge.
func Run(ctx context.Context, conn Conn, log *slog.Logger) ([]int, error) {
	return RunTo(ctx, conn, log, int(^uint(0)>>1))
}

// RunTo is Run limited to the migrations up to version last: the schema as
// an older release left it, for upgrade tests.
func RunTo(ctx context.Context, conn Conn, log *slog.Logger, last int) ([]int, error) {
	all, err := schema.Migrations()
	if err != nil {
		return nil, err
	}
	var ms []schema.Migration
	for _, m := range all {
		if m.Version <= last {
			ms = append(ms, m)
		}
	}
	return apply(ctx, conn, log, ms)
}

// apply runs the migrations ms not yet recorded in the database of conn.
func apply(ctx context.Context, conn Conn, log *slog.Logger, ms []schema.Migration) ([]int, error) {
	if err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("create %s: %w", schema.MigrationsTable, err)
	}
	done, err := applied(ctx, conn)
	if err != nil {
		return nil, err
	}
	var ran []int
	for _, m := range ms {
		if sum, ok := done[m.Version]; ok {
			if sum != m.Checksum {
				return ran, fmt.Errorf("migration %04d_%s was changed after it was applied (checksum %s, recorded %s): add a new migration instead",
					m.Version, m.Name, m.Checksum, sum)
			}
			continue
		}
		for i, stmt := range m.Statements {
			if err := Exec(ctx, conn, stmt); err != nil {
				return ran, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		pctx := chconn.WithParams(ctx, map[string]string{
			"v": strconv.Itoa(m.Version), "n": m.Name, "c": m.Checksum}, nil)
		err := conn.Exec(pctx, "INSERT INTO "+schema.MigrationsTable+
			" (version, name, checksum) VALUES ({v:UInt32}, {n:String}, {c:String})")
		if err != nil {
			return ran, fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		log.Info("applied migration", "version", m.Version, "name", m.Name)
		ran = append(ran, m.Version)
	}
	return ran, nil
}

// Exec runs one statement of a migration, unless its guard says otherwise.
func Exec(ctx context.Context, conn Conn, stmt schema.Statement) error {
	if stmt.When != "" {
		run, err := guard(ctx, conn, stmt.When)
		if err != nil {
			return fmt.Errorf("guard: %w", err)
		}
		if !run {
			return nil
		}
	}
	return conn.Exec(ctx, stmt.SQL)
}

// guard runs a statement's "when" query, which returns one UInt8: whether
// the statement should run.
func guard(ctx context.Context, conn Conn, q string) (bool, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	var v uint8
	if !rows.Next() {
		return false, fmt.Errorf("no row from %q", q)
	}
	if err := rows.Scan(&v); err != nil {
		return false, err
	}
	return v != 0, rows.Err()
}

func applied(ctx context.Context, conn Conn) (map[int]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, argMax(checksum, applied_at) FROM "+schema.MigrationsTable+" GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", schema.MigrationsTable, err)
	}
	defer rows.Close()
	done := map[int]string{}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("read %s: %w", schema.MigrationsTable, err)
		}
		done[int(v)] = sum
	}
	return done, rows.Err()
}
