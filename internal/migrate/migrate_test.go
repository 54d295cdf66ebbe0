package migrate_test

import (
	"context"
	"fmt"
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
		"PARTITION BY (intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400), toYYYYMM(timestamp))",
		"`metadata_hashes` Array(UInt64) DEFAULT",
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
	ts := time.Date(2026, 11, 30, 23, 59, 58, 0, time.UTC)
	e := schema.Event{ID: schema.NewEventID(), Timestamp: ts, Event: schema.EventInfo{Type: "x"}, Actor: schema.Actor{Type: "user"}}
	first := schema.NewRow(&e, "acme", ts.Add(time.Second), plan)
	resent := schema.NewRow(&e, "acme", ts.Add(5*time.Second), plan) // received in the next month
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

// An install of the daily-partitioned layout (migrations up to 0006) with
// events in it upgrades to the monthly one: every event kept once, the
// lookup table still fed, the metadata hashes computed for the old rows;
// and the migration can run again from its start after stopping anywhere.
func TestUpgradeToMonthlyPartitions(t *testing.T) {
	db := chtest.NewDB(t)
	ctx := context.Background()
	if _, err := migrate.RunTo(ctx, db.Conn, quiet(), 6); err != nil {
		t.Fatal(err)
	}
	plan := schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}
	now := time.Now()
	var old []schema.Row
	for i := range 300 {
		e := schema.Event{ID: schema.NewEventID(), Timestamp: now.Add(-time.Duration(i) * 7 * time.Hour),
			Event:    schema.EventInfo{Type: "x", Metadata: []byte(fmt.Sprintf(`{"n":%d,"env":"prod","deep":{"k":%v}}`, i%10, i%2 == 0))},
			Actor:    schema.Actor{Type: "user", Metadata: []byte(fmt.Sprintf(`{"userId":"u%d"}`, i%7))},
			Resource: &schema.Resource{Type: "secret", ID: fmt.Sprintf("s%d", i%5)}}
		old = append(old, schema.NewRow(&e, "acme", now, plan))
	}
	insertRows(t, db, old...)
	insertRows(t, db, old[:50]...) // re-sent copies, not yet merged

	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	m7 := ms[6]
	if m7.Version != 7 {
		t.Fatalf("migration 7 is %d", m7.Version)
	}
	// Stopped after the copy, then run again from the start, then a third
	// time as if it had stopped before being recorded.
	for _, st := range m7.Statements[:2] {
		if err := migrate.Exec(ctx, db.Conn, st); err != nil {
			t.Fatal(err)
		}
	}
	// Up to 7 only: later migrations are not this test's business.
	if ran, err := migrate.RunTo(ctx, db.Conn, quiet(), 7); err != nil || len(ran) != 1 || ran[0] != 7 {
		t.Fatalf("applied %v (%v), want [7]", ran, err)
	}
	for _, st := range m7.Statements {
		if err := migrate.Exec(ctx, db.Conn, st); err != nil {
			t.Fatal(err)
		}
	}

	var key string
	if err := db.Conn.QueryRow(ctx, "SELECT partition_key FROM system.tables WHERE database = currentDatabase() AND name = 'events'").Scan(&key); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(key, "toYYYYMM(timestamp)") {
		t.Fatalf("partition key %q, want the monthly one", key)
	}
	var events, distinct, leftover, keyed, hashed uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count(), uniqExact(id) FROM events FINAL").Scan(&events, &distinct); err != nil {
		t.Fatal(err)
	}
	if events != 300 || distinct != 300 {
		t.Fatalf("after the upgrade: %d rows through FINAL, %d ids; want 300 and 300", events, distinct)
	}
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'events_0007'").Scan(&leftover); err != nil {
		t.Fatal(err)
	}
	if leftover != 0 {
		t.Fatal("the old table is still there")
	}
	// Old rows got their hashes: env=prod everywhere, deep.k=true on even i.
	prod := schema.MetadataLeafHash(schema.KindString, []string{"env"}, "prod")
	deep := schema.MetadataLeafHash(schema.KindBool, []string{"deep", "k"}, schema.MetadataBool(true))
	if err := db.Conn.QueryRow(ctx, fmt.Sprintf("SELECT countIf(has(metadata_hashes, %d)), countIf(has(metadata_hashes, %d)) FROM events FINAL", prod, deep)).Scan(&hashed, &keyed); err != nil {
		t.Fatal(err)
	}
	if hashed != 300 || keyed != 150 {
		t.Fatalf("hashes: env=prod on %d rows (want 300), deep.k=true on %d (want 150)", hashed, keyed)
	}
	// The lookup table is fed by inserts into the new table.
	e := schema.Event{ID: schema.NewEventID(), Timestamp: now, Event: schema.EventInfo{Type: "x"},
		Actor: schema.Actor{Type: "user", Metadata: []byte(`{"userId":"after"}`)}}
	insertRows(t, db, schema.NewRow(&e, "acme", now, plan))
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM events_by_key FINAL WHERE org_id = 'acme' AND key_kind = 'actor' AND key = 'after'").Scan(&keyed); err != nil {
		t.Fatal(err)
	}
	if keyed != 1 {
		t.Fatalf("events_by_key rows for an event inserted after the upgrade: %d, want 1", keyed)
	}
}

