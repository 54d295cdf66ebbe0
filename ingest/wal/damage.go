package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A segment damaged before records that still check is not a torn tail:
// those records were acknowledged (a later fsync covered them), so
// recovery keeps them. It moves the damaged file aside into DIR/damaged/,
// writes in its place every record that checks, an empty record for each
// one lost (sequence numbers stay contiguous; readers skip empty records),
// logs an error naming the damaged byte ranges, and reports it (Damage).
//
// Only the last, partial write of the newest segment is a torn tail: damage
// there with no valid record after it is cut off, as before.
const damagedDir = "damaged"

// salvaged is a record found intact after damage.
type salvaged struct {
	lsn     LSN
	payload []byte
}

// salvage scans b from off, where a record failed, for every later record
// that checks (header, sequence number after prev, checksum), byte by byte
// through the damage. It returns them and the damaged byte ranges.
func salvage(b []byte, off int64, prev LSN) (recs []salvaged, damaged [][2]int64) {
	maxLSN := prev + LSN(len(b)/headerSize) + 1 // no segment holds more records than this
	from := int64(-1)
	pos := off
	for pos+headerSize <= int64(len(b)) {
		if lsn, n, ok := checkAt(b, pos, prev, maxLSN); ok {
			if from >= 0 {
				damaged = append(damaged, [2]int64{from, pos})
				from = -1
			}
			recs = append(recs, salvaged{lsn: lsn, payload: b[pos+headerSize : pos+headerSize+n]})
			prev = lsn
			pos += headerSize + n
			continue
		}
		if from < 0 {
			from = pos
		}
		pos++
	}
	if from < 0 && pos < int64(len(b)) {
		from = pos
	}
	if from >= 0 {
		damaged = append(damaged, [2]int64{from, int64(len(b))})
	}
	return recs, damaged
}

// checkAt reports whether a whole record that checks starts at pos, with a
// sequence number in (prev, maxLSN], and its payload length.
func checkAt(b []byte, pos int64, prev, maxLSN LSN) (LSN, int64, bool) {
	hdr := b[pos : pos+headerSize]
	n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
	lsn := LSN(binary.LittleEndian.Uint64(hdr[8:16]))
	if lsn <= prev || lsn > maxLSN || n > MaxRecordBytes || pos+headerSize+n > int64(len(b)) {
		return 0, 0, false
	}
	payload := b[pos+headerSize : pos+headerSize+n]
	crc := crc32.Update(crc32.Checksum(hdr[8:16], crcTable), crcTable, payload)
	return lsn, n, crc == binary.LittleEndian.Uint32(hdr[4:8])
}

func appendRecord(dst []byte, lsn LSN, payload []byte) []byte {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(hdr[8:16], uint64(lsn))
	binary.LittleEndian.PutUint32(hdr[4:8], crc32.Update(crc32.Checksum(hdr[8:16], crcTable), crcTable, payload))
	return append(append(dst, hdr[:]...), payload...)
}

// repairSegment handles damage found at offset end of segment s, whose
// good records before it end with lastLSN. next is the first record of the
// following segment (0 if s is the newest). It returns the segment's new
// size and its last record.
func (w *WAL) repairSegment(s *segment, end int64, lastLSN, next LSN, cause error) (int64, LSN, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return 0, 0, fmt.Errorf("wal: read damaged segment: %w", err)
	}
	recs, damaged := salvage(b, end, lastLSN)
	if len(recs) == 0 && next == 0 {
		w.log.Warn("wal: cutting off a torn record at the end of the log", "segment", s.path, "offset", end, "error", cause)
		if err := os.Truncate(s.path, end); err != nil {
			return 0, 0, fmt.Errorf("wal: truncate torn tail: %w", err)
		}
		return end, lastLSN, nil
	}
	// Rebuild the segment: the good prefix, then every salvaged record,
	// with an empty record standing for each one lost.
	out := append([]byte(nil), b[:end]...)
	var lost []string
	lostN := 0
	fill := func(upTo LSN) { // records lastLSN+1 .. upTo-1 are lost
		if upTo > lastLSN+1 {
			lost = append(lost, fmt.Sprintf("%d-%d", lastLSN+1, upTo-1))
			for l := lastLSN + 1; l < upTo; l++ {
				out = appendRecord(out, l, nil)
				lostN++
				if l > w.committed {
					w.lostUninserted++
				}
			}
		}
	}
	for _, r := range recs {
		fill(r.lsn)
		out = appendRecord(out, r.lsn, r.payload)
		lastLSN = r.lsn
	}
	if next != 0 {
		fill(next)
		lastLSN = max(lastLSN, next-1)
	}
	// A damaged end after the last record that checks, in the newest
	// segment, is the torn tail of the last write: dropped, not lost.
	if n := len(damaged); next == 0 && n > 0 && damaged[n-1][1] == int64(len(b)) && len(recs) > 0 {
		damaged = damaged[:n-1]
	}
	keep := filepath.Join(w.opts.Dir, damagedDir, fmt.Sprintf("%s.%d", filepath.Base(s.path), time.Now().UnixNano()))
	if err := os.MkdirAll(filepath.Dir(keep), 0o755); err != nil {
		return 0, 0, fmt.Errorf("wal: keep damaged segment: %w", err)
	}
	if err := os.Rename(s.path, keep); err != nil {
		return 0, 0, fmt.Errorf("wal: keep damaged segment: %w", err)
	}
	if err := writeFileSync(w.opts.Dir, filepath.Base(s.path), string(out)); err != nil {
		return 0, 0, fmt.Errorf("wal: rewrite damaged segment: %w", err)
	}
	if err := syncDir(filepath.Dir(keep)); err != nil {
		return 0, 0, err
	}
	var ranges bytes.Buffer
	for i, d := range damaged {
		if i > 0 {
			ranges.WriteString(", ")
		}
		fmt.Fprintf(&ranges, "%d-%d", d[0], d[1])
	}
	msg := fmt.Sprintf("write-ahead log segment %s was damaged (bytes %s of %d): %d records after the damage kept, %d lost (%s); the damaged file is kept at %s",
		filepath.Base(s.path), ranges.String(), len(b), len(recs), lostN, strings.Join(lost, ", "), keep)
	w.log.Error("wal: "+msg, "segment", s.path, "damaged_bytes", ranges.String(), "kept", len(recs),
		"lost", lostN, "lost_lsns", strings.Join(lost, ","), "copy", keep, "error", cause)
	w.damage = append(w.damage, msg)
	return int64(len(out)), lastLSN, nil
}

// Damage describes the damage recovery found in this log when it was
// opened, and the damaged copies kept from earlier starts: each needs the
// operator's review (then delete DIR/damaged/*).
func (w *WAL) Damage() []string {
	out := append([]string(nil), w.damage...)
	entries, _ := os.ReadDir(filepath.Join(w.opts.Dir, damagedDir))
	for _, e := range entries {
		p := filepath.Join(w.opts.Dir, damagedDir, e.Name())
		if !strings.Contains(strings.Join(w.damage, "\n"), p) {
			out = append(out, fmt.Sprintf("a damaged write-ahead log segment from an earlier start is kept at %s: review it, then delete it", p))
		}
	}
	return out
}

// LostRecords counts the records recovery found lost to damage that had
// not reached ClickHouse yet (after the checkpoint).
func (w *WAL) LostRecords() uint64 { return w.lostUninserted }

// segmentAfter returns the first record of the oldest segment starting
// after lsn, or 0.
func (w *WAL) segmentAfter(lsn LSN) LSN {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.segments {
		if s.first > lsn {
			return s.first
		}
	}
	return 0
}
