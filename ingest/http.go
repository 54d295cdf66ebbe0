package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// Guard is middleware that admits only principals with a permission
// (tenant.Require); the router passed to Routes already authenticates.
type Guard func(schema.Permission) gin.HandlerFunc

// Routes registers POST /v1/events and the operator's quarantine
// endpoints (GET /v1/quarantine, POST /v1/quarantine/:id/replay,
// DELETE /v1/quarantine/:id).
func (p *Pipeline) Routes(r gin.IRouter, require Guard) {
	r.POST("/v1/events", require(schema.PermWriteEvents), p.handleEvents)
	p.quarantineRoutes(r, require)
}

func (p *Pipeline) handleEvents(c *gin.Context) {
	start := time.Now()
	status, n, err := p.ingest(c)
	if err != nil {
		status = httpx.Status(schema.KindOf(err))
		if se, ok := err.(*schema.Error); ok && se.Kind == schema.KindUnavailable && se.RetryAfter == 0 {
			// The error middleware sends Retry-After; a copy, since some
			// errors are shared values.
			cp := *se
			cp.RetryAfter = p.cfg.RetryAfter
			err = &cp
		}
		_ = c.Error(err)
	} else {
		c.JSON(status, gin.H{"accepted": n})
	}
	p.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	p.m.latency.Observe(time.Since(start).Seconds())
}

// ingest decodes, validates and durably appends the request's events: all
// of them or none. It returns the status and the number accepted.
func (p *Pipeline) ingest(c *gin.Context) (int, int, error) {
	ctx := c.Request.Context()
	principal, _ := schema.PrincipalFrom(ctx)
	org := principal.OrgID
	form, err := bodyForm(c.GetHeader("Content-Type"))
	if err != nil {
		return 0, 0, p.reject(err, 1)
	}
	encoding := c.GetHeader("Content-Encoding")
	if err := checkEncoding(encoding); err != nil {
		return 0, 0, p.reject(err, 1)
	}
	if p.wal.Full() {
		return 0, 0, p.reject(p.errFull(), 1)
	}
	// The body is read before the request takes a slot, under its own
	// deadline: a slow sender holds a little memory for a bounded time,
	// never a slot that another tenant's request needs.
	raw, err := p.readRequestBody(c)
	if err != nil {
		return 0, 0, p.reject(err, 1)
	}
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-ctx.Done():
		raw.release()
		return 0, 0, p.reject(schema.Unavailable("cancelled", "the request was cancelled while waiting for its turn"), 1)
	}
	body, err := decompress(raw, encoding, p.cfg.MaxBodyBytes, p.bodies, p.cfg.RetryAfter)
	if err != nil {
		return 0, 0, p.reject(err, 1)
	}
	defer body.release()
	raws, lines, err := splitBody(body.Bytes(), form)
	if err != nil {
		return 0, 0, p.reject(err, 1)
	}
	if len(raws) > p.cfg.MaxEvents {
		return 0, 0, p.reject(schema.TooLarge("too_many_events", fmt.Sprintf(
			"the request holds %d events; at most %d are allowed per request", len(raws), p.cfg.MaxEvents)), len(raws))
	}
	if len(raws) == 0 {
		return 0, 0, p.reject(schema.Invalid("no_events", "the request holds no events"), 1)
	}
	plan, err := p.plans.Plan(ctx, org)
	if err != nil {
		return 0, 0, err
	}
	rows, err := p.decode(ctx, org, plan, raws, lines)
	if err != nil {
		return 0, 0, p.reject(err, len(raws))
	}
	if err := p.Append(ctx, rows); err != nil {
		return 0, 0, p.reject(err, len(raws))
	}
	return http.StatusAccepted, len(rows), nil
}

// readRequestBody reads the raw body within BodyReadTimeout. On failure the
// connection is closed after the answer (the rest of the body is not read).
func (p *Pipeline) readRequestBody(c *gin.Context) (*heldBuffer, error) {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Now().Add(p.cfg.BodyReadTimeout)) // unsupported by test recorders only
	raw, err := readRaw(c.Request.Body, p.cfg.MaxBodyBytes, p.bodies, p.cfg.RetryAfter)
	if err != nil {
		c.Header("Connection", "close")
		return nil, err
	}
	// The server reads on in the background once the body ended (to see a
	// client go away); no deadline may cut that short.
	_ = rc.SetReadDeadline(time.Time{})
	return raw, nil
}

// reject counts n events refused for err's code and returns err.
func (p *Pipeline) reject(err error, n int) error {
	code := "internal"
	if se, ok := err.(*schema.Error); ok {
		code = se.Code
	}
	p.m.rejected.WithLabelValues(code).Add(float64(n))
	return err
}

// decode validates every event and builds the rows, or returns one error
// listing the problems (capped) with the index (and line) of each.
func (p *Pipeline) decode(ctx context.Context, org string, plan schema.Plan, raws [][]byte, lines []int) ([]schema.Row, error) {
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
