package engine

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestUncompressedCache: an engine with a Password gets the uncompressed
// cache of Config.UncompressedCache (0: none), and a read that asks for it
// (use_uncompressed_cache) repeated hits it: the second read of the same
// blocks takes them from memory.
func TestUncompressedCache(t *testing.T) {
	for _, size := range []int64{64 << 20, 0} {
		cfg := DefaultConfig()
		cfg.Lib, cfg.DataDir, cfg.Logger, cfg.Password = mustLib(t), t.TempDir(), testLogger(t), NewPassword()
		cfg.UncompressedCache = size
		e, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start engine: %v", err)
		}
		t.Cleanup(func() { _ = e.Stop(context.Background()) })
		ctx := context.Background()
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{e.Addr()}, Auth: clickhouse.Auth{Username: User, Password: cfg.Password}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var got uint64
		if err := conn.QueryRow(ctx, "SELECT toUInt64(value) FROM system.server_settings WHERE name = 'uncompressed_cache_size'").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != uint64(size) {
			t.Fatalf("uncompressed_cache_size = %d, want %d", got, size)
		}
		for _, sql := range []string{
			"CREATE TABLE default.blocks (k UInt64, v String) ENGINE = MergeTree ORDER BY k",
			"INSERT INTO default.blocks SELECT number, repeat(toString(number), 20) FROM numbers(200000)",
		} {
			if err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		hits := func() uint64 {
			var n uint64
			if err := conn.QueryRow(ctx, "SELECT toUInt64(sum(value)) FROM system.events WHERE event = 'UncompressedCacheHits'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		read := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"use_uncompressed_cache": 1}))
		var before, after uint64
		for i := 0; i < 2; i++ {
			before = hits()
			var n uint64
			if err := conn.QueryRow(read, "SELECT sum(length(v)) FROM default.blocks WHERE k % 7 = 0").Scan(&n); err != nil {
				t.Fatal(err)
			}
			after = hits()
		}
		if size > 0 && after <= before {
			t.Errorf("cache of %d bytes: the second read hit it %d times, want some", size, after-before)
		}
		if size == 0 && after != before {
			t.Errorf("no cache: the second read hit it %d times", after-before)
		}
	}
}
