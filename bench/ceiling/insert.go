package main

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/schema"
)

// block is a batch of rows in columnar form, in schema.WriteColumns order
// and then the two ingest columns, as the pipeline holds them: built
// before any clock starts. What the pipeline pays from there on (the
// driver's conversion and encoding, sending, ClickHouse's insert) is timed.
type block []any

// columnsOf turns rows into one block, column by column, from
// Row.WriteValues (metadata hashes computed here, as the writer does).
func columnsOf(rows []schema.Row) (block, error) {
	n := len(schema.WriteColumns)
	b := make(block, n+2)
	for i := range rows {
		vals := rows[i].WriteValues()
		if len(vals) != n {
			return nil, fmt.Errorf("row has %d values, want %d", len(vals), n)
		}
		for j, v := range vals {
			var err error
			if b[j], err = appendValue(b[j], v, len(rows)); err != nil {
				return nil, fmt.Errorf("column %s: %w", schema.WriteColumns[j], err)
			}
		}
	}
	node, seq := make([]string, len(rows)), make([]uint64, len(rows))
	for i := range seq {
		node[i], seq[i] = "bench", uint64(i+1)
	}
	b[n], b[n+1] = node, seq
	return b, nil
}

func appendValue(col, v any, capacity int) (any, error) {
	switch v := v.(type) {
	case string:
		s, _ := col.([]string)
		if s == nil {
			s = make([]string, 0, capacity)
		}
		return append(s, v), nil
	case time.Time:
		s, _ := col.([]time.Time)
		if s == nil {
			s = make([]time.Time, 0, capacity)
		}
		return append(s, v), nil
	case uuid.UUID:
		s, _ := col.([]uuid.UUID)
		if s == nil {
			s = make([]uuid.UUID, 0, capacity)
		}
		return append(s, v), nil
	case []uint64:
		s, _ := col.([][]uint64)
		if s == nil {
			s = make([][]uint64, 0, capacity)
		}
		return append(s, v), nil
	}
	return nil, fmt.Errorf("unexpected value type %T", v)
}

// slice returns rows [lo, hi) of b, sharing its memory.
func (b block) slice(lo, hi int) block {
	out := make(block, len(b))
	for j, c := range b {
		switch c := c.(type) {
		case []string:
			out[j] = c[lo:hi]
		case []time.Time:
			out[j] = c[lo:hi]
		case []uuid.UUID:
			out[j] = c[lo:hi]
		case [][]uint64:
			out[j] = c[lo:hi]
		case []uint64:
			out[j] = c[lo:hi]
		}
	}
	return out
}

// insertColumns are the INSERT's column names; without hashes the column
// is left out.
func insertColumns(hashes bool) []string {
	cols := []string{}
	for _, c := range schema.WriteColumns {
		if c != schema.ColMetadataHashes || hashes {
			cols = append(cols, c)
		}
	}
	return append(cols, "ingest_node", "ingest_seq")
}

// baseSettings are the pipeline's insert settings (ingest/writer.go): a
// deduplication token per batch, views completed on a retry, no
// sort-and-replace pass, the batch's blocks gathered into one.
func baseSettings(token string, rows int) map[string]string {
	return map[string]string{"insert_deduplicate": "1", "insert_deduplication_token": token,
		"deduplicate_blocks_in_dependent_materialized_views": "1", "optimize_on_insert": "0",
		"min_insert_block_size_rows": strconv.Itoa(rows), "min_insert_block_size_bytes": "0"}
}

// insertAll inserts every row of all in INSERTs of batch rows into table
// from writers goroutines, and returns the time it took.
func insertAll(ctx context.Context, conn driver.Conn, table string, all block, rows, batch, writers int, v variant, tag string) (time.Duration, error) {
	cols := insertColumns(!v.noHashes)
	sql := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ")"
	hashAt := -1
	for j, c := range schema.WriteColumns {
		if c == schema.ColMetadataHashes {
			hashAt = j
		}
	}
	queue := make(chan int)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range queue {
				b := all.slice(lo, min(lo+batch, rows))
				if v.noHashes {
					b = append(b[:hashAt:hashAt], b[hashAt+1:]...)
				}
				set := clickhouse.Settings{}
				for k, val := range baseSettings(fmt.Sprintf("%s-%d", tag, lo), b.rows()) {
					set[k] = val
				}
				for k, val := range v.settings {
					if val == "" {
						delete(set, k)
					} else {
						set[k] = val
					}
				}
				if err := send(clickhouse.Context(ctx, clickhouse.WithSettings(set)), conn, sql, b, v.chunk); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for lo := 0; lo < rows; lo += batch {
		select {
		case queue <- lo:
		case err = <-errs:
			break feed
		}
	}
	close(queue)
	wg.Wait()
	el := time.Since(start)
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return el, err
}

// send inserts b in one INSERT, in blocks of chunk rows as ingest's
// writer sends a batch (0: ingest.InsertChunk; -1: one block).
func send(ctx context.Context, conn driver.Conn, sql string, b block, chunk int) error {
	batch, err := conn.PrepareBatch(ctx, sql)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	n := b.rows()
	switch {
	case chunk == 0:
		chunk = ingest.InsertChunk
	case chunk < 0:
		chunk = n
	}
	for lo := 0; lo < n; lo += chunk {
		part := b.slice(lo, min(lo+chunk, n))
		for i, c := range part {
			if err := batch.Column(i).Append(c); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("append column %d: %w", i, err)
			}
		}
		if lo+chunk < n {
			if err := batch.Flush(); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("send block: %w", err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// rows is the number of rows in b.
func (b block) rows() int { return reflect.ValueOf(b[0]).Len() }
