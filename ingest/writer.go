package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// Conn is what the ingest path needs of a ClickHouse connection.
type Conn interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// insertSQL fills schema.WriteColumns and the two ingest columns: the node
// and the sequence number (see schema/sql/0005_ingest_seq.sql).
var (
	insertSQL      = "INSERT INTO " + schema.EventsTable + " (" + strings.Join(schema.WriteColumns, ", ") + ", ingest_node, ingest_seq)"
	shardInsertSQL = "INSERT INTO " + schema.EventsTable + schema.LocalSuffix + " (" + strings.Join(schema.WriteColumns, ", ") + ", ingest_node, ingest_seq)"
)

// columns is a batch of rows in columnar form, in schema.InsertColumns
// order, for one INSERT over the native protocol.
type columns struct {
	org        []string
	ts         []time.Time
	id         []uuid.UUID
	str        [17][]string // event_type ... trace_id, as in schema.InsertColumns
	received   []time.Time
	expires    []time.Time
	hashes     [][]uint64 // metadata_hashes
	node       []string
	seq        []uint64
	totalBytes int
}

func (c *columns) len() int { return len(c.id) }

// add appends a row that reached ClickHouse through node with sequence seq.
func (c *columns) add(r *schema.Row, node string, seq uint64) {
	c.org = append(c.org, r.OrgID)
	c.ts = append(c.ts, r.Timestamp)
	c.id = append(c.id, r.ID)
	for i, s := range [...]string{r.EventType, r.EventMetadata, r.ActorType, r.ActorID, r.ActorEmail,
		r.ActorUsername, r.ActorName, r.ActorMetadata, r.ProjectID, r.ProjectName, r.ResourceType,
		r.ResourceID, r.ResourceName, r.IPAddress, r.UserAgent, r.UserAgentType, r.TraceID} {
		c.str[i] = append(c.str[i], s)
		c.totalBytes += len(s)
	}
	c.received = append(c.received, r.ReceivedAt)
	c.expires = append(c.expires, r.ExpiresAt)
	c.hashes = append(c.hashes, schema.MetadataHashes(r.EventMetadata))
	c.node = append(c.node, node)
	c.seq = append(c.seq, seq)
}

// slice returns rows [lo, hi) of c, sharing its memory.
func (c *columns) slice(lo, hi int) *columns {
	s := &columns{org: c.org[lo:hi], ts: c.ts[lo:hi], id: c.id[lo:hi], received: c.received[lo:hi],
		expires: c.expires[lo:hi], hashes: c.hashes[lo:hi], node: c.node[lo:hi], seq: c.seq[lo:hi]}
	for i := range c.str {
		s.str[i] = c.str[i][lo:hi]
	}
	return s
}

// row returns row i as it was accepted.
func (c *columns) row(i int) schema.Row {
	r := schema.Row{OrgID: c.org[i], Timestamp: c.ts[i], ID: c.id[i], ReceivedAt: c.received[i], ExpiresAt: c.expires[i]}
	for j, p := range [...]*string{&r.EventType, &r.EventMetadata, &r.ActorType, &r.ActorID, &r.ActorEmail,
		&r.ActorUsername, &r.ActorName, &r.ActorMetadata, &r.ProjectID, &r.ProjectName, &r.ResourceType,
		&r.ResourceID, &r.ResourceName, &r.IPAddress, &r.UserAgent, &r.UserAgentType, &r.TraceID} {
		*p = c.str[j][i]
	}
	return r
}

func (c *columns) reset() {
	c.org, c.ts, c.id = c.org[:0], c.ts[:0], c.id[:0]
	for i := range c.str {
		c.str[i] = c.str[i][:0]
	}
	c.received, c.expires = c.received[:0], c.expires[:0]
	clear(c.hashes)
	c.hashes = c.hashes[:0]
	c.node, c.seq = c.node[:0], c.seq[:0]
	c.totalBytes = 0
}

// InsertChunk is the rows the driver encodes and sends at a time within
// one INSERT. The server gathers the blocks of an INSERT into one block
// before it writes (insertInto sets min_insert_block_size_rows to the
// batch's rows), so a batch still makes one part per partition, stored or
// refused whole under one deduplication token. What changes is the
// driver's side: it encodes into column buffers that it grows by copying
// as they fill and starts afresh for every INSERT. Sent whole, a batch of
// 100,000 rows cost the driver 5.8 µs of CPU per row, most of it growing
// buffers and collecting the garbage; in blocks of 8,192, whose buffers it
// reuses, 3.4 µs, and the raw insert ran 1.18x faster (bench/ceiling,
// 2026-12-03; bench/README, "Ingest ceiling A/B").
const InsertChunk = 8192

