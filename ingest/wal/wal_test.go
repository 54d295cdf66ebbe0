package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

func testOpts(dir string) Options {
	o := DefaultOptions()
	o.Dir = dir
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

func mustOpen(tb testing.TB, o Options) *WAL {
	tb.Helper()
	w, err := Open(o)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { w.Close() })
	return w
}

func payload(i int) []byte {
	return []byte(fmt.Sprintf("record-%06d-%s", i, bytes.Repeat([]byte{'x'}, i%97)))
}

// readAll reads every durable record from lsn from.
func readAll(tb testing.TB, w *WAL, from LSN) map[LSN]string {
	tb.Helper()
	r := w.NewReader(from)
	defer r.Close()
	out := map[LSN]string{}
	for {
		lsn, p, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatalf("read: %v", err)
		}
		out[lsn] = string(p)
	}
}

func TestConcurrentAppendsShareFsyncs(t *testing.T) {
	w := mustOpen(t, testOpts(t.TempDir()))
	const writers, each = 64, 40
	var mu sync.Mutex
	got := map[LSN]string{}
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				p := payload(g*each + i)
				lsn, err := w.Append(context.Background(), p)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[lsn] = string(p)
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if len(got) != writers*each {
		t.Fatalf("distinct lsns=%d, want %d", len(got), writers*each)
	}
	for lsn := LSN(1); lsn <= writers*each; lsn++ {
		if _, ok := got[lsn]; !ok {
			t.Fatalf("lsn %d never assigned", lsn)
		}
	}
	if syncs := w.syncs.Load(); syncs >= writers*each {
		t.Fatalf("fsyncs=%d for %d concurrent appends: no group commit", syncs, writers*each)
	}
	read := readAll(t, w, 1)
	for lsn, p := range got {
		if read[lsn] != p {
			t.Fatalf("record %d read %q, want %q", lsn, read[lsn], p)
		}
	}
}

func TestSegmentsRollCommitAndReopen(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(dir)
	o.SegmentBytes = 4096
	w, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[LSN]string{}
	for i := 0; i < 300; i++ {
		lsn, err := w.Append(context.Background(), payload(i))
		if err != nil {
			t.Fatal(err)
		}
		want[lsn] = string(payload(i))
	}
	_, segs := w.Stats()
	if segs < 5 {
		t.Fatalf("segments=%d after 300 records of ~60 bytes in 4 KiB segments, want several", segs)
	}
	if err := w.Commit(150); err != nil {
		t.Fatal(err)
	}
	bytesAfter, segsAfter := w.Stats()
	if segsAfter >= segs {
		t.Fatalf("segments after commit=%d, want fewer than %d", segsAfter, segs)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w2 := mustOpen(t, o)
	if w2.Committed() != 150 {
		t.Fatalf("committed after reopen=%d, want 150", w2.Committed())
	}
	if b, _ := w2.Stats(); b != bytesAfter {
		t.Fatalf("bytes after reopen=%d, want %d", b, bytesAfter)
	}
	got := readAll(t, w2, w2.Committed()+1)
	if len(got) != 150 {
		t.Fatalf("records after the checkpoint=%d, want 150", len(got))
	}
	for lsn := LSN(151); lsn <= 300; lsn++ {
		if got[lsn] != want[lsn] {
			t.Fatalf("record %d=%q, want %q", lsn, got[lsn], want[lsn])
		}
	}
	lsn, err := w2.Append(context.Background(), []byte("after"))
	if err != nil || lsn != 301 {
		t.Fatalf("append after reopen: lsn=%d err=%v, want 301", lsn, err)
	}
}

func lastSegment(tb testing.TB, dir string) string {
	tb.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	sort.Strings(m)
	// the newest non-empty one
	for i := len(m) - 1; i >= 0; i-- {
		if st, err := os.Stat(m[i]); err == nil && st.Size() > 0 {
			return m[i]
		}
	}
	tb.Fatal("no segment")
	return ""
}

func TestTornTailIsCutOff(t *testing.T) {
	for name, tail := range map[string][]byte{
		"partial header":  {1, 2, 3},
		"partial payload": {200, 0, 0, 0, 1, 2, 3, 4, 6, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'},
		"bad checksum":    {2, 0, 0, 0, 9, 9, 9, 9, 6, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(testOpts(dir))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				if _, err := w.Append(context.Background(), payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			f, err := os.OpenFile(lastSegment(t, dir), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tail)
			f.Close()

			w2 := mustOpen(t, testOpts(dir))
			got := readAll(t, w2, 1)
			if len(got) != 5 || got[5] != string(payload(4)) {
				t.Fatalf("records after recovery=%d, want the 5 acknowledged ones", len(got))
			}
			if lsn, err := w2.Append(context.Background(), []byte("next")); err != nil || lsn != 6 {
				t.Fatalf("append after recovery: lsn=%d err=%v, want 6", lsn, err)
			}
		})
	}
}

func TestFullThenCommitFreesSpace(t *testing.T) {
	o := testOpts(t.TempDir())
	o.SegmentBytes = 4096
	o.MaxBytes = 16384
	w := mustOpen(t, o)
	var last LSN
	var err error
	for i := 0; i < 10000; i++ {
		var lsn LSN
		if lsn, err = w.Append(context.Background(), make([]byte, 200)); err != nil {
			break
		}
		last = lsn
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("err=%v, want ErrFull", err)
	}
	if b, _ := w.Stats(); b > o.MaxBytes {
		t.Fatalf("log grew to %d bytes past its bound %d", b, o.MaxBytes)
	}
	if err := w.Commit(last); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(context.Background(), make([]byte, 200)); err != nil {
		t.Fatalf("append after commit: %v", err)
	}
}

func TestReaderFollowsTheWriter(t *testing.T) {
	o := testOpts(t.TempDir())
	o.SegmentBytes = 4096
	w := mustOpen(t, o)
	const n = 2000
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if _, err := w.Append(context.Background(), payload(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	r := w.NewReader(1)
	defer r.Close()
	for i := 0; i < n; {
		lsn, p, err := r.Next()
		if err == io.EOF {
			<-w.Notify()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if lsn != LSN(i+1) || string(p) != string(payload(i)) {
			t.Fatalf("read %d %q, want %d %q", lsn, p, i+1, payload(i))
		}
		i++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
