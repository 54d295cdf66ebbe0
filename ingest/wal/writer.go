package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// writer is the single goroutine that writes: it takes every request
// waiting, writes them, fsyncs once and acknowledges them together.
func (w *WAL) writer() {
	defer close(w.stopped)
	batch := make([]*appendReq, 0, 256)
	for {
		var retry <-chan time.Time
		if w.broken || w.faulty() {
			retry = time.After(repairInterval)
		}
		select {
		case req := <-w.reqs:
			batch = append(batch[:0], req)
		case <-retry:
			if w.broken {
				_ = w.repair()
			} else {
				w.probe()
			}
			continue
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
		before := w.Durable()
		var err error
		if w.broken {
			err = w.repair()
		}
		if err == nil {
			if err = w.writeBatch(batch); err != nil {
				w.failedBytes = 0
				for _, req := range batch {
					w.failedBytes += int64(headerSize + len(req.payload))
				}
				w.failed(err)
			}
		}
		durable := w.Durable()
		for _, req := range batch {
			// A record fsynced before the failure (a segment rolled
			// within the batch) is durable: it stands.
			if req.err == nil && err != nil && (req.lsn == 0 || req.lsn > durable) {
				req.err, req.lsn = fmt.Errorf("%w: %w", ErrUnavailable, err), 0
			}
			close(req.done)
		}
		if durable > before {
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
	w.durableSize = w.currentSize()
	w.healed()
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
	w.durableSize = w.currentSize()
	err := w.file.Close()
	w.file = nil
	if err != nil {
		return fmt.Errorf("wal: close segment: %w", err)
	}
	return w.openSegment()
}
