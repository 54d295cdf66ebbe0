// Package wal is the write-ahead log of the ingest path: an append-only
// sequence of checksummed records in segment files. Append returns only
// once its record is on disk (fsync), and concurrent appends share one
// fsync (group commit). A reader tails the durable records; Commit records
// that everything up to a sequence number has reached ClickHouse and
// deletes the segments that hold nothing newer.
//
// On disk: DIR/NNNNNNNNNNNNNNNNNNNN.wal segment files, named by the sequence
// number of their first record, and DIR/checkpoint, the last committed
// sequence number, and DIR/epoch, a random name given to the log when it
// is created (a log started afresh, e.g. in a wiped directory, numbers its
// records from 1 again under a new epoch). A record is a 16-byte header — payload length (uint32),
// CRC-32C of sequence number and payload (uint32), sequence number
// (uint64), little-endian — followed by the payload.
package wal

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// LSN is the sequence number of a record; the first record is 1.
type LSN uint64

const (
	headerSize   = 16
	segmentExt   = ".wal"
	checkpointFn = "checkpoint"
	epochFn      = "epoch"
	// MaxRecordBytes bounds one record's payload.
	MaxRecordBytes = 256 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrFull is returned by Append when the log holds MaxBytes already: the
// records are not reaching ClickHouse fast enough (or at all).
var ErrFull = errors.New("write-ahead log full")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("write-ahead log closed")

// Options configures a log.
type Options struct {
	// Dir holds the segments. Required.
	Dir string
	// SegmentBytes is the size at which a new segment is started.
	// Default 64 MiB.
	SegmentBytes int64
	// MaxBytes bounds the log on disk; Append fails with ErrFull beyond it.
	// Default 1 GiB.
	MaxBytes int64
	// Logger receives recovery warnings. Required.
	Logger *slog.Logger
}

// DefaultOptions returns the defaults; Dir and Logger remain to be set.
func DefaultOptions() Options {
	return Options{SegmentBytes: 64 << 20, MaxBytes: 1 << 30}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("wal: Dir is required")
	case o.Logger == nil:
		return errors.New("wal: Logger is required")
	case o.SegmentBytes < 4096:
		return errors.New("wal: SegmentBytes must be at least 4096")
	case o.MaxBytes < 4*o.SegmentBytes:
		// Space is freed a whole segment at a time, never the one being
		// written: a bound of a few segments keeps it from sticking at full.
		return errors.New("wal: MaxBytes must be at least 4 times SegmentBytes")
	}
	return nil
}

type segment struct {
	first LSN // sequence number of its first record (or of the next record, if empty)
	path  string
	size  int64
}

type appendReq struct {
	payload []byte
	lsn     LSN
	err     error
	done    chan struct{}
}

// WAL is an open log. Its methods are safe for concurrent use.
type WAL struct {
	opts Options
	log  *slog.Logger

	reqs    chan *appendReq
	quit    chan struct{}
	stopped chan struct{}

	epoch string

	mu        sync.Mutex
	segments  []segment // oldest first; the last is the one being written
	total     int64     // bytes of all segments
	committed LSN
	closed    bool

	// owned by the writer goroutine
	file *os.File
	buf  *bufio.Writer
	next LSN

	durable atomic.Uint64
	syncs   atomic.Uint64 // fsyncs of appended records, to observe group commit
	full    atomic.Bool   // an append was refused for space, and none has succeeded since
	notify  chan struct{}
}

// Open opens (or creates) the log in opts.Dir, recovering what a crash left:
// a torn record at the end of the last segment is cut off (it was never
// acknowledged, since acknowledgement follows fsync); a damaged record
// anywhere else is an error.
func Open(opts Options) (*WAL, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	w := &WAL{opts: opts, log: opts.Logger, reqs: make(chan *appendReq, 1024),
		quit: make(chan struct{}), stopped: make(chan struct{}), notify: make(chan struct{}, 1)}
	var err error
	if w.epoch, err = loadEpoch(opts.Dir); err != nil {
		return nil, err
	}
	if w.committed, err = readCheckpoint(opts.Dir); err != nil {
		return nil, err
	}
	if err := w.recover(); err != nil {
		return nil, err
	}
	go w.writer()
	return w, nil
}

