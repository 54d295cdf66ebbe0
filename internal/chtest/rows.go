package chtest

import (
	"context"
	"strings"
	"testing"

	"github.com/auditstore/auditstore/schema"
)

// InsertRows writes rows straight into the events table of db (no ingest
// path): tests of the read side load their data with it.
func InsertRows(tb testing.TB, db *DB, rows []schema.Row) {
	tb.Helper()
	ctx := context.Background()
	batch, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+schema.EventsTable+" ("+strings.Join(schema.WriteColumns, ", ")+")")
	if err != nil {
		tb.Fatalf("prepare insert: %v", err)
	}
	for i := range rows {
		if err := batch.Append(rows[i].WriteValues()...); err != nil {
			tb.Fatalf("append row %d: %v", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		tb.Fatalf("insert %d rows: %v", len(rows), err)
	}
}
