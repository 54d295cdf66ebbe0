package query

import (
	"context"
	"math/rand/v2"
	"testing"
)

// TestReadsUseUncompressedCache: a page read again takes its column blocks
// from the server's uncompressed cache (readsql.ReadSettings asks for it;
// the tests' engine has one, as the server's has).
func TestReadsUseUncompressedCache(t *testing.T) {
	e := newEnv(t, nil)
	token := e.org(t, "acme")
	now := testClock()
	e.load(t, genRows(rand.New(rand.NewPCG(5, 6)), "acme", 2000, now))
	ctx := context.Background()
	var size uint64
	if err := e.db.Conn.QueryRow(ctx, "SELECT toUInt64(value) FROM system.server_settings WHERE name = 'uncompressed_cache_size'").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size == 0 {
		t.Skip("this ClickHouse server keeps no uncompressed cache (uncompressed_cache_size = 0)")
	}
	hits := func() uint64 {
		var n uint64
		if err := e.db.Conn.QueryRow(ctx, "SELECT toUInt64(sum(value)) FROM system.events WHERE event = 'UncompressedCacheHits'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const target = "/v1/events?limit=50&actorId=u-2"
	first := e.get(t, token, target).raw
	before := hits()
	again := e.get(t, token, target).raw
	if after := hits(); after <= before {
		t.Errorf("the page read again hit the uncompressed cache %d times, want some", after-before)
	}
	if string(first) != string(again) {
		t.Errorf("the page read again differs:\n%s\n%s", first, again)
	}
}