func segmentPath(dir string, first LSN) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", first, segmentExt))
}

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
		if err != nil && !last {
			return fmt.Errorf("wal: segment %s damaged at offset %d: %w", s.path, end, err)
		}
		if err != nil {
			w.log.Warn("wal: cutting off a torn record at the end of the log", "segment", s.path, "offset", end, "reason", err)
			if terr := os.Truncate(s.path, end); terr != nil {
				return fmt.Errorf("wal: truncate torn tail: %w", terr)
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

func (w *WAL) openSegment() error {
	path := segmentPath(w.opts.Dir, w.next)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if err := syncDir(w.opts.Dir); err != nil {
		f.Close()
		return err
	}
	w.file = f
	w.buf = bufio.NewWriterSize(f, 1<<20)
	w.mu.Lock()
	if n := len(w.segments); n > 0 && w.segments[n-1].path == path {
		w.segments[n-1].size = st.Size()
	} else {
		w.segments = append(w.segments, segment{first: w.next, path: path, size: st.Size()})
	}
	w.mu.Unlock()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
}

// Append writes payload as one record and returns its sequence number once
// it is on disk. It fails with ErrFull when the log is at MaxBytes, and with
// ctx's error if ctx ends first (the record may still become durable).
func (w *WAL) Append(ctx context.Context, payload []byte) (LSN, error) {
	if len(payload) > MaxRecordBytes {
		return 0, fmt.Errorf("wal: record of %d bytes exceeds %d", len(payload), MaxRecordBytes)
	}
	req := &appendReq{payload: payload, done: make(chan struct{})}
	select {
	case w.reqs <- req:
	case <-w.quit:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-req.done:
		return req.lsn, req.err
	case <-w.stopped:
		select {
		case <-req.done:
			return req.lsn, req.err
		default:
			return 0, ErrClosed
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// writer is the single goroutine that writes: it takes every request
// waiting, writes them, fsyncs once and acknowledges them together.
func (w *WAL) writer() {
	defer close(w.stopped)
	batch := make([]*appendReq, 0, 256)
	for {
		select {
		case req := <-w.reqs:
			batch = append(batch[:0], req)
		case <-w.quit:
			w.failPending(ErrClosed)
			return
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case req := <-w.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		err := w.writeBatch(batch)
		if err != nil {
			w.log.Error("wal: write failed", "error", err)
		}
		for _, req := range batch {
			if req.err == nil && err != nil {
				req.err = err
			}
			close(req.done)
		}
		if err == nil {
			select {
			case w.notify <- struct{}{}:
			default:
			}
		}
	}
}

func (w *WAL) failPending(err error) {
	for {
		select {
		case req := <-w.reqs:
			req.err = err
			close(req.done)
		default:
			return
		}
	}
}

func (w *WAL) writeBatch(batch []*appendReq) error {
	var hdr [headerSize]byte
	wrote := false
	for _, req := range batch {
		size := int64(headerSize + len(req.payload))
		w.mu.Lock()
		full := w.total+size > w.opts.MaxBytes
		w.mu.Unlock()
		if full {
			req.err = ErrFull
			w.full.Store(true)
			continue
		}
		if w.currentSize() >= w.opts.SegmentBytes {
			if err := w.roll(); err != nil {
				return err
			}
		}
		lsn := w.next
		binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(req.payload)))
		binary.LittleEndian.PutUint64(hdr[8:16], uint64(lsn))
		crc := crc32.Update(crc32.Checksum(hdr[8:16], crcTable), crcTable, req.payload)
		binary.LittleEndian.PutUint32(hdr[4:8], crc)
		if _, err := w.buf.Write(hdr[:]); err != nil {
			return fmt.Errorf("wal: write: %w", err)
		}
		if _, err := w.buf.Write(req.payload); err != nil {
			return fmt.Errorf("wal: write: %w", err)
		}
		w.next++
		req.lsn = lsn
		w.full.Store(false)
		w.mu.Lock()
		w.segments[len(w.segments)-1].size += size
		w.total += size
		w.mu.Unlock()
		wrote = true
	}
	if !wrote {
		return nil
	}
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("wal: write: %w", err)
	}
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	w.syncs.Add(1)
	w.durable.Store(uint64(w.next - 1))
	return nil
}

func (w *WAL) currentSize() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.segments[len(w.segments)-1].size
}

func (w *WAL) roll() error {
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("wal: write: %w", err)
	}
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	w.durable.Store(uint64(w.next - 1))
	if err := w.file.Close(); err != nil {
		return fmt.Errorf("wal: close segment: %w", err)
	}
	return w.openSegment()
}

// Durable is the highest sequence number on disk.
func (w *WAL) Durable() LSN { return LSN(w.durable.Load()) }

// Notify receives a value after records become durable.
func (w *WAL) Notify() <-chan struct{} { return w.notify }

// Committed is the highest sequence number known to be in ClickHouse.
func (w *WAL) Committed() LSN {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.committed
}

// Stats reports the bytes and segments on disk.
func (w *WAL) Stats() (bytes int64, segments int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total, len(w.segments)
}

// Full reports whether the log refused an append for lack of space and has
// not freed space (Commit) or taken an append since.
func (w *WAL) Full() bool { return w.full.Load() }

// MaxBytes is the configured bound.
func (w *WAL) MaxBytes() int64 { return w.opts.MaxBytes }

// Commit records that every record up to lsn is in ClickHouse: it writes
// the checkpoint and deletes the segments holding nothing newer.
func (w *WAL) Commit(lsn LSN) error {
	w.mu.Lock()
	if lsn <= w.committed {
		w.mu.Unlock()
		return nil
	}
	w.committed = lsn
	var drop []segment
	for len(w.segments) > 1 && w.segments[1].first-1 <= lsn {
		drop = append(drop, w.segments[0])
		w.total -= w.segments[0].size
		w.segments = w.segments[1:]
	}
	w.mu.Unlock()
	if len(drop) > 0 {
		w.full.Store(false)
	}
	if err := writeCheckpoint(w.opts.Dir, lsn); err != nil {
		return err
	}
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: remove segment: %w", err)
		}
	}
	return nil
}

