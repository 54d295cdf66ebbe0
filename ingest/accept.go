package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// Accept decodes, validates and durably appends the events of one request
// body of org: all of them or none. contentType and contentEncoding are the
// request's headers as sent (empty for none); body is read at most up to
// MaxBodyBytes (plus one byte). It returns the number of events accepted,
// or a *schema.Error for anything the sender can correct or retry (a 503's
// RetryAfter set; see UnreadBody) and a plain error for a fault of the
// store.
func (p *Pipeline) Accept(ctx context.Context, org, contentType, contentEncoding string, body io.Reader) (int, error) {
	n, err := p.accept(ctx, org, contentType, contentEncoding, body)
	var se *schema.Error
	if errors.As(err, &se) && se.Kind == schema.KindUnavailable && se.RetryAfter == 0 {
		// A copy, since some errors are shared values.
		cp := *se
		cp.RetryAfter = p.cfg.RetryAfter
		if UnreadBody(err) {
			return 0, &unreadBody{&cp}
		}
		return 0, &cp
	}
	return n, err
}

// unreadBody wraps the error of a body that could not be read to its end.
type unreadBody struct{ err error }

func (e *unreadBody) Error() string { return e.err.Error() }
func (e *unreadBody) Unwrap() error { return e.err }

// UnreadBody reports an error of Accept that left the rest of the body
// unread (too large, too slow, no memory for it): an HTTP server closes
// the connection after its answer.
func UnreadBody(err error) bool {
	var ub *unreadBody
	return errors.As(err, &ub)
}

func (p *Pipeline) accept(ctx context.Context, org, contentType, contentEncoding string, body io.Reader) (int, error) {
	form, err := bodyForm(contentType)
	if err != nil {
		return 0, p.reject(err, 1)
	}
	enc, err := parseEncoding(contentEncoding)
	if err != nil {
		return 0, p.reject(err, 1)
	}
	if p.wal.Full() {
		return 0, p.reject(p.errFull(), 1)
	}
	// The body is read before the request takes a slot (under the read
	// deadline the HTTP layer set): a slow sender holds a little memory
	// for a bounded time, never a slot that another tenant's request needs.
	raw, err := readRaw(body, p.cfg.MaxBodyBytes, p.bodies, p.cfg.RetryAfter)
	if err != nil {
		return 0, p.reject(&unreadBody{err}, 1)
	}
	// The slot bounds the requests decoding at once (CPU); the byte budget
	// bounds their memory. A request gives its slot back once its rows are
	// encoded, before it waits for the write-ahead log's fsync, so that
	// the requests waiting for one fsync are not limited to the slots
	// (one-event requests from hundreds of clients share each fsync); its
	// buffers stay charged to the budget until it answers.
	held := false
	select {
	case p.sem <- struct{}{}:
		held = true
		defer func() {
			if held {
				<-p.sem
			}
		}()
	case <-ctx.Done():
		raw.release()
		return 0, p.reject(schema.Unavailable("cancelled", "the request was cancelled while waiting for its turn"), 1)
	}
	plain, err := decompress(raw, enc, p.cfg.MaxBodyBytes, p.bodies, p.cfg.RetryAfter)
	if err != nil {
		return 0, p.reject(err, 1)
	}
	defer plain.release()
	raws, lines, err := splitBody(plain.Bytes(), form)
	if err != nil {
		return 0, p.reject(err, 1)
	}
	if len(raws) > p.cfg.MaxEvents {
		return 0, p.reject(schema.TooLarge("too_many_events", fmt.Sprintf(
			"the request holds %d events; at most %d are allowed per request", len(raws), p.cfg.MaxEvents)), len(raws))
	}
	if len(raws) == 0 {
		return 0, p.reject(schema.Invalid("no_events", "the request holds no events"), 1)
	}
	plan, err := p.plans.Plan(ctx, org)
	if err != nil {
		return 0, err
	}
	rows, err := p.decode(org, plan, raws, lines)
	if err != nil {
		return 0, p.reject(err, len(raws))
	}
	buf := encodeRows(make([]byte, 0, 256*len(rows)), rows)
	<-p.sem
	held = false
	if err := p.appendEncoded(ctx, buf, len(rows)); err != nil {
		return 0, p.reject(err, len(raws))
	}
	return len(rows), nil
}

// reject counts n events refused for err's code and returns err.
func (p *Pipeline) reject(err error, n int) error {
	code := "internal"
	var se *schema.Error
	if errors.As(err, &se) {
		code = se.Code
	}
	p.m.rejected.WithLabelValues(code).Add(float64(n))
	return err
}

// decode validates every event and builds the rows, or returns one error
// listing the problems (capped) with the index (and line) of each. Events
// without an id get one; an id sent again without a timestamp reuses the
// first one's (see recentIDs).
func (p *Pipeline) decode(org string, plan schema.Plan, raws [][]byte, lines []int) ([]schema.Row, error) {
	now := time.Now().UTC()
	var problems []schema.FieldError
	bad := 0
	events := make([]schema.Event, len(raws))
	for i, raw := range raws {
		var errs []schema.FieldError
		if len(raw) > p.cfg.MaxEventBytes {
			errs = []schema.FieldError{{Index: i, Code: "too_large",
				Message: fmt.Sprintf("the event is %d bytes; at most %d are allowed", len(raw), p.cfg.MaxEventBytes)}}
		} else {
			events[i], errs = schema.DecodeEvent(raw, i, p.cfg.Event, now)
			if o := events[i].OrgID; len(errs) == 0 && o != "" && o != org {
				errs = append(errs, schema.FieldError{Index: i, Field: "orgId", Code: "org_mismatch",
					Message: "orgId names another org than the API key's; omit it or use the key's org"})
			}
			// The store's own access records are hidden from reads unless
			// asked for (includeAccess) by their type: an event of the org
			// with that type would be hidden with them, or pass for one.
			if t := events[i].Event.Type; len(errs) == 0 && schema.IsAccessEventType(t) {
				errs = append(errs, schema.FieldError{Index: i, Field: "event.type", Code: "reserved_event_type",
					Message: fmt.Sprintf("%q is the type of the store's own records of reads; use another name", t)})
			}
		}
		if len(errs) == 0 {
			continue
		}
		bad++
		for _, e := range errs {
			if lines != nil {
				e.Line = lines[i]
			}
			if len(problems) < p.cfg.MaxErrors {
				problems = append(problems, e)
			}
		}
	}
	if bad > 0 {
		return nil, schema.Invalid("invalid_events", fmt.Sprintf(
			"%d of %d events are invalid; nothing was stored (showing at most %d problems)", bad, len(raws), p.cfg.MaxErrors),
			problems...)
	}
	rows := make([]schema.Row, len(events))
	for i := range events {
		e := &events[i]
		e.OrgID = org
		switch {
		case e.ID == "":
			e.ID = schema.NewEventID()
			if e.Timestamp.IsZero() {
				e.Timestamp = now
			}
		case e.Timestamp.IsZero():
			var reused bool
			if e.Timestamp, reused = p.recent.timestamp(org, e.ID, now, now); reused {
				p.m.dedupReplaced.Inc()
			}
		}
		rows[i] = schema.NewRow(e, org, now, plan)
		if rows[i].ID == uuid.Nil {
			return nil, fmt.Errorf("event %d: id %q did not parse after validation", i, e.ID)
		}
	}
	return rows, nil
}
