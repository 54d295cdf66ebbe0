package main

import (
	"context"
	"io"
	"log"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/auditstore/auditstore/exporter"
)

// goParquet writes the same export as the server's Parquet, in Go: rows
// over the native protocol into Arrow record batches of 65,536 rows, then
// pqarrow with zstd and 1M-row groups, to io.Discard. It returns seconds.
func goParquet(ctx context.Context, conn driver.Conn, n int) float64 {
	fields := make([]arrow.Field, len(exporter.Columns))
	exprs := make([]string, len(exporter.Columns))
	for i, c := range exporter.Columns {
		typ := arrow.DataType(arrow.BinaryTypes.String)
		expr := c.Expr
		switch c.Name {
		case "timestamp", "receivedAt", "createdAt", "expiresAt":
			typ = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
		default:
			expr = strings.TrimSuffix(strings.TrimPrefix(expr, "nullIf("), ", '')") // plain column; "" becomes null below
		}
		fields[i] = arrow.Field{Name: c.Name, Type: typ, Nullable: true}
		exprs[i] = expr
	}
	sch := arrow.NewSchema(fields, nil)
	start := time.Now()
	rows, err := conn.Query(clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"org": org})),
		"SELECT "+strings.Join(exprs, ", ")+" FROM events FINAL WHERE org_id = {org:String} ORDER BY org_id, timestamp, id")
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(1_000_000))
	w, err := pqarrow.NewFileWriter(sch, io.Discard, props, pqarrow.DefaultWriterProps())
	if err != nil {
		log.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	vals := make([]any, len(fields))
	strs := make([]string, len(fields))
	times := make([]time.Time, len(fields))
	for i, f := range fields {
		if f.Type.ID() == arrow.TIMESTAMP {
			vals[i] = &times[i]
		} else {
			vals[i] = &strs[i]
		}
	}
	count := 0
	flush := func() {
		rec := b.NewRecord()
		if err := w.WriteBuffered(rec); err != nil {
			log.Fatal(err)
		}
		rec.Release()
	}
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			log.Fatal(err)
		}
		for i, f := range fields {
			if f.Type.ID() == arrow.TIMESTAMP {
				b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(times[i].UnixMilli()))
			} else if strs[i] == "" {
				b.Field(i).AppendNull()
			} else {
				b.Field(i).(*array.StringBuilder).Append(strs[i])
			}
		}
		if count++; count%65536 == 0 {
			flush()
		}
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	flush()
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	if count < n { // the org's own audit events (key creation) come on top
		log.Fatalf("go parquet: %d rows, want at least %d", count, n)
	}
	return time.Since(start).Seconds()
}
