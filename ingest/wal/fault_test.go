package wal

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultyFile fails its next writes or fsyncs on demand. A failed write
// first writes half of its bytes, as a write cut short by a full disk does;
// a failed fsync still leaves the bytes in the file, as the page cache may.
type faultyFile struct {
	*os.File
	failWrites, failSyncs *atomic.Int32
}

func (f faultyFile) Write(p []byte) (int, error) {
	if f.failWrites.Load() > 0 {
		f.failWrites.Add(-1)
		n, _ := f.File.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f faultyFile) Sync() error {
	if f.failSyncs.Load() > 0 {
		f.failSyncs.Add(-1)
		return syscall.EIO
	}
	return f.File.Sync()
}

// TestWriteFaultsRefuseAndRepair: after a failed write or fsync the
// record is refused with ErrUnavailable, the fault is reported, the next
// append succeeds without a restart, and the refused record is not in the
// log (neither read now nor replayed after a restart), even though its
// bytes had reached the file.
func TestWriteFaultsRefuseAndRepair(t *testing.T) {
	for _, kind := range []string{"write", "fsync"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			var failWrites, failSyncs atomic.Int32
			o := testOpts(dir)
			o.wrap = func(f *os.File) segmentFile { return faultyFile{f, &failWrites, &failSyncs} }
			w := mustOpen(t, o)
			ctx := context.Background()
			if _, err := w.Append(ctx, []byte("first")); err != nil {
				t.Fatal(err)
			}
			if kind == "write" {
				failWrites.Store(1)
			} else {
				failSyncs.Store(1)
			}
			if _, err := w.Append(ctx, []byte("refused")); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("append during the fault: err=%v, want ErrUnavailable", err)
			}
			if _, err := w.Fault(); err == nil {
				t.Fatal("Fault()=nil after a failed append")
			}
			if w.Faults() != 1 {
				t.Fatalf("Faults()=%d, want 1", w.Faults())
			}
			lsn, err := w.Append(ctx, []byte("second"))
			if err != nil {
				t.Fatalf("append after the fault: %v", err)
			}
			if lsn != 2 {
				t.Fatalf("lsn=%d, want 2 (the refused record holds no number)", lsn)
			}
			if _, err := w.Fault(); err != nil {
				t.Fatalf("Fault()=%v after a successful append", err)
			}
			want := map[LSN]string{1: "first", 2: "second"}
			check := func(got map[LSN]string) {
				t.Helper()
				if len(got) != len(want) || got[1] != want[1] || got[2] != want[2] {
					t.Fatalf("records=%v, want %v", got, want)
				}
			}
			check(readAll(t, w, 1))
			w.Close()
			w2 := mustOpen(t, testOpts(dir))
			check(readAll(t, w2, 1))
			if lsn, err := w2.Append(ctx, []byte("third")); err != nil || lsn != 3 {
				t.Fatalf("append after reopen: lsn=%d err=%v, want 3", lsn, err)
			}
		})
	}
}

// TestFaultClearsWithoutAppends: a fault whose cause is gone is no longer
// reported even if no append came to prove it (the log probes the disk).
func TestFaultClearsWithoutAppends(t *testing.T) {
	var failWrites, failSyncs atomic.Int32
	o := testOpts(t.TempDir())
	o.wrap = func(f *os.File) segmentFile { return faultyFile{f, &failWrites, &failSyncs} }
	w := mustOpen(t, o)
	failSyncs.Store(1)
	if _, err := w.Append(context.Background(), []byte("refused")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err=%v, want ErrUnavailable", err)
	}
	for i := 0; ; i++ {
		if _, err := w.Fault(); err == nil {
			break
		}
		if i > 300 {
			t.Fatal("the fault is still reported 30s after its cause went away")
		}
		sleepMs(100)
	}
}

func sleepMs(n int) { <-time.After(time.Duration(n) * time.Millisecond) }
