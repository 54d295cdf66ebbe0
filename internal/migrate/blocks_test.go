package migrate_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/schema"
)

// A read of one event decompresses about the granule that holds it
// (migration 0014), not the 64 KiB-1 MiB blocks ClickHouse writes by
// default, in which a small column's block spans many granules. The same
// events in a twin table with ClickHouse's default block sizes are the
// baseline: the migrated table must decompress under 60 % of its bytes
// (32 % when written: 2.7 MB against 8.5 MB).
func TestPointReadDecompressesLittle(t *testing.T) {
	db := chtest.NewDB(t)
	mustMigrate(t, db)
	ctx := context.Background()

	rnd := rand.New(rand.NewPCG(14, 1))
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[rnd.IntN(16)]
		}
		return string(b)
	}
	// 22 hours of events from the first of a month, all in one monthly
	// partition (a start relative to now would split them over two on a
	// month's first day, and the bytes logged would differ): this month's
	// first, or last month's while this month has not had a day yet.
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if now.Sub(start) < 24*time.Hour {
		start = start.AddDate(0, -1, 0)
	}
	plan := schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}
	const n = 40000
	rows := make([]schema.Row, n)
	for i := range rows {
		ts := start.Add(time.Duration(i) * 2 * time.Second)
		actor := fmt.Sprintf("user-%d", rnd.IntN(500))
		rows[i] = schema.Row{
			OrgID: "acme", Timestamp: ts, ID: uuid.New(),
			EventType:     fmt.Sprintf("type-%d", rnd.IntN(40)),
			EventMetadata: fmt.Sprintf(`{"path":"/apps/%s","version":%d,"note":"%s"}`, hex(12), rnd.IntN(1000), hex(200)),
			ActorType:     "user", ActorID: actor, ActorEmail: actor + "@example.com", ActorUsername: actor, ActorName: "User " + actor,
			ActorMetadata: fmt.Sprintf(`{"userId":"%s","session":"%s"}`, actor, hex(32)),
			ProjectID:     fmt.Sprintf("p-%d", rnd.IntN(20)), ProjectName: "project",
			ResourceType: "secret", ResourceID: "sec-" + hex(10), ResourceName: hex(16),
			IPAddress: fmt.Sprintf("10.%d.%d.%d", rnd.IntN(256), rnd.IntN(256), rnd.IntN(256)),
			UserAgent: "cli/1.0", UserAgentType: "cli", TraceID: hex(32),
			ReceivedAt: ts, ExpiresAt: ts.Add(plan.Retention),
		}
	}
	insertRows(t, db, rows...)

	const twin = "events_default_blocks"
	for _, q := range []string{
		"CREATE TABLE " + twin + " AS " + schema.EventsTable,
		"ALTER TABLE " + twin + " MODIFY SETTING min_compress_block_size = 65536, max_compress_block_size = 1048576",
		"INSERT INTO " + twin + " SELECT * FROM " + schema.EventsTable,
		"OPTIMIZE TABLE " + schema.EventsTable + " FINAL",
		"OPTIMIZE TABLE " + twin + " FINAL",
	} {
		if err := db.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// Decompressed bytes of reading one event, every column, by its key.
	decompressed := func(table string, r schema.Row) int64 {
		t.Helper()
		var got int64
		qctx := clickhouse.Context(ctx, clickhouse.WithProfileEvents(func(evs []clickhouse.ProfileEvent) {
			for _, e := range evs {
				if e.Name == "CompressedReadBufferBytes" {
					got += e.Value
				}
			}
		}))
		rs, err := db.Conn.Query(qctx, "SELECT * FROM "+table+" WHERE org_id = {org:String} AND timestamp = {ts:DateTime64(3, 'UTC')} AND id = {id:UUID}",
			clickhouse.Named("org", r.OrgID), clickhouse.Named("ts", r.Timestamp.Format("2006-01-02 15:04:05.000")), clickhouse.Named("id", r.ID.String()))
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for rs.Next() {
			found++
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		if found != 1 {
			t.Fatalf("%s: rows for one key=%d, want 1", table, found)
		}
		return got
	}
	var small, dflt int64
	for _, i := range []int{n / 5, n / 2, 4 * n / 5} {
		small += decompressed(schema.EventsTable, rows[i])
		dflt += decompressed(twin, rows[i])
	}
	t.Logf("three point reads decompressed %d bytes, %d with ClickHouse's default blocks", small, dflt)
	if small == 0 || dflt == 0 {
		t.Fatalf("no decompressed bytes reported (%d, %d): the profile events did not arrive", small, dflt)
	}
	if 5*small > 3*dflt {
		t.Fatalf("point reads decompressed %d bytes, want under 60 %% of the default blocks' %d", small, dflt)
	}
}
