package exporter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/auditstore/auditstore/schema"
)

// value renders one Arrow cell the way expected() does.
func value(tb testing.TB, col arrow.Array, i int) *string {
	tb.Helper()
	if col.IsNull(i) {
		return nil
	}
	switch a := col.(type) {
	case *array.String:
		return str(a.Value(i))
	case *array.LargeString:
		return str(a.Value(i))
	case *array.Binary:
		return str(string(a.Value(i)))
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return ts(a.Value(i).ToTime(unit))
	case *array.Dictionary:
		return value(tb, a.Dictionary(), a.GetValueIndex(i))
	}
	tb.Fatalf("unexpected arrow type %s", col.DataType())
	return nil
}

func recordsOf(tb testing.TB, rec arrow.Record) []record {
	var out []record
	for i := 0; i < int(rec.NumRows()); i++ {
		r := record{}
		for c, f := range rec.Schema().Fields() {
			r[f.Name] = value(tb, rec.Column(c), i)
		}
		out = append(out, r)
	}
	return out
}

func readParquet(tb testing.TB, b []byte) ([]record, *arrow.Schema) {
	tb.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("parquet: %v", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		tb.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer rr.Release()
	var out []record
	for rr.Next() {
		out = append(out, recordsOf(tb, rr.Record())...)
	}
	if err := rr.Err(); err != nil && err.Error() != "EOF" {
		tb.Fatalf("parquet read: %v", err)
	}
	return out, rr.Schema()
}

func readArrow(tb testing.TB, b []byte) ([]record, *arrow.Schema) {
	tb.Helper()
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("arrow ipc: %v", err)
	}
	defer rd.Release()
	var out []record
	for rd.Next() {
		out = append(out, recordsOf(tb, rd.Record())...)
	}
	if err := rd.Err(); err != nil {
		tb.Fatalf("arrow read: %v", err)
	}
	return out, rd.Schema()
}

func readNDJSON(tb testing.TB, b []byte) []record {
	tb.Helper()
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e schema.StoredEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("ndjson line: %v", err)
		}
		r := record{
			"id": str(e.ID), "timestamp": ts(e.Timestamp), "eventType": str(e.Event.Event.Type),
			"eventMetadata": optional(compact(e.Event.Event.Metadata)), "actorType": str(e.Actor.Type),
			"actorMetadata": optional(compact(e.Actor.Metadata)), "orgId": str(e.OrgID),
			"projectId": optional(e.ProjectID), "projectName": optional(e.ProjectName),
			"ipAddress": optional(e.IPAddress), "userAgent": optional(e.UserAgent),
			"userAgentType": optional(e.UserAgentType), "traceId": optional(e.TraceID),
			"receivedAt": ts(e.ReceivedAt), "createdAt": ts(e.CreatedAt), "expiresAt": ts(e.ExpiresAt),
		}
		who := e.Actor.Identity()
		r["actorId"], r["actorEmail"], r["actorUsername"], r["actorName"] =
			optional(who.ID), optional(who.Email), optional(who.Username), optional(who.Name)
		if e.Resource != nil {
			r["resourceType"], r["resourceId"], r["resourceName"] = optional(e.Resource.Type), optional(e.Resource.ID), optional(e.Resource.Name)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// compact returns JSON as stored (the wire form re-marshals it compactly,
// which is how it was stored by these tests).
func compact(m json.RawMessage) string {
	if len(m) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, m); err != nil {
		return string(m)
	}
	return b.String()
}

// readWithClickHouse reads a downloaded file with ClickHouse's own file()
// table function on the test engine (which shares this filesystem).
func (e *env) readWithClickHouse(tb testing.TB, path, format string) []record {
	tb.Helper()
	cols := ""
	for i, c := range Columns {
		if i > 0 {
			cols += ", "
		}
		switch c.Name {
		case "timestamp", "receivedAt", "createdAt", "expiresAt":
			cols += fmt.Sprintf("concat(replaceOne(toString(toDateTime64(%s, 3, 'UTC')), ' ', 'T'), 'Z')", c.Name)
		default:
			cols += fmt.Sprintf("toNullable(toString(%s))", c.Name)
		}
	}
	// One reading thread and no parallel parsing: rows come back in the
	// file's order, which the comparison checks (blocks read in parallel
	// may be returned out of order).
	q := fmt.Sprintf("SELECT %s FROM file({p:String}, %s) SETTINGS max_threads = 1, input_format_parallel_parsing = 0", cols, format)
	ctx := paramsCtx(map[string]string{"p": path})
	rows, err := e.db.Conn.Query(ctx, q)
	if err != nil {
		tb.Fatalf("clickhouse file(%s): %v", format, err)
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		vals := make([]*string, len(Columns))
		ptrs := make([]any, len(Columns))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		r := record{}
		for i, c := range Columns {
			r[c.Name] = vals[i]
			if vals[i] != nil && *vals[i] == "" && format == "CSVWithNames" {
				r[c.Name] = nil
			}
		}
		out = append(out, r)
	}
	return out
}

var _ = time.Now
