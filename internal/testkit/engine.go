package testkit

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/auditstore/auditstore/internal/engine"
	"github.com/auditstore/auditstore/internal/servertest"
)

// EngineConfig returns the configuration of an embedded ClickHouse that a
// test owns, to stop and start again on the same ports and data (tests
// that only need a database use chtest): the engine library fetched into
// the default cache, data in dir under the test's temporary directory,
// two free ports on 127.0.0.1, a quiet logger.
func EngineConfig(tb testing.TB, dir string) engine.Config {
	tb.Helper()
	cache, err := engine.DefaultCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	lib, err := engine.Fetch(context.Background(), cache, nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Logger = lib, filepath.Join(tb.TempDir(), dir), Quiet()
	cfg.TCPPort, cfg.HTTPPort = servertest.FreePort(tb), servertest.FreePort(tb)
	return cfg
}
