package ingest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// budget bounds the memory of all request bodies held at once: read from
// the network, decompressed, or being decoded. A body is read before its
// request takes a decoding slot, so slow senders hold memory (a few KiB
// each while they trickle) but no slot, and the read deadline ends them.
type budget struct {
	mu        sync.Mutex
	used, max int64
}

func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// bufferedBytes is the budget of cfg's request bodies.
func bufferedBytes(cfg Config) int64 {
	if cfg.MaxBufferedBytes > 0 {
		return cfg.MaxBufferedBytes
	}
	return int64(cfg.MaxConcurrentRequests) * (cfg.MaxBodyBytes + minGrow)
}

// minGrow is the first allocation of a body buffer, and what a body that
// trickles in holds.
const minGrow = 4 << 10

// errBusy is the answer when the bodies in memory fill the budget.
func errBusy(retry time.Duration) error {
	e := schema.Unavailable("busy", "the server holds as many request bodies as it may; retry later")
	e.RetryAfter = retry
	return e
}

// heldBuffer is a pooled buffer whose capacity is charged to a budget.
type heldBuffer struct {
	*bytes.Buffer
	b       *budget
	charged int64
}

// release returns the buffer to the pool and its charge to the budget.
func (h *heldBuffer) release() {
	if h == nil || h.Buffer == nil {
		return
	}
	h.b.give(h.charged)
	bufPool.Put(h.Buffer)
	h.Buffer, h.charged = nil, 0
}

// newHeld returns an empty buffer charged to b: a pooled one when its
// capacity fits the budget, else a new one.
func newHeld(b *budget) *heldBuffer {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if c := int64(buf.Cap()); c > 0 && !b.take(c) {
		buf = new(bytes.Buffer) // let the large one go
	}
	return &heldBuffer{Buffer: buf, b: b, charged: int64(buf.Cap())}
}

// readHeld reads src into a held buffer, at most limit+1 bytes, growing
// (and charging) the buffer as bytes arrive. It fails with errBusy when the
// budget is spent; a read error is returned as is.
func readHeld(src io.Reader, limit int64, b *budget, retry time.Duration) (*heldBuffer, error) {
	h := newHeld(b)
	src = io.LimitReader(src, limit+1)
	for {
		if int64(h.Len()) > limit {
			return h, nil
		}
		if h.Available() == 0 { // then Len = Cap <= limit
			c := int64(h.Cap())
			grown := min(max(2*c, minGrow), limit+1)
			if !b.take(grown - h.charged) {
				h.release()
				return nil, errBusy(retry)
			}
			h.charged = grown
			h.Grow(int(grown) - h.Len())
		}
		spare := h.AvailableBuffer()
		n, err := src.Read(spare[:cap(spare)])
		h.Write(spare[:n])
		if errors.Is(err, io.EOF) {
			return h, nil
		}
		if err != nil {
			h.release()
			return nil, err
		}
	}
}

// readRaw reads a request body as sent (compressed or not), at most max
// bytes, under the read deadline the caller set.
func readRaw(body io.Reader, max int64, b *budget, retry time.Duration) (*heldBuffer, error) {
	h, err := readHeld(body, max, b, retry)
	if err != nil {
		var ne net.Error
		switch {
		case schema.KindOf(err) != 0:
			return nil, err
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
			return nil, &schema.Error{Kind: schema.KindTimeout, Code: "body_timeout",
				Message: "the request body did not arrive in time; send it faster, or in smaller requests"}
		}
		return nil, schema.Invalid("invalid_body", "cannot read the request body: "+cleanErr(err))
	}
	if int64(h.Len()) > max {
		h.release()
		return nil, tooLarge(max)
	}
	return h, nil
}
