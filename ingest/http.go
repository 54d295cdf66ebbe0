package ingest

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

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
	principal, _ := schema.PrincipalFrom(c.Request.Context())
	body := &deadlineBody{r: c.Request.Body, rc: http.NewResponseController(c.Writer), timeout: p.cfg.BodyReadTimeout}
	n, err := p.Accept(c.Request.Context(), principal.OrgID, c.GetHeader("Content-Type"), c.GetHeader("Content-Encoding"), body)
	status := http.StatusAccepted
	if err != nil {
		status = httpx.Status(schema.KindOf(err))
		if UnreadBody(err) {
			c.Header("Connection", "close")
		}
		_ = c.Error(err)
	} else {
		c.JSON(status, gin.H{"accepted": n})
	}
	p.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	p.m.latency.Observe(time.Since(start).Seconds())
}

// deadlineBody reads a request body within timeout of its first read: a
// slow sender is cut off (408 body_timeout). Once the body has ended the
// deadline is lifted, since the server reads on in the background to see
// a client go away.
type deadlineBody struct {
	r              io.Reader
	rc             *http.ResponseController
	timeout        time.Duration
	started, ended bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.started {
		b.started = true
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout)) // unsupported by test recorders only
	}
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) && !b.ended {
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
