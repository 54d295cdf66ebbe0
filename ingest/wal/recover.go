package wal

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func (w *WAL) recover() error {
	entries, err := os.ReadDir(w.opts.Dir)
	if err != nil {
		return fmt.Errorf("read wal dir: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil || first == 0 {
			return fmt.Errorf("wal: unexpected file %s", name)
		}
		w.segments = append(w.segments, segment{first: LSN(first), path: filepath.Join(w.opts.Dir, name)})
	}
	sort.Slice(w.segments, func(i, j int) bool { return w.segments[i].first < w.segments[j].first })

	w.next = w.committed + 1
	for i := range w.segments {
		s := &w.segments[i]
		last := i == len(w.segments)-1
		switch {
		case i == 0 && s.first > w.committed+1:
			return fmt.Errorf("wal: records %d to %d are missing: the oldest segment %s starts after the checkpoint",
				w.committed+1, s.first-1, s.path)
		case i > 0 && s.first != w.next:
			return fmt.Errorf("wal: segment %s starts at record %d, want %d", s.path, s.first, w.next)
		}
		end, lastLSN, err := scanSegment(s.path, s.first)
		if err != nil {
			var next LSN
			if !last {
				next = w.segments[i+1].first
			}
			if end, lastLSN, err = w.repairSegment(s, end, lastLSN, next, err); err != nil {
				return err
			}
		}
		s.size = end
		w.total += end
		w.next = lastLSN + 1
	}
	if w.next <= w.committed {
		w.next = w.committed + 1
	}
	w.durable.Store(uint64(w.next - 1))
	// Always write into a fresh segment: a recovered one stays read-only.
	return w.openSegment()
}

// scanSegment checks every record of a segment and returns the offset just
// past the last good one, and its sequence number (first-1 if none).
func scanSegment(path string, first LSN) (int64, LSN, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	want := first
	for {
		lsn, payloadLen, err := readRecord(r, nil)
		if err == io.EOF {
			return off, want - 1, nil
		}
		if err != nil {
			return off, want - 1, err
		}
		if lsn != want {
			return off, want - 1, fmt.Errorf("record %d where %d was expected", lsn, want)
		}
		off += headerSize + int64(payloadLen)
		want++
	}
}

// readRecord reads one record; with dst nil the payload is checked and
// discarded. It returns io.EOF only at a clean end.
func readRecord(r *bufio.Reader, dst *[]byte) (LSN, int, error) {
	var hdr [headerSize]byte
	n, err := io.ReadFull(r, hdr[:])
	if err == io.EOF {
		return 0, 0, io.EOF
	}
	if err != nil {
		return 0, 0, fmt.Errorf("short header (%d bytes)", n)
	}
	length := binary.LittleEndian.Uint32(hdr[0:4])
	sum := binary.LittleEndian.Uint32(hdr[4:8])
	lsn := LSN(binary.LittleEndian.Uint64(hdr[8:16]))
	if length > MaxRecordBytes {
		return 0, 0, fmt.Errorf("record length %d exceeds the maximum", length)
	}
	var payload []byte
	if dst != nil {
		if cap(*dst) < int(length) {
			*dst = make([]byte, length)
		}
		payload = (*dst)[:length]
	} else {
		payload = make([]byte, length)
	}
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, 0, fmt.Errorf("short payload")
	}
	crc := crc32.Update(crc32.Checksum(hdr[8:16], crcTable), crcTable, payload)
	if crc != sum {
		return 0, 0, fmt.Errorf("checksum mismatch in record %d", lsn)
	}
	if dst != nil {
		*dst = payload
	}
	return lsn, int(length), nil
}
