package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Rejection is one event the server refused.
type Rejection struct {
	// Index is the event's position in its Send or SendWait call (-1 for
	// an event recovered from the spool).
	Index int
	// ID is the event's id.
	ID string
	// Event is the event's JSON as it was sent.
	Event json.RawMessage
	// Details are the server's problems with this event (their Index is
	// rewritten to Index); empty when the server refused the request as a
	// whole (e.g. 401, or 413 for a single event).
	Details []Detail
}

// RejectedError reports events the server refused: not stored, not
// retried.
type RejectedError struct {
	Err        *APIError // the server's answer
	Rejections []Rejection
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "auditstore refused %d event(s) (%d %s: %s)", len(e.Rejections), e.Err.Status, e.Err.Code, e.Err.Message)
	for i, r := range e.Rejections {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Rejections)-i)
			break
		}
		fmt.Fprintf(&b, "; event %d (id %s)", r.Index, r.ID)
		for _, d := range r.Details {
			fmt.Fprintf(&b, ": %s: %s (%s)", d.Field, d.Message, d.Code)
		}
	}
	return b.String()
}

func (e *RejectedError) Unwrap() error { return e.Err }

// call is one SendWait waiting for its events' fate.
type call struct {
	mu       sync.Mutex
	left     int
	rejected *RejectedError
	err      error
	done     chan struct{}
}

func (c *call) settle(r *Rejection, apiErr *APIError, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r != nil {
		if c.rejected == nil {
			c.rejected = &RejectedError{Err: apiErr}
		}
		c.rejected.Rejections = append(c.rejected.Rejections, *r)
	}
	if err != nil && c.err == nil {
		c.err = err
	}
	if c.left--; c.left == 0 {
		close(c.done)
	}
}

func (c *call) result() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rejected != nil {
		return c.rejected
	}
	return c.err
}

// errGaveUp marks events abandoned when Close's deadline passed.
var errGaveUp = errors.New("client: producer closed before the server acknowledged the events")

// deliver sends items until each is acknowledged or refused (or the
// producer gives up at Close). A 400 naming events drops those and sends
// the rest again (a request is stored whole or not at all); a 413 for
// several events splits them.
func (p *Producer) deliver(items []*item) {
	for len(items) > 0 {
		err := p.post(items)
		if err == nil {
			p.settle(items, nil, nil)
			return
		}
		var ae *APIError
		if !errors.As(err, &ae) {
			p.unsent.Add(int64(len(items)))
			p.settle(items, nil, errGaveUp)
			return
		}
		if ae.Status == http.StatusRequestEntityTooLarge && len(items) > 1 {
			half := len(items) / 2
			p.deliver(items[:half])
			items = items[half:]
			continue
		}
		bad := map[int][]Detail{}
		if ae.Status == http.StatusBadRequest {
			for _, d := range ae.Details {
				if d.Index >= 0 && d.Index < len(items) {
					bad[d.Index] = append(bad[d.Index], d)
				}
			}
		}
		if len(bad) == 0 { // refused as a whole
			p.reject(items, ae, nil)
			return
		}
		var rest, refused []*item
		for i, it := range items {
			if _, ok := bad[i]; ok {
				refused = append(refused, it)
			} else {
				rest = append(rest, it)
			}
		}
		p.reject(refused, ae, func(i int) []Detail {
			for j, it := range items {
				if it == refused[i] {
					return bad[j]
				}
			}
			return nil
		})
		items = rest
	}
}

// reject reports refused items to their callers and to Hooks.Rejected.
func (p *Producer) reject(items []*item, ae *APIError, details func(int) []Detail) {
	re := &RejectedError{Err: ae}
	for i, it := range items {
		r := Rejection{Index: it.index, ID: it.id, Event: it.raw}
		if details != nil {
			for _, d := range details(i) {
				d.Index = it.index
				r.Details = append(r.Details, d)
			}
		}
		re.Rejections = append(re.Rejections, r)
		if it.call != nil {
			it.call.settle(&r, ae, nil)
		}
		if it.seg != nil {
			p.spool.done(it.seg, 1)
		}
	}
	p.cfg.Logger.Warn("auditstore refused events; they are not retried", "events", len(items), "error", ae.Error())
	if h := p.cfg.Hooks.Rejected; h != nil {
		h(re)
	}
}

