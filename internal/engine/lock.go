package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// waitUnlocked waits until no engine holds dataDir: ClickHouse locks
// DIR/status (flock) for as long as it runs. An engine whose parent was
// killed notices its closed standard input and shuts down, but it may still
// be starting, or flushing, when a new server starts on the same data
// (a supervisor restarting a crashed server at once); starting beside it
// fails with "Another server instance in same directory is already
// running". The wait ends when the lock is free, or fails after timeout.
func waitUnlocked(ctx context.Context, dataDir string, timeout time.Duration, log *slog.Logger) error {
	path := filepath.Join(dataDir, "status")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never started here
	}
	if err != nil {
		return fmt.Errorf("engine lock file: %w", err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("engine lock file %s: %w", path, err)
		}
		if !logged {
			log.Warn("waiting for a previous embedded clickhouse to release its data", "dir", dataDir, "within", timeout)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("another embedded clickhouse still holds %s after %s (a server still running on the same data directory?): %w",
				dataDir, timeout, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
