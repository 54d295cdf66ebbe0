package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/readsql"
)

// Events are read straight from EventsTable, per ingest node, in ingest_seq
// order: "after the cursor, up to the node's confirmed watermark" sees every
// row once (see schema/sql/0005_ingest_seq.sql). The statements come from
// readsql; values reach ClickHouse only as server-side parameters.

// batch is one request's worth of a stream's events.
type batch struct {
	body         []byte // framed, uncompressed; nil when no event matched
	events       int
	next         uint64    // the cursor once the destination acknowledged body
	lastReceived time.Time // receive time of the last event in body
}

// eventReader reads the events streams deliver, and their lag, from
// ClickHouse; at most MaxConcurrentReads reads at once (its reads).
type eventReader struct {
	store *store
	cfg   Config
	reads chan struct{} // semaphore of concurrent ClickHouse reads
}

// acquire takes a slot of concurrent ClickHouse reads.
func (s *eventReader) acquire(ctx context.Context) bool {
	select {
	case s.reads <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *eventReader) release() { <-s.reads }

// readBatch reads the events of org on node after cursor up to upto that
// pass f, and frames as many as one request of p may carry.
func (s *eventReader) readBatch(ctx context.Context, org, node string, f Filter, p provider, after, upto uint64) (batch, error) {
	w := p.wire()
	st := readsql.StreamBatch(org, node, readsql.StreamFilter(f), after, upto, w.maxEvents)
	if !s.acquire(ctx) {
		return batch{}, ctx.Err()
	}
	defer s.release()
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	rows, err := s.store.conn.Query(chconn.WithParams(qctx, st.Params, st.Arrays), st.SQL)
	if err != nil {
		return batch{}, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	b := batch{body: append(make([]byte, 0, 64<<10), w.open...)}
	var last uint64
	read, cut := 0, false
	var elem []byte
	for rows.Next() {
		var r row
		if err := rows.Scan(r.targets()...); err != nil {
			return batch{}, fmt.Errorf("read events: %w", err)
		}
		read++
		elem = encodeElement(elem[:0], p, w, &r)
		need := len(elem) + len(w.close)
		if b.events > 0 {
			need += len(w.sep)
		}
		if len(b.body)+need > w.maxBytes {
			cut = true
			break
		}
		if b.events > 0 {
			b.body = append(b.body, w.sep...)
		}
		b.body = append(b.body, elem...)
		b.events++
		last, b.lastReceived = r.seq, r.received
	}
	if !cut {
		if err := rows.Err(); err != nil {
			return batch{}, fmt.Errorf("read events: %w", err)
		}
	}
	b.next = last
	if !cut && read < w.maxEvents {
		// Every matching event up to upto is in this batch.
		b.next = upto
	}
	if b.events == 0 {
		b.body = nil
	} else {
		b.body = append(b.body, w.close...)
	}
	return b, nil
}

// encodeElement appends r's element, cut down (see shrink) when it exceeds
// the destination's limit for one element or one request.
func encodeElement(buf []byte, p provider, w wire, r *row) []byte {
	limit := min(w.maxItem, w.maxBytes-len(w.open)-len(w.close))
	rec := r.record()
	out := p.element(buf, r, &rec)
	for level := 1; len(out) > limit && level <= 2; level++ {
		small := shrink(rec, level)
		out = p.element(buf[:0], r, &small)
	}
	return out
}

// lag counts a stream's events not yet delivered on the nodes of cursors,
// and returns the receive time of the oldest.
func (s *eventReader) lag(ctx context.Context, org string, f Filter, cursors map[string]uint64) (uint64, time.Time, error) {
	if len(cursors) == 0 {
		return 0, time.Time{}, nil
	}
	st := readsql.StreamLag(org, readsql.StreamFilter(f), cursors)
	if !s.acquire(ctx) {
		return 0, time.Time{}, ctx.Err()
	}
	defer s.release()
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	var n uint64
	var oldest time.Time
	if err := s.store.conn.QueryRow(chconn.WithParams(qctx, st.Params, st.Arrays), st.SQL).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("measure stream lag: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	return n, oldest, nil
}

// startSeq is where a stream created at created starts on node, which had
// no cursor yet: after the node's last event of org received before then.
func (s *eventReader) startSeq(ctx context.Context, org, node string, created time.Time, upto uint64) (uint64, error) {
	st := readsql.StreamStart(org, node, created, upto)
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	var seq uint64
	if err := s.store.conn.QueryRow(params(qctx, st.Params), st.SQL).Scan(&seq); err != nil {
		return 0, fmt.Errorf("find a stream's start on node %s: %w", node, err)
	}
	return seq, nil
}