// insert writes the batch in one INSERT. The deduplication token makes a
// retry of the same batch (after an ambiguous failure) a no-op in ClickHouse.
func insert(ctx context.Context, conn Conn, c *columns, token string) error {
	return insertInto(ctx, conn, insertSQL, c, token)
}

// insertInto is insert with the INSERT statement's head: insertSQL, or
// on a cluster the shard's local table (shardInsertSQL).
func insertInto(ctx context.Context, conn Conn, sql string, c *columns, token string) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_deduplicate":         1,
		"insert_deduplication_token": token,
		// A retry after a failure between the events table and the views it
		// feeds (events_by_key) must still fill the views.
		"deduplicate_blocks_in_dependent_materialized_views": 1,
		// ReplacingMergeTree would fold rows of equal keys within the block
		// while inserting it. Copies inside one batch are rare (a re-send
		// lands in a later batch, ingest reuses the first copy's time for
		// an id seen again) and every read folds copies with FINAL, so the
		// sort-and-replace pass buys nothing: without it the same rows
		// insert 1.23x faster (bench/ceiling, 2026-12-01).
		"optimize_on_insert": 0,
		// The rows go in blocks of InsertChunk (see there); the server
		// gathers blocks until it has this many rows, then writes: the
		// whole batch, whatever the server's own default, so that it stays
		// one part per partition, stored or refused as a whole, under one
		// token.
		"min_insert_block_size_rows":  c.len(),
		"min_insert_block_size_bytes": 0,
	}))
	b, err := conn.PrepareBatch(ctx, sql)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	n := c.len()
	for lo := 0; lo < n; lo += InsertChunk {
		part := c.slice(lo, min(lo+InsertChunk, n))
		cols := make([]any, 0, len(schema.WriteColumns)+2)
		cols = append(cols, part.org, part.ts, part.id)
		for i := range part.str {
			cols = append(cols, part.str[i])
		}
		cols = append(cols, part.received, part.expires, part.hashes, part.node, part.seq)
		for i, v := range cols {
			if err := b.Column(i).Append(v); err != nil {
				_ = b.Abort()
				// The driver converts the values before sending them: a value it
				// refuses will be refused again.
				return &refusedError{fmt.Errorf("append column %d: %w", i, err)}
			}
		}
		if lo+InsertChunk < n {
			if err := b.Flush(); err != nil {
				_ = b.Abort()
				return fmt.Errorf("insert %d events: %w", n, err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d events: %w", c.len(), err)
	}
	return nil
}

// InsertRows writes rows to ClickHouse in one columnar INSERT, exactly as
// the pipeline does (the benchmarks use it as the raw ceiling).
func InsertRows(ctx context.Context, conn Conn, rows []schema.Row, token string) error {
	var c columns
	for i := range rows {
		c.add(&rows[i], "", 0)
	}
	return insert(ctx, conn, &c, token)
}

// refusedError is a failure that a retry of the same rows would meet
// again: the driver or ClickHouse refused the data itself.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// permanentCodes are the ClickHouse error codes (ErrorCodes.cpp) that
// refuse an INSERT for its data, which every retry would send again. Codes
// that may name the table or the server's state (UNKNOWN_TABLE,
// NO_SUCH_COLUMN_IN_TABLE, TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED, timeouts,
// READONLY ...) are transient here: they concern every batch, and the
// operator fixes them while the events wait in the write-ahead log.
var permanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	53:  "TYPE_MISMATCH",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	128: "TOO_LARGE_ARRAY_SIZE",
	131: "TOO_LARGE_STRING_SIZE",
	321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
	349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
	395: "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO",
	469: "VIOLATED_CONSTRAINT",
}

// permanent reports whether err refuses the rows themselves (see
// permanentCodes), and the ClickHouse error code if it has one.
func permanent(err error) (bool, int32) {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		_, ok := permanentCodes[ex.Code]
		return ok, ex.Code
	}
	var re *refusedError
	return errors.As(err, &re), 0
}