// The hashes writers compute (schema.MetadataHashes) equal those of the
// column's DEFAULT, which ClickHouse computes for a writer that leaves the
// column out and for rows copied by the upgrade.
func TestMetadataHashesMatchTheDefault(t *testing.T) {
	db := chtest.NewDB(t)
	mustMigrate(t, db)
	ctx := context.Background()
	docs := []string{
		``, `{}`, `{"a":"x"}`, `{"a":""}`, `{"a":3}`, `{"a":3.0}`, `{"a":3e0}`, `{"a":-0}`, `{"a":0}`, `{"a":-0.0}`,
		`{"a":0.1}`, `{"a":-2.5e-300}`, `{"a":18446744073709551615}`, `{"a":-9223372036854775808}`, `{"a":123456789012345678901234567890}`,
		`{"a":true,"b":false,"c":null,"d":[1,"x",{"e":1}]}`,
		`{"s":"é€ \"quoted\"","t":"line\nbreak","u":"back\\slash","v":"x\u00e9","w":"\ud83d\ude00"}`,
		`{"o":{"p":"q","n":7,"b":true,"z":null,"arr":[1],"deep":{"x":"y"}},"k":"v"}`,
		`{"x.y":"dot","k-1":"dash","under_score":1,"":"empty key","a":{"":"empty inner"}}`,
		`{"dup":"one","dup":"two","o":{"i":1,"i":2}}`,
		`{"\u0061bc":"escaped key","o":{"\u00e9":"é"}}`,
		`{"secretPath":"/apps/billing/config","environment":"staging","secretVersion":7,"client":{"sdk":"python","version":"3.8.2"}}`,
	}
	plan := schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}
	now := time.Now()
	var byGo, bySQL []schema.Row
	for i, d := range docs {
		for j, rows := range []*[]schema.Row{&byGo, &bySQL} {
			e := schema.Event{ID: schema.NewEventID(), Timestamp: now, Event: schema.EventInfo{Type: fmt.Sprintf("doc-%d-%d", i, j), Metadata: []byte(d)},
				Actor: schema.Actor{Type: "user"}}
			*rows = append(*rows, schema.NewRow(&e, "acme", now, plan))
		}
	}
	chtest.InsertRows(t, db, byGo) // WriteColumns: hashes from Go
	insertRows(t, db, bySQL...)    // InsertColumns: hashes from the DEFAULT
	rows, err := db.Conn.Query(ctx, "SELECT event_type, arraySort(metadata_hashes) FROM events ORDER BY event_type")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string][]uint64{}
	for rows.Next() {
		var typ string
		var hs []uint64
		if err := rows.Scan(&typ, &hs); err != nil {
			t.Fatal(err)
		}
		got[typ] = hs
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		goHashes, sqlHashes := got[fmt.Sprintf("doc-%d-0", i)], got[fmt.Sprintf("doc-%d-1", i)]
		if fmt.Sprint(goHashes) != fmt.Sprint(sqlHashes) {
			t.Errorf("metadata %s: Go hashes %v, DEFAULT %v", d, goHashes, sqlHashes)
		}
	}
	if n := len(got["doc-21-0"]); n != 5 {
		t.Errorf("the realistic document has %d hashes, want 5 (3 at depth 1, 2 at depth 2)", n)
	}
}
