package pg

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestLifecycle(t *testing.T) {
	c := MustStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !strings.HasPrefix(c.Dir(), os.TempDir()) {
		t.Errorf("cluster dir %s is not under %s", c.Dir(), os.TempDir())
	}
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var shared string
	if err := conn.QueryRow(ctx, "SHOW shared_buffers").Scan(&shared); err != nil || shared != "32MB" {
		t.Errorf("shared_buffers=%q (%v), want the setting given, 32MB", shared, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, doc jsonb NOT NULL, at timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var data strings.Builder
	for i := range 100 {
		fmt.Fprintf(&data, "%d\t{\"n\": %d, \"path\": \"a\\\\\\\\b\"}\t2026-01-01T00:00:%02dZ\n", i, i, i%60)
	}
	tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(data.String()), "COPY t (id, doc, at) FROM STDIN")
	if err != nil || tag.RowsAffected() != 100 {
		t.Fatalf("copy: %v rows=%d, want 100", err, tag.RowsAffected())
	}
	var n int
	var path string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(doc->>'path') FROM t WHERE (doc->>'n')::int >= 50`).Scan(&n, &path); err != nil {
		t.Fatal(err)
	}
	if n != 50 || path != `a\b` {
		t.Errorf("rows=%d path=%q, want 50 and a\\b", n, path)
	}
	conn.Close(ctx)

	dir, port, pid := c.Dir(), c.Port(), c.PID()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster dir %s still exists after Stop (%v)", dir, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("postmaster %d still runs after Stop", pid)
	}
	if l, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		l.Close()
		t.Errorf("port %d still answers after Stop", port)
	}
}

func TestProductionSettings(t *testing.T) {
	s := ProductionSettings(24 << 30)
	for k, want := range map[string]string{"shared_buffers": "6144MB", "effective_cache_size": "12288MB",
		"fsync": "on", "synchronous_commit": "on"} {
		if s[k] != want {
			t.Errorf("%s=%q, want %q", k, s[k], want)
		}
	}
	if s := ProductionSettings(64 << 30); s["shared_buffers"] != "8192MB" {
		t.Errorf("shared_buffers=%q at 64 GiB, want the 8 GiB cap", s["shared_buffers"])
	}
}
