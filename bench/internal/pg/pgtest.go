package pg

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestEnv opts a test run into the PostgreSQL tests. Tests never install
// anything: whoever sets it (.ci/run does) installs Debian's postgresql
// package first.
const TestEnv = "AUDITSTORE_TEST_POSTGRES"

// MustStart starts a small cluster for a test and stops it in Cleanup. It
// skips the test unless TestEnv is 1, and fails it when TestEnv is set but
// no PostgreSQL binaries are installed.
func MustStart(tb testing.TB) *Cluster {
	tb.Helper()
	if os.Getenv(TestEnv) != "1" {
		tb.Skipf("skipping: PostgreSQL tests are opt-in; install Debian's postgresql package and set %s=1", TestEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := Find()
	if err != nil {
		tb.Fatalf("%s=1 but no PostgreSQL binaries: %v", TestEnv, err)
	}
	cfg := DefaultConfig()
	cfg.BinDir = bin
	cfg.Settings["shared_buffers"] = "32MB"
	c, err := Start(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Stop() })
	return c
}
