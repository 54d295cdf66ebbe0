package wal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// segmentFile is the segment being written: an *os.File, or in tests a
// wrapper that fails on demand.
type segmentFile interface {
	io.Writer
	Sync() error
	Close() error
}

const (
	probeFn       = "probe"
	maxProbeBytes = 16 << 20
)

// repairInterval is how often a broken log retries its repair, and a
// repaired one probes the disk, while no append comes.
const repairInterval = time.Second

func (w *WAL) wrapFile(f *os.File) segmentFile {
	if w.opts.wrap != nil {
		return w.opts.wrap(f)
	}
	return f
}

// failed records a write or fsync failure: the log is broken until
// repair succeeds, and says so (Fault) meanwhile.
func (w *WAL) failed(err error) {
	w.faults.Add(1)
	w.broken = true
	w.mu.Lock()
	first := w.fault == nil
	if first {
		w.faultSince = time.Now()
	}
	w.fault = err
	w.mu.Unlock()
	if first {
		w.log.Error("wal: write failed; the records of the failed write are refused, and the log is cut back to its last durable record", "error", err)
	} else {
		w.log.Debug("wal: write failed again", "error", err)
	}
	// Truncating what did not reach the disk frees the space it took: on a
	// full disk the repair may succeed at once.
	_ = w.repair()
}

// repair puts the log back at its last durable record: it drops what is
// buffered, cuts the segment being written back to the end of that record
// (a record whose write or fsync failed was refused to its caller, so it
// must not reappear after a restart) and reopens it. It returns the cause
// while that cannot be done.
//
// After a failed fsync the kernel may have dropped the pages it could not
// write and marked them clean: retrying the fsync could report success for
// data that is not on disk. Cutting back to what an earlier fsync confirmed
// and writing the refused records again (if their callers retry) is safe.
func (w *WAL) repair() error {
	if w.file != nil {
		_ = w.file.Close()
		w.file = nil
	}
	w.mu.Lock()
	last := w.segments[len(w.segments)-1]
	w.mu.Unlock()
	err := w.reopen(last.path)
	if err != nil {
		w.mu.Lock()
		w.fault = err
		w.mu.Unlock()
		return err
	}
	w.next = w.Durable() + 1
	w.broken = false
	w.mu.Lock()
	w.total -= last.size - w.durableSize
	w.segments[len(w.segments)-1].size = w.durableSize
	w.mu.Unlock()
	w.log.Debug("wal: segment cut back to its last durable record", "segment", last.path, "offset", w.durableSize)
	return nil
}

// healed clears the fault once a write and its fsync succeeded again.
func (w *WAL) healed() {
	w.mu.Lock()
	since := w.faultSince
	had := w.fault != nil
	w.fault, w.faultSince = nil, time.Time{}
	w.mu.Unlock()
	if had {
		w.log.Info("wal: writes succeed again", "failing_for", time.Since(since).Round(time.Millisecond))
	}
}

// probe checks, while no append comes, whether the disk takes a write as
// large as the one that failed, so that the fault is not reported after
// its cause is gone.
func (w *WAL) probe() {
	size := min(max(w.failedBytes, 4096), maxProbeBytes)
	err := writeFileSync(w.opts.Dir, probeFn, string(make([]byte, size)))
	_ = os.Remove(filepath.Join(w.opts.Dir, probeFn))
	if err == nil {
		w.healed()
	}
}

// reopen truncates path to the durable size, makes that durable and opens
// the file for appending.
func (w *WAL) reopen(path string) error {
	if err := os.Truncate(path, w.durableSize); err != nil {
		return fmt.Errorf("wal: repair: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("wal: repair: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("wal: repair: fsync: %w", err)
	}
	w.file = w.wrapFile(f)
	w.buf.Reset(w.file)
	return nil
}

// Fault returns since when and why the log cannot write, or a nil error
// while it can.
func (w *WAL) Fault() (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.faultSince, w.fault
}

// Faults counts the writes and fsyncs that failed since Open.
func (w *WAL) Faults() uint64 { return w.faults.Load() }

func (w *WAL) faulty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fault != nil
}
