package migrate_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/migrate"
	"github.com/auditstore/auditstore/schema"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustMigrate(tb testing.TB, db *chtest.DB) []int {
	tb.Helper()
	ran, err := migrate.Run(context.Background(), db.Conn, quiet())
	if err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return ran
}

func TestMigrationsRunOnceThenNoop(t *testing.T) {
	db := chtest.NewDB(t)
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if ran := mustMigrate(t, db); len(ran) != len(ms) {
		t.Fatalf("first run applied %v, want all %d migrations", ran, len(ms))
	}
	if ran := mustMigrate(t, db); len(ran) != 0 {
		t.Fatalf("second run applied %v, want none", ran)
	}
	var n uint64
	if err := db.Conn.QueryRow(context.Background(), "SELECT count() FROM "+schema.MigrationsTable+" FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if int(n) != len(ms) {
		t.Fatalf("recorded migrations=%d, want %d", n, len(ms))
	}
}

func TestEventsTableShape(t *testing.T) {
	db := chtest.NewDB(t)
	mustMigrate(t, db)
	var ddl string
	if err := db.Conn.QueryRow(context.Background(), "SHOW CREATE TABLE "+schema.EventsTable).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ENGINE = ReplacingMergeTree",
		"PARTITION BY (intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400), toYYYYMMDD(timestamp))",
		"ORDER BY (org_id, timestamp, id)",
		"TTL toDateTime(expires_at)",
		"`event_type` LowCardinality(String)",
		"`actor_type` LowCardinality(String)",
		"INDEX idx_trace_id trace_id TYPE bloom_filter",
		"INDEX idx_resource_id resource_id TYPE bloom_filter",
		"INDEX idx_actor_id actor_id TYPE bloom_filter",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("SHOW CREATE TABLE lacks %q:\n%s", want, ddl)
		}
	}
	// Every column a writer fills exists.
	for _, col := range schema.InsertColumns {
		if !strings.Contains(ddl, "`"+col+"`") {
			t.Errorf("events table has no column %s", col)
		}
	}
}

func TestChangedMigrationRefused(t *testing.T) {
	db := chtest.NewDB(t)
	mustMigrate(t, db)
	ctx := context.Background()
	if err := db.Conn.Exec(ctx, "INSERT INTO "+schema.MigrationsTable+" (version, name, checksum, applied_at) VALUES (1, 'events', 'edited', now64(3) + 1)"); err != nil {
		t.Fatal(err)
	}
	_, err := migrate.Run(ctx, db.Conn, quiet())
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("err=%v, want a refusal of the changed migration", err)
	}
}

func insertRows(tb testing.TB, db *chtest.DB, rows ...schema.Row) {
	tb.Helper()
	ctx := context.Background()
	batch, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+schema.EventsTable+" ("+strings.Join(schema.InsertColumns, ", ")+")")
	if err != nil {
		tb.Fatal(err)
	}
	for i := range rows {
		if err := batch.Append(rows[i].Values()...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		tb.Fatal(err)
	}
}

func count(tb testing.TB, db *chtest.DB, where string) uint64 {
	tb.Helper()
	var n uint64
	q := "SELECT count() FROM " + schema.EventsTable
	if where != "" {
		q += " WHERE " + where
	}
	if err := db.Conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestRetentionHidesThenDropsExpired(t *testing.T) {
	db := chtest.NewDB(t)
	mustMigrate(t, db)
	plans, err := schema.ParsePlans("blink=3s,pro=90d")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mk := func(org, plan string) schema.Row {
		e := schema.Event{ID: schema.NewEventID(), Timestamp: now,
			Event: schema.EventInfo{Type: "create-secret"}, Actor: schema.Actor{Type: "user"}}
		return schema.NewRow(&e, org, now, plans[plan])
	}
	insertRows(t, db, mk("short", "blink"), mk("long", "pro"))

	visible := func(org string) uint64 {
		return count(t, db, schema.NotExpired+" AND org_id = '"+org+"'")
	}
	if got := visible("short"); got != 1 {
		t.Fatalf("short-lived event before expiry: visible=%d, want 1", got)
	}
	// Wait for the 3 s retention to pass (bounded; not a timing assertion).
	deadline := time.Now().Add(30 * time.Second)
	for visible("short") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("expired event still visible 30s after its retention")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := visible("long"); got != 1 {
		t.Fatalf("long-lived event: visible=%d, want 1", got)
	}
	if err := db.Conn.Exec(context.Background(), "OPTIMIZE TABLE "+schema.EventsTable+" FINAL"); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, "org_id = 'short'"); got != 0 {
		t.Fatalf("expired rows on disk after OPTIMIZE FINAL=%d, want 0", got)
	}
	if got := count(t, db, "org_id = 'long'"); got != 1 {
		t.Fatalf("unexpired rows after OPTIMIZE FINAL=%d, want 1", got)
	}
}

// A re-sent event may be received on another day than its first copy; both
// copies must still land in one partition so that FINAL, finalizing each
// partition on its own, folds them.
func TestResentCopiesShareAPartition(t *testing.T) {
	db := chtest.NewDB(t)
	mustMigrate(t, db)
	plan := schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}
	ts := time.Date(2026, 11, 21, 23, 59, 58, 0, time.UTC)
	e := schema.Event{ID: schema.NewEventID(), Timestamp: ts, Event: schema.EventInfo{Type: "x"}, Actor: schema.Actor{Type: "user"}}
	first := schema.NewRow(&e, "acme", ts.Add(time.Second), plan)
	resent := schema.NewRow(&e, "acme", ts.Add(5*time.Second), plan) // received after midnight
	if first.ExpiresAt.YearDay() == resent.ExpiresAt.YearDay() {
		t.Fatal("test setup: the copies should expire on different days")
	}
	insertRows(t, db, first)
	insertRows(t, db, resent)
	var parts, partitions, folded uint64
	ctx := context.Background()
	if err := db.Conn.QueryRow(ctx, "SELECT count(), uniqExact(partition_id) FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active").Scan(&parts, &partitions); err != nil {
		t.Fatal(err)
	}
	if parts != 2 || partitions != 1 {
		t.Fatalf("copies in %d parts of %d partitions, want 2 parts of 1 partition", parts, partitions)
	}
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM events FINAL SETTINGS do_not_merge_across_partitions_select_final = 1").Scan(&folded); err != nil {
		t.Fatal(err)
	}
	if folded != 1 {
		t.Fatalf("rows through FINAL=%d, want 1", folded)
	}
}
