package exporter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// streamNDJSON writes one event per line in the API's wire format (the
// objects GET /v1/events returns), read over the native protocol in
// blocks, so memory stays flat whatever the size.
func (x *Exporter) streamNDJSON(c *gin.Context, st readsql.Statement, read map[string]string, name string) {
	set := clickhouse.Settings{"prefer_column_name_to_alias": 1, "max_execution_time": x.maxSeconds()}
	for k, v := range read {
		set[k] = v
	}
	// Cancelled before the rows are closed (defers run last-in first-out),
	// so that an aborted export stops its query instead of draining it.
	ctx, cancel := context.WithCancel(c.Request.Context())
	ctx = clickhouse.Context(ctx, clickhouse.WithQueryID(newQueryID()),
		clickhouse.WithParameters(clickhouse.Parameters(st.Wire())), clickhouse.WithSettings(set))
	rows, err := x.conn.Query(ctx, st.SQL)
	if err != nil {
		cancel()
		_ = c.Error(fmt.Errorf("export ndjson: %w", err))
		return
	}
	defer rows.Close()
	defer cancel()
	x.begin(c, Formats["ndjson"], name)
	w := bufio.NewWriterSize(deadlineWriter{w: c.Writer, rc: http.NewResponseController(c.Writer), timeout: x.cfg.WriteTimeout}, 256<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var r schema.Row
	var created time.Time
	targets := r.ScanTargets(&created)
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			x.abort(c, "scan", err)
		}
		if err := enc.Encode(r.Stored(created)); err != nil {
			x.abort(c, "write", err)
		}
	}
	if err := rows.Err(); err != nil {
		x.abort(c, "read", err)
	}
	if err := w.Flush(); err != nil {
		x.abort(c, "write", err)
	}
}

func (x *Exporter) abort(c *gin.Context, stage string, err error) {
	x.log.Warn("export aborted", "format", "ndjson", "stage", stage, "error", err)
	panic(http.ErrAbortHandler)
}
