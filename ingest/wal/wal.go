// Package wal is the write-ahead log of the ingest path: an append-only
// sequence of checksummed records in segment files. Append returns only
// once its record is on disk (fsync), and concurrent appends share one
// fsync (group commit). A reader tails the durable records; Commit records
// that everything up to a sequence number has reached ClickHouse and
// deletes the segments that hold nothing newer.
//
// On disk: DIR/NNNNNNNNNNNNNNNNNNNN.wal segment files, named by the sequence
// number of their first record; DIR/checkpoint, the last committed sequence
// number; DIR/epoch, a random name given to the log when it is created (a
// log started afresh, e.g. in a wiped directory, numbers its records from 1
// again under a new epoch); DIR/damaged/, damaged segments set aside by
// recovery. A record is a 16-byte header — payload length (uint32), CRC-32C
// of sequence number and payload (uint32), sequence number (uint64),
// little-endian — followed by the payload. An empty record stands for one
// lost to damage.
package wal

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// ErrUnavailable is returned (wrapping the cause) by Append when the
// record could not be written or fsynced: it was not stored. The log
// repairs itself, on the next Append or within a second, once the cause
// (a full disk, an I/O error) is gone.
var ErrUnavailable = errors.New("write-ahead log cannot write")

// ErrChecksum is returned (wrapped) by Reader.Next for a record whose
// payload does not match its checksum: it was damaged on disk after it was
// written.
var ErrChecksum = errors.New("checksum mismatch")

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

	// wrap, if set, wraps each segment file opened for writing (tests
	// inject write and fsync faults with it).
	wrap func(*os.File) segmentFile
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
	file        segmentFile // nil while broken
	buf         *bufio.Writer
	next        LSN
	durableSize int64 // bytes of the last segment that are durable (records up to durable)
	broken      bool  // a write or fsync failed: repair before writing again
	failedBytes int64 // size of the write that failed last (what probe tries)

	durable atomic.Uint64
	syncs   atomic.Uint64 // fsyncs of appended records, to observe group commit
	full    atomic.Bool   // an append was refused for space, and none has succeeded since
	notify  chan struct{}

	damage         []string // found by recovery (set before the writer starts)
	lostUninserted uint64

	faults     atomic.Uint64 // failed writes and fsyncs
	fault      error         // the current fault (w.mu), nil when writing works
	faultSince time.Time
}

// Open opens (or creates) the log in opts.Dir, recovering what a crash left:
// a torn record at the end of the last segment is cut off (it was never
// acknowledged, since acknowledgement follows fsync); damage anywhere else
// is set aside, keeping every record that still checks (see damage.go).
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
	w.file = w.wrapFile(f)
	w.buf = bufio.NewWriterSize(w.file, 1<<20)
	w.durableSize = st.Size()
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
	if len(payload) == 0 {
		return 0, errors.New("wal: empty record (empty records stand for records lost to damage)")
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
	if err == nil {
		// Else a power loss could bring back an older checkpoint, and a
		// replay of batches the ingest path no longer knows the extent of.
		err = syncDir(dir)
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
	if w.file == nil {
		return nil // broken: the durable records are on disk, the rest was refused
	}
	err := w.buf.Flush()
	if serr := w.file.Sync(); err == nil {
		err = serr
	}
	if cerr := w.file.Close(); err == nil {
		err = cerr
	}
	return err
}
