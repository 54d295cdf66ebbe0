package chtest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestComposePinsTheTestImage(t *testing.T) {
	compose, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := "image: " + ImageRepository + ":" + ImageTag
	if !strings.Contains(string(compose), want) {
		t.Fatalf("docker-compose.yml does not contain %q", want)
	}
}

func TestNewDBIsFreshAndDropped(t *testing.T) {
	var name string
	var cfgAddr string
	t.Run("use", func(t *testing.T) {
		db := NewDB(t)
		name, cfgAddr = db.Name, db.Addr
		var n uint64
		if err := db.Conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = currentDatabase()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("tables in a fresh database=%d, want 0", n)
		}
		if err := db.Conn.Exec(context.Background(), "CREATE TABLE x (a UInt8) ENGINE = Memory"); err != nil {
			t.Fatal(err)
		}
	})
	other := NewDB(t)
	if other.Addr != cfgAddr {
		t.Fatalf("second database on another server: %s vs %s", other.Addr, cfgAddr)
	}
	var n uint64
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"n": name}))
	if err := other.Conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = {n:String}").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}
