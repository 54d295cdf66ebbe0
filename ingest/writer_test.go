package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// TestBatchSentInChunksIsOneInsert: a batch of more rows than the writer
// sends at a time (InsertChunk) is still one INSERT as ClickHouse sees it:
// one part per partition in each table, every row once, a repeat with the
// same token adds nothing, and a row the table refuses in the last chunk
// leaves nothing of the earlier chunks behind. The connection asks the
// server to squash blocks of only 1,000 rows (as a server configured that
// way would): the writer's own settings must keep the batch whole anyway.
func TestBatchSentInChunksIsOneInsert(t *testing.T) {
	db := migrated(t)
	stopMerges(t, db.Conn)
	ctx := context.Background()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:     []string{db.Config.Addr},
		Auth:     clickhouse.Auth{Database: db.Config.Database, Username: "default"},
		Settings: clickhouse.Settings{"min_insert_block_size_rows": 1000, "min_insert_block_size_bytes": 1 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "ALTER TABLE events ADD CONSTRAINT no_poison CHECK trace_id != 'poison'"); err != nil {
		t.Fatal(err)
	}

	n := 3*InsertChunk + 17
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	rows := func(org string) []schema.Row {
		out := make([]schema.Row, n)
		for i := range out {
			out[i] = schema.Row{OrgID: org, Timestamp: base.Add(time.Duration(i) * time.Microsecond), ID: uuid.New(),
				EventType: "create-secret", EventMetadata: fmt.Sprintf(`{"i":%d}`, i), ActorType: "user",
				ActorID: fmt.Sprintf("u%d", i%50), ResourceType: "secret", ResourceID: fmt.Sprintf("s%d", i%70),
				ReceivedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
		}
		return out
	}
	count := func(org string) (events, byKey uint64) {
		t.Helper()
		for q, dst := range map[string]*uint64{"events": &events, "events_by_key": &byKey} {
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+q+" WHERE org_id = ?", org).Scan(dst); err != nil {
				t.Fatal(err)
			}
		}
		return
	}

	good := rows("acme")
	if err := InsertRows(ctx, conn, good, "batch-1"); err != nil {
		t.Fatal(err)
	}
	if e, k := count("acme"); e != uint64(n) || k != 2*uint64(n) {
		t.Fatalf("stored %d events and %d keys, want %d and %d", e, k, n, 2*n)
	}
	for _, table := range []string{"events", "events_by_key"} {
		var parts, partitions uint64
		if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(partition) FROM system.parts WHERE database = currentDatabase() AND table = ? AND active",
			table).Scan(&parts, &partitions); err != nil {
			t.Fatal(err)
		}
		if parts != partitions {
			t.Errorf("%s: %d parts in %d partitions after one batch of %d rows, want one part per partition", table, parts, partitions, n)
		}
	}

	// The same batch again (a retry after an ambiguous failure).
	if err := InsertRows(ctx, conn, good, "batch-1"); err != nil {
		t.Fatal(err)
	}
	if e, k := count("acme"); e != uint64(n) || k != 2*uint64(n) {
		t.Errorf("after a repeat with the same token: %d events and %d keys, want %d and %d", e, k, n, 2*n)
	}

	// A batch whose last row the table refuses: nothing of it is stored,
	// though three chunks went to the server before the refused one.
	bad := rows("globex")
	bad[n-1].TraceID = "poison"
	err = InsertRows(ctx, conn, bad, "batch-2")
	if err == nil || !strings.Contains(err.Error(), "no_poison") {
		t.Fatalf("insert with a refused row: %v, want the constraint's refusal", err)
	}
	if e, k := count("globex"); e != 0 || k != 0 {
		t.Errorf("a refused batch left %d events and %d keys behind, want none", e, k)
	}
}
