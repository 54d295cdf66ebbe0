package ingest

import (
	"context"
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
var insertSQL = "INSERT INTO " + schema.EventsTable + " (" + strings.Join(schema.WriteColumns, ", ") + ", ingest_node, ingest_seq)"

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

// insert writes the batch in one INSERT. The deduplication token makes a
// retry of the same batch (after an ambiguous failure) a no-op in ClickHouse.
func insert(ctx context.Context, conn Conn, c *columns, token string) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_deduplicate":         1,
		"insert_deduplication_token": token,
		// A retry after a failure between the events table and the views it
		// feeds (events_by_key) must still fill the views.
		"deduplicate_blocks_in_dependent_materialized_views": 1,
	}))
	b, err := conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	cols := make([]any, 0, len(schema.WriteColumns)+2)
	cols = append(cols, c.org, c.ts, c.id)
	for i := range c.str {
		cols = append(cols, c.str[i])
	}
	cols = append(cols, c.received, c.expires, c.hashes, c.node, c.seq)
	for i, v := range cols {
		if err := b.Column(i).Append(v); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append column %d: %w", i, err)
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
