package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// recordOffset returns the offset of record lsn in the segment file b.
func recordOffset(tb testing.TB, b []byte, lsn LSN) int {
	tb.Helper()
	for off := 0; off+headerSize <= len(b); off += headerSize + int(binary.LittleEndian.Uint32(b[off:])) {
		if LSN(binary.LittleEndian.Uint64(b[off+8:])) == lsn {
			return off
		}
	}
	tb.Fatalf("record %d not found", lsn)
	return 0
}

func appendN(tb testing.TB, w *WAL, n int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		if _, err := w.Append(context.Background(), payload(i)); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestDamageBeforeValidRecordsKeepsThem: damage in the middle of the newest
// segment is not a torn tail: the records after it were acknowledged and
// are kept; the damaged record reads as empty, the damaged file is kept
// aside, and the damage is reported with its offsets.
func TestDamageBeforeValidRecordsKeepsThem(t *testing.T) {
	for _, where := range []string{"payload", "length"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			w := mustOpen(t, testOpts(dir))
			appendN(t, w, 10)
			w.Close()
			seg := lastSegment(t, dir)
			b, _ := os.ReadFile(seg)
			off := recordOffset(t, b, 4)
			if where == "payload" {
				b[off+headerSize+3] ^= 0xff
			} else {
				b[off+1] ^= 0x10 // the length now runs past the next record
			}
			if err := os.WriteFile(seg, b, 0o644); err != nil {
				t.Fatal(err)
			}

			w2 := mustOpen(t, testOpts(dir))
			got := readAll(t, w2, 1)
			for i := 0; i < 10; i++ {
				want := string(payload(i))
				if i == 3 {
					want = "" // lost: an empty record holds its number
				}
				if got[LSN(i+1)] != want {
					t.Fatalf("record %d=%q, want %q", i+1, got[LSN(i+1)], want)
				}
			}
			if lsn, err := w2.Append(context.Background(), []byte("next")); err != nil || lsn != 11 {
				t.Fatalf("append after recovery: lsn=%d err=%v, want 11", lsn, err)
			}
			damage := w2.Damage()
			if len(damage) != 1 || !strings.Contains(damage[0], "1 lost (4-4)") || !strings.Contains(damage[0], "bytes ") {
				t.Fatalf("damage=%q, want record 4 reported lost with the damaged bytes", damage)
			}
			if w2.LostRecords() != 1 {
				t.Fatalf("LostRecords()=%d, want 1", w2.LostRecords())
			}
			kept, _ := filepath.Glob(filepath.Join(dir, damagedDir, "*"))
			if len(kept) != 1 {
				t.Fatalf("damaged copies %v, want 1", kept)
			}
			if k, _ := os.ReadFile(kept[0]); string(k) != string(b) {
				t.Fatal("the kept copy differs from the damaged segment")
			}
			w2.Close()
			// Reopened: nothing new, and the kept copy is still reported.
			w3 := mustOpen(t, testOpts(dir))
			if got := readAll(t, w3, 1); len(got) != 11 {
				t.Fatalf("records after a second open=%d, want 11", len(got))
			}
			if d := w3.Damage(); len(d) != 1 || !strings.Contains(d[0], "earlier start") {
				t.Fatalf("damage after reopening=%q", d)
			}
		})
	}
}

// TestDamageInAnOlderSegmentKeepsTheRest: damage in a segment that is not
// the newest (formerly: the log refused to open) loses only the damaged
// records.
func TestDamageInAnOlderSegmentKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(dir)
	o.SegmentBytes = 4096
	w := mustOpen(t, o)
	appendN(t, w, 200)
	w.Close()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	sort.Strings(m)
	b, _ := os.ReadFile(m[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(m[0], b, 0o644)
	w2, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer w2.Close()
	got := readAll(t, w2, 1)
	empty := 0
	for lsn := LSN(1); lsn <= 200; lsn++ {
		p, ok := got[lsn]
		switch {
		case !ok:
			t.Fatalf("record %d missing", lsn)
		case p == "":
			empty++
		case p != string(payload(int(lsn-1))):
			t.Fatalf("record %d=%q", lsn, p)
		}
	}
	if empty != 1 || len(w2.Damage()) != 1 {
		t.Fatalf("lost=%d damage=%q, want the one damaged record", empty, w2.Damage())
	}
}

// TestReaderPassesDamage: damage that appears after the log was opened is
// handed to the reader's caller (ErrChecksum) once, and reading goes on
// with the records after it, whether the payload or the header is hit.
func TestReaderPassesDamage(t *testing.T) {
	for _, where := range []string{"payload", "header"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			w := mustOpen(t, testOpts(dir))
			appendN(t, w, 10)
			seg := lastSegment(t, dir)
			b, _ := os.ReadFile(seg)
			off := recordOffset(t, b, 4)
			pos := off + headerSize + 2
			if where == "header" {
				pos = off + 9 // its sequence number
			}
			f, err := os.OpenFile(seg, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{b[pos] ^ 0x40}, int64(pos))
			f.Close()

			r := w.NewReader(1)
			defer r.Close()
			for want := LSN(1); want <= 10; want++ {
				lsn, p, err := r.Next()
				if want == 4 {
					if !errors.Is(err, ErrChecksum) || lsn != 4 {
						t.Fatalf("record 4: lsn=%d err=%v, want ErrChecksum", lsn, err)
					}
					continue
				}
				if err != nil || lsn != want || string(p) != string(payload(int(want-1))) {
					t.Fatalf("record %d: lsn=%d err=%v payload=%q", want, lsn, err, p)
				}
			}
			if _, _, err := r.Next(); err != io.EOF {
				t.Fatalf("after the last record: %v, want EOF", err)
			}
		})
	}
}
