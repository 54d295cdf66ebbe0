package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// mustLib returns the cached engine library, fetching it if needed.
func mustLib(tb testing.TB) string {
	tb.Helper()
	cache, err := DefaultCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	lib, err := Fetch(context.Background(), cache, nil)
	if err != nil {
		tb.Fatalf("fetch engine: %v", err)
	}
	return lib
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func mustStart(tb testing.TB, dataDir string) *Engine {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Logger = mustLib(tb), dataDir, testLogger(tb)
	e, err := Start(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("start engine: %v", err)
	}
	tb.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	e := mustStart(t, dir)
	writeKeep(t, e)
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-e.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}

	e2 := mustStart(t, dir)
	if n := keepRows(t, e2); n != 2 {
		t.Fatalf("rows after restart=%d, want 2", n)
	}
}

// writeKeep creates keep.t on e and inserts two rows.
func writeKeep(tb testing.TB, e *Engine) {
	tb.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{e.Addr()}})
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS keep",
		"CREATE TABLE keep.t (k UInt64, v String) ENGINE = MergeTree ORDER BY k",
		"INSERT INTO keep.t VALUES (1, 'one'), (2, 'two')",
	} {
		if err := conn.Exec(context.Background(), q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// keepRows counts the rows of keep.t on e.
func keepRows(tb testing.TB, e *Engine) uint64 {
	tb.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{e.Addr()}})
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM keep.t").Scan(&n); err != nil {
		tb.Fatalf("count keep.t: %v", err)
	}
	return n
}

func TestDeathIsReported(t *testing.T) {
	e := mustStart(t, t.TempDir())
	if err := e.Err(); err != nil {
		t.Fatalf("Err while running = %v, want nil", err)
	}
	if err := e.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed 30s after the engine was killed")
	}
	err := e.Err()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Err after kill = %v, want an error saying it was killed", err)
	}
}

func TestEphemeralRemovesData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eph")
	cfg := DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Logger, cfg.Ephemeral = mustLib(t), dir, testLogger(t), true
	e, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data dir while running: %v", err)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir after stop: err=%v, want not exist", err)
	}
}

func TestStartFailsClearly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Logger = filepath.Join(t.TempDir(), "missing.so"), t.TempDir(), testLogger(t)
	cfg.StartTimeout = 20 * time.Second
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "missing.so") {
		t.Fatalf("Start with a missing library: err=%v, want one naming the library", err)
	}
}

func TestFetchWithoutNPM(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Fetch(context.Background(), t.TempDir(), nil)
	if !errors.Is(err, ErrNoNPM) {
		t.Fatalf("err=%v, want ErrNoNPM", err)
	}
	if !strings.Contains(ErrNoNPM.Error(), "-clickhouse") {
		t.Fatalf("ErrNoNPM does not name the alternative: %q", ErrNoNPM)
	}
}

func TestIntegrityMismatch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.tgz")
	if err := os.WriteFile(p, []byte("not the engine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := checkIntegrity(p)
	if err == nil || !strings.Contains(err.Error(), "integrity mismatch") {
		t.Fatalf("err=%v, want integrity mismatch", err)
	}
}

func TestUnpackLib(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{"package/index.js": "x", libInTar: "ELF-ish"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	gz.Close()
	tgz := filepath.Join(dir, "p.tgz")
	if err := os.WriteFile(tgz, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, libName)
	if err := unpackLib(tgz, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || string(got) != "ELF-ish" {
		t.Fatalf("unpacked=%q err=%v, want %q", got, err, "ELF-ish")
	}
}

func TestCachedNeedsCompleteMark(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, libName), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if cached(dir) {
		t.Fatal("cached without the complete mark")
	}
	if err := os.WriteFile(filepath.Join(dir, readyMark), []byte("sha512-other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cached(dir) {
		t.Fatal("cached with a mark of another integrity")
	}
	if err := os.WriteFile(filepath.Join(dir, readyMark), []byte(Integrity+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !cached(dir) {
		t.Fatal("not cached with lib and mark")
	}
}

func TestSupervisorRestartsOnTheSamePorts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Logger = mustLib(t), t.TempDir(), testLogger(t)
	s, err := StartSupervised(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	ctx := context.Background()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE TABLE default.kept (k UInt8) ENGINE = MergeTree ORDER BY k"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "INSERT INTO default.kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	first := s.PID()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Err() == nil && s.Restarts() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("death not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for s.Restarts() == 0 || s.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not restarted within 30s: %v", s.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.PID() == first {
		t.Fatal("same pid after a restart")
	}
	var k uint8
	if err := conn.QueryRow(ctx, "SELECT k FROM default.kept").Scan(&k); err != nil || k != 7 {
		t.Fatalf("after restart on %s: k=%d err=%v, want 7", s.Addr(), k, err)
	}
}

// TestStartWaitsForThePreviousEngine starts an engine on the data of one
// still running (an engine orphaned by a killed server shuts down on its
// own, but a server restarted at once finds it there): the second start
// waits for the first to let go of the data, then starts and finds its
// tables, instead of failing on ClickHouse's lock.
func TestStartWaitsForThePreviousEngine(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first := mustStart(t, dir)
	writeKeep(t, first)

	type started struct {
		e   *Engine
		err error
	}
	second := make(chan started, 1)
	lib := mustLib(t)
	go func() {
		cfg := DefaultConfig()
		cfg.Lib, cfg.DataDir, cfg.Logger = lib, dir, testLogger(t)
		e, err := Start(ctx, cfg)
		second <- started{e, err}
	}()
	select {
	case s := <-second:
		if s.e != nil {
			_ = s.e.Stop(ctx)
		}
		t.Fatalf("a second engine on the data of a running one returned (err=%v), want it to wait", s.err)
	case <-time.After(3 * time.Second):
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatalf("stop the first engine: %v", err)
	}
	var s started
	select {
	case s = <-second:
	case <-time.After(90 * time.Second):
		t.Fatal("the second engine did not start within 90s of the first one's stop")
	}
	if s.err != nil {
		t.Fatalf("second start after the first engine stopped: %v", s.err)
	}
	t.Cleanup(func() { _ = s.e.Stop(ctx) })
	if n := keepRows(t, s.e); n != 2 {
		t.Fatalf("rows through the second engine=%d, want 2", n)
	}
}

// TestStartGivesUpOnAHeldLock: an engine that never lets go of the data
// makes a second start fail within StartTimeout, saying so.
func TestStartGivesUpOnAHeldLock(t *testing.T) {
	dir := t.TempDir()
	mustStart(t, dir)
	cfg := DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Logger = mustLib(t), dir, testLogger(t)
	cfg.StartTimeout = 2 * time.Second
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "still holds") {
		t.Fatalf("Start on the data of a running engine: err=%v, want one saying another engine holds it", err)
	}
}
