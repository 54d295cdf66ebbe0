package pg

import (
	"context"
	"errors"
	"testing"
	"time"
)

// MustStart starts a small cluster for a test and stops it in Cleanup; it
// skips the test where PostgreSQL is absent and cannot be installed.
func MustStart(tb testing.TB) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := Ensure(ctx, func(s string) { tb.Log(s) })
	if errors.Is(err, ErrUnavailable) {
		tb.Skipf("skipping: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
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
