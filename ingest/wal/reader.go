package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Reader reads durable records in order. It is not safe for concurrent use.
//
// It reads with ReadAt, record by record, never past the durable end: the
// writer may have put part of a later record in the file already, and a
// buffered reader could stumble on it.
type Reader struct {
	w    *WAL
	next LSN
	f    *os.File
	off  int64
	hdr  [headerSize]byte
	buf  []byte
}

// NewReader returns a reader positioned at record from (use Committed()+1
// to resume after the last record known to be in ClickHouse).
func (w *WAL) NewReader(from LSN) *Reader {
	if from == 0 {
		from = 1
	}
	return &Reader{w: w, next: from}
}

// Next returns the next durable record. It returns io.EOF when every
// durable record has been read; call again after Notify. The payload is
// valid until the next call. A record damaged on disk (its payload fails
// its checksum, or its header is damaged and a record that checks follows)
// is returned with its sequence number, the damaged bytes, and an error
// wrapping ErrChecksum, and the reader moves past it (to the record found,
// if the header was damaged: the records in between are lost); other
// errors leave the reader where it was.
func (r *Reader) Next() (LSN, []byte, error) {
	if r.next > r.w.Durable() {
		return 0, nil, io.EOF
	}
	for attempt := 0; attempt < 2; attempt++ {
		if r.f == nil {
			if err := r.open(); err != nil {
				return 0, nil, err
			}
		}
		lsn, size, err := r.readAt(true)
		if errors.Is(err, ErrChecksum) && lsn == r.next {
			// The header holds: skip the record, hand its bytes over.
			r.off += size
			r.next++
			return lsn, r.buf, fmt.Errorf("wal: read record %d: %w", lsn, err)
		}
		if errors.Is(err, io.EOF) {
			// Durable, yet not in this segment: it starts the next one.
			r.close()
			continue
		}
		if err == nil && lsn != r.next {
			err = fmt.Errorf("record %d where %d was expected", lsn, r.next)
		}
		if err != nil {
			if lsn, rec, derr, ok := r.resync(); ok {
				return lsn, rec, derr
			}
			return 0, nil, fmt.Errorf("wal: read record %d: %v", r.next, err) // not ErrChecksum: the reader stays
		}
		r.off += size
		r.next++
		return lsn, r.buf, nil
	}
	return 0, nil, fmt.Errorf("wal: record %d is durable but in no segment", r.next)
}

// resync handles a record that cannot be delimited (damaged header): it
// looks past r.off for the next record that checks, in this segment or the
// next, and returns the bytes in between as record r.next with an error
// wrapping ErrChecksum (the records up to the one found are lost), having
// moved the reader to the record found. It reports false when the record
// at r.off reads well now (a passing error) or no later record exists yet.
func (r *Reader) resync() (LSN, []byte, error, bool) {
	st, err := r.f.Stat()
	if err != nil || st.Size() <= r.off {
		return 0, nil, nil, false
	}
	b := make([]byte, st.Size()-r.off)
	if _, err := r.f.ReadAt(b, r.off); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, nil, false
	}
	durable := r.w.Durable()
	if len(b) >= headerSize {
		if lsn, _, ok := checkAt(b, 0, r.next-1, durable); ok && lsn == r.next {
			return 0, nil, nil, false
		}
	}
	damaged, name, off := r.next, r.f.Name(), r.off
	for pos := int64(0); pos+headerSize <= int64(len(b)); pos++ {
		if lsn, _, ok := checkAt(b, pos, r.next, durable); ok {
			r.buf = append(r.buf[:0], b[:pos]...)
			r.off += pos
			r.next = lsn
			return damaged, r.buf, fmt.Errorf("wal: records %d to %d damaged (bytes %d-%d of %s): %w",
				damaged, lsn-1, off, off+pos, name, ErrChecksum), true
		}
	}
	if first := r.w.segmentAfter(r.next); first != 0 && first <= durable {
		r.buf = append(r.buf[:0], b...)
		r.close()
		r.next = first
		return damaged, r.buf, fmt.Errorf("wal: records %d to %d damaged (bytes %d-%d of %s): %w",
			damaged, first-1, off, st.Size(), name, ErrChecksum), true
	}
	return 0, nil, nil, false
}

// readAt reads the record at r.off; with payload false it reads only the
// header (to skip). io.EOF means r.off is the end of the file.
func (r *Reader) readAt(payload bool) (LSN, int64, error) {
	n, err := r.f.ReadAt(r.hdr[:], r.off)
	if n == 0 && errors.Is(err, io.EOF) {
		return 0, 0, io.EOF
	}
	if n < headerSize {
		return 0, 0, fmt.Errorf("short header (%d bytes)", n)
	}
	length := binary.LittleEndian.Uint32(r.hdr[0:4])
	lsn := LSN(binary.LittleEndian.Uint64(r.hdr[8:16]))
	if length > MaxRecordBytes {
		return 0, 0, fmt.Errorf("record length %d exceeds the maximum", length)
	}
	size := headerSize + int64(length)
	if !payload {
		return lsn, size, nil
	}
	if cap(r.buf) < int(length) {
		r.buf = make([]byte, length)
	}
	r.buf = r.buf[:length]
	if _, err := r.f.ReadAt(r.buf, r.off+headerSize); err != nil {
		return 0, 0, fmt.Errorf("short payload: %w", err)
	}
	crc := crc32.Update(crc32.Checksum(r.hdr[8:16], crcTable), crcTable, r.buf)
	if crc != binary.LittleEndian.Uint32(r.hdr[4:8]) {
		return lsn, size, ErrChecksum
	}
	return lsn, size, nil
}

// open opens the segment holding r.next and skips to it by headers.
func (r *Reader) open() error {
	r.w.mu.Lock()
	var seg segment
	found := false
	for _, s := range r.w.segments {
		if s.first <= r.next {
			seg, found = s, true
		}
	}
	r.w.mu.Unlock()
	if !found {
		return fmt.Errorf("wal: no segment holds record %d", r.next)
	}
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	r.f, r.off = f, 0
	for lsn := seg.first; lsn < r.next; lsn++ {
		_, size, err := r.readAt(false)
		if err != nil {
			r.close()
			return fmt.Errorf("wal: skip to record %d: %w", r.next, err)
		}
		r.off += size
	}
	return nil
}

func (r *Reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// Close releases the reader's file.
func (r *Reader) Close() { r.close() }