// settle marks items acknowledged (err nil) or abandoned.
func (p *Producer) settle(items []*item, _ *APIError, err error) {
	for _, it := range items {
		if it.call != nil {
			it.call.settle(nil, nil, err)
		}
		if it.seg != nil && err == nil {
			p.spool.done(it.seg, 1)
		}
	}
}

// post sends items as one request, retrying temporary failures until the
// producer gives up. It returns nil on 202, the *APIError of a final
// answer, or errGaveUp.
func (p *Producer) post(items []*item) error {
	start := time.Now()
	body, err := p.enc.encode(items)
	if err != nil {
		return &APIError{Status: 0, Code: "client_encode", Message: err.Error()}
	}
	h := http.Header{"Content-Type": {"application/x-ndjson"}}
	if p.enc.name != None {
		h.Set("Content-Encoding", p.enc.name)
	}
	for attempt := 1; ; attempt++ {
		resp, err := p.c.do(p.abort, request{method: http.MethodPost, path: "/v1/events",
			body: bytes.NewReader(body), header: h}, http.StatusAccepted)
		if err == nil {
			var ok struct {
				Accepted int `json:"accepted"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&ok)
			resp.Body.Close()
			if derr == nil && ok.Accepted == len(items) {
				if hk := p.cfg.Hooks.Delivered; hk != nil {
					hk(len(items), len(body), time.Since(start))
				}
				return nil
			}
			err = fmt.Errorf("server acknowledged %d of %d events (%v)", ok.Accepted, len(items), derr)
		}
		if p.abort.Err() != nil {
			return errGaveUp
		}
		var ae *APIError
		wait := backoff(attempt, p.cfg.MinBackoff, p.cfg.MaxBackoff)
		if errors.As(err, &ae) {
			if !ae.Temporary() && ae.Status != http.StatusRequestTimeout {
				return ae
			}
			if ae.RetryAfter > 0 {
				// Honour the server, spread a little so that producers
				// told the same second do not come back together.
				wait = ae.RetryAfter + rand.N(ae.RetryAfter/10+time.Millisecond)
			}
		}
		p.cfg.Logger.Warn("auditstore: sending events failed; retrying", "events", len(items),
			"attempt", attempt, "wait", wait, "error", err)
		if hk := p.cfg.Hooks.Retry; hk != nil {
			hk(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.abort.Done():
			t.Stop()
			return errGaveUp
		}
	}
}

// backoff is full jitter over an exponential bound.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	bound := lo
	for i := 1; i < attempt && bound < hi; i++ {
		bound *= 2
	}
	bound = min(bound, hi)
	return lo/2 + rand.N(bound-lo/2+1)
}

// encoder builds request bodies: NDJSON, compressed.
type encoder struct {
	name string
	zstd *zstd.Encoder
	gz   sync.Pool
}

func newEncoder(name string) (*encoder, error) {
	e := &encoder{name: name}
	if name == Zstd {
		z, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return nil, fmt.Errorf("client: zstd: %w", err)
		}
		e.zstd = z
	}
	return e, nil
}

func (e *encoder) encode(items []*item) ([]byte, error) {
	n := 0
	for _, it := range items {
		n += len(it.raw) + 1
	}
	plain := make([]byte, 0, n)
	for _, it := range items {
		plain = append(append(plain, it.raw...), '\n')
	}
	switch e.name {
	case Zstd:
		return e.zstd.EncodeAll(plain, make([]byte, 0, n/4)), nil
	case Gzip:
		var buf bytes.Buffer
		buf.Grow(n / 4)
		zw, _ := e.gz.Get().(*gzip.Writer)
		if zw == nil {
			var err error
			if zw, err = gzip.NewWriterLevel(&buf, gzip.BestSpeed); err != nil {
				return nil, err
			}
		} else {
			zw.Reset(&buf)
		}
		if _, err := zw.Write(plain); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		e.gz.Put(zw)
		return buf.Bytes(), nil
	}
	return plain, nil
}
