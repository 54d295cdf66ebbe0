package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// Guard admits only principals with a permission (tenant.Require).
type Guard func(schema.Permission) gin.HandlerFunc

// Routes registers GET /v1/export on r, which already authenticates.
func (x *Exporter) Routes(r gin.IRouter, require Guard) {
	r.GET("/v1/export", require(schema.PermExport), x.handleExport)
}

func (x *Exporter) handleExport(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), x.cfg.MaxDuration)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	p, _ := schema.PrincipalFrom(ctx)
	req, err := parseRequest(c.Request.URL.Query())
	if err != nil {
		_ = c.Error(err)
		return
	}
	var scope map[schema.Field][]string
	if p.Viewer != nil {
		scope = p.Viewer.Scope
	}
	f, err := readsql.ParseFilter(req.filters, x.cfg.Limits, scope)
	if err != nil {
		_ = c.Error(err)
		return
	}
	read, err := x.readSettings(ctx)
	if err != nil {
		_ = c.Error(err)
		return
	}
	st := readsql.Export(p.OrgID, f, req.format.clickhouse)
	// Reading is audited before any byte leaves.
	md := map[string]any{"format": req.format.Name, "filters": req.filters}
	ev := schema.Attribution{Principal: p, IPAddress: c.ClientIP(), UserAgent: c.Request.UserAgent()}.
		Event(schema.EventExport, nil, md, x.now())
	if err := x.rec.Record(ctx, p.OrgID, ev); err != nil {
		_ = c.Error(fmt.Errorf("record export audit event: %w", err))
		return
	}
	name := fmt.Sprintf("auditstore-%s-%s.%s", p.OrgID, x.now().UTC().Format("20060102T150405Z"), req.format.Extension)
	if req.format.clickhouse == "" {
		x.streamNDJSON(c, st, read, name)
		return
	}
	queryID := newQueryID()
	settings := map[string]string{}
	for k, v := range read {
		settings[k] = v
	}
	for k, v := range req.format.settings {
		settings[k] = v
	}
	settings["max_execution_time"] = strconv.Itoa(x.maxSeconds())
	body, err := x.ch.stream(ctx, st.SQL, queryID, st.Wire(), settings)
	if err != nil {
		_ = c.Error(fmt.Errorf("export %s: %w", req.format.Name, err))
		return
	}
	defer body.Close()
	x.begin(c, req.format, name)
	n, err := x.copy(c, body)
	if err != nil {
		// Headers are gone: the only honest signal left is to break the
		// connection, so the client sees a failed download, not a short file.
		x.log.Warn("export aborted", "org", p.OrgID, "format", req.format.Name, "bytes", n, "query_id", queryID, "error", err)
		panic(http.ErrAbortHandler)
	}
}

func (x *Exporter) begin(c *gin.Context, f Format, name string) {
	c.Header("Content-Type", f.ContentType)
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Status(http.StatusOK)
}

// maxSeconds is MaxDuration in whole seconds, for max_execution_time.
func (x *Exporter) maxSeconds() int { return int(math.Ceil(x.cfg.MaxDuration.Seconds())) }

// deadlineWriter moves the write deadline on before every write, so that
// a client that keeps reading is never cut and one that stops is.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}

// copy streams src to the client with a write deadline per chunk, so a
// client that stops reading cannot hold the query open forever.
func (x *Exporter) copy(c *gin.Context, src io.Reader) (int64, error) {
	rc := http.NewResponseController(c.Writer)
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(x.cfg.WriteTimeout))
			w, werr := c.Writer.Write(buf[:k])
			n += int64(w)
			if werr != nil {
				return n, fmt.Errorf("write to client: %w", werr)
			}
		}
		if errors.Is(rerr, io.EOF) {
			c.Writer.Flush()
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("read from clickhouse: %w", rerr)
		}
	}
}