// Epoch names this log for its whole life: it is created with the log and
// kept in its directory, so that (epoch, sequence number) never repeats,
// even when a wiped directory numbers its records from 1 again.
func (w *WAL) Epoch() string { return w.epoch }

// loadEpoch reads the log's epoch, creating it (durably) the first time.
func loadEpoch(dir string) (string, error) {
	path := filepath.Join(dir, epochFn)
	b, err := os.ReadFile(path)
	if err == nil {
		if e := strings.TrimSpace(string(b)); e != "" {
			return e, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("wal: read epoch: %w", err)
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("wal: create epoch: %w", err)
	}
	epoch := hex.EncodeToString(r[:])
	if err := writeFileSync(dir, epochFn, epoch+"\n"); err != nil {
		return "", fmt.Errorf("wal: write epoch: %w", err)
	}
	return epoch, nil
}

// writeFileSync replaces dir/name with content durably: a temporary file,
// fsync, rename, fsync of the directory.
func writeFileSync(dir, name, content string) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

func readCheckpoint(dir string) (LSN, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFn))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("wal: read checkpoint: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("wal: damaged checkpoint %q", b)
	}
	return LSN(n), nil
}

func writeCheckpoint(dir string, lsn LSN) error {
	tmp := filepath.Join(dir, checkpointFn+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("wal: write checkpoint: %w", err)
	}
	_, err = f.WriteString(strconv.FormatUint(uint64(lsn), 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, checkpointFn))
	}
	if err != nil {
		return fmt.Errorf("wal: write checkpoint: %w", err)
	}
	return nil
}

// Close stops the writer; appends waiting fail with ErrClosed. Records
// already durable stay on disk for the next Open.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.stopped
	err := w.buf.Flush()
	if serr := w.file.Sync(); err == nil {
		err = serr
	}
	if cerr := w.file.Close(); err == nil {
		err = cerr
	}
	return err
}
