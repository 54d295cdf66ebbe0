package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Conn is what the query package needs of a ClickHouse connection: running
// a SELECT with the parameters and settings carried by ctx
// (clickhouse.Context). Its errors are driver errors; the package wraps
// them as internal errors, so they never reach clients.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// readSettings are the settings of every read. Each is sound because the
// copies of a re-sent event (same org_id, timestamp and id) carry the same
// event: they differ at most in received_at, expires_at and the ingest
// columns, which no filter but the expiry looks at:
//
//   - do_not_merge_across_partitions_select_final: the partition key is
//     (retention days, event day), the same for every copy, so FINAL may
//     fold each partition on its own; a partition of one part needs no
//     merging at all. Measured about 2x faster on the page and count shapes.
//   - use_skip_indexes_if_final with exact mode off: a skip index drops a
//     granule only when none of its rows can match; the copies of an event
//     all match or all fail, so reading only the surviving copies still
//     yields each matching event once. Exact mode would re-add every granule
//     with the same key range (for the bloom filters on resource, trace and
//     actor ids: all of the org's range), costing 3-6x on those shapes.
//   - optimize_move_to_prewhere_if_final: filtering copies before the merge
//     gives the same result for the same reason.
//
// The one filter on a column copies may not share is the expiry: a copy
// received later expires later, so for at most the delay between the two
// receipts the event is still shown by its later copy, and only once.
//
// Settings unknown to the server (older releases) are left out; see probe.
var readSettings = []struct {
	name  string
	value any
}{
	{"do_not_merge_across_partitions_select_final", 1},
	{"use_skip_indexes_if_final", 1},
	{"use_skip_indexes_if_final_exact_mode", 0},
	{"optimize_move_to_prewhere_if_final", 1},
}

// ReadSettings returns the read settings every query of this package runs
// with on a server that knows them all, as text: for benchmarks that run
// the same statements straight on ClickHouse.
func ReadSettings() map[string]string {
	m := make(map[string]string, len(readSettings))
	for _, st := range readSettings {
		m[st.name] = fmt.Sprint(st.value)
	}
	return m
}

// store runs compiled statements.
type store struct {
	conn     Conn
	timeout  time.Duration
	maxBytes int // of the rows events reads (see rowBytes)

	mu       sync.Mutex
	settings clickhouse.Settings // nil until probed
}

// WireParams returns the parameters of st as the driver must send them
// (escaped by chconn, the one encoder), for running a Statement outside
// the store.
func (st Statement) WireParams() clickhouse.Parameters {
	params := make(clickhouse.Parameters, len(st.Params))
	for k, v := range st.Params {
		params[k] = chconn.Escape(v)
	}
	return params
}

// probe returns the read settings the server knows, asking it once.
func (s *store) probe(ctx context.Context) (clickhouse.Settings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settings != nil {
		return s.settings, nil
	}
	names := make([]string, len(readSettings))
	for i, st := range readSettings {
		names[i] = "'" + st.name + "'"
	}
	rows, err := s.conn.Query(ctx, "SELECT name FROM system.settings WHERE name IN ("+strings.Join(names, ", ")+")")
	if err != nil {
		return nil, fmt.Errorf("read server settings: %w", err)
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read server settings: %w", err)
		}
		known[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read server settings: %w", err)
	}
	set := clickhouse.Settings{"max_execution_time": int(math.Ceil(s.timeout.Seconds()))}
	for _, st := range readSettings {
		if known[st.name] {
			set[st.name] = st.value
		}
	}
	s.settings = set
	return set, nil
}

// query runs st; cancel must be called once the rows are read.
func (s *store) query(ctx context.Context, st Statement) (driver.Rows, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	set, err := s.probe(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(st.WireParams()), clickhouse.WithSettings(set))
	rows, err := s.conn.Query(ctx, st.SQL)
	if err != nil {
		cancel()
		return nil, nil, queryErr(ctx, err)
	}
	return rows, cancel, nil
}

var errTimeout = schema.Unavailable("query_timeout",
	"the query took too long: narrow the time range (from, to) or add filters")

// queryErr turns a timeout into a 503 the client can act on; any other
// failure stays an internal error.
func queryErr(ctx context.Context, err error) error {
	var (
		ex *clickhouse.Exception
		ne net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() == context.DeadlineExceeded,
		errors.Is(err, os.ErrDeadlineExceeded), // the driver's read deadline, from the context's
		errors.As(err, &ne) && ne.Timeout(),
		errors.As(err, &ex) && ex.Code == 159: // TIMEOUT_EXCEEDED
		return errTimeout
	}
	return fmt.Errorf("query events: %w", err)
}

// storedRow is one event read back, with its sort position.
type storedRow struct {
	row     schema.Row
	created time.Time
}

// position returns the place of r in the order s.
func (r *storedRow) position(s schema.Sort) schema.Position {
	pos := schema.Position{Timestamp: r.row.Timestamp, ID: r.row.ID}
	switch s.By {
	case schema.SortEventType:
		pos.Value = r.row.EventType
	case schema.SortActor:
		pos.Value = r.row.ActorID
	}
	return pos
}

// rowBytes is about the size of r in memory and in an answer: its text.
func rowBytes(r *schema.Row) int {
	return 200 + len(r.OrgID) + len(r.EventType) + len(r.EventMetadata) + len(r.ActorType) + len(r.ActorID) +
		len(r.ActorEmail) + len(r.ActorUsername) + len(r.ActorName) + len(r.ActorMetadata) + len(r.ProjectID) +
		len(r.ProjectName) + len(r.ResourceType) + len(r.ResourceID) + len(r.ResourceName) + len(r.IPAddress) +
		len(r.UserAgent) + len(r.UserAgentType) + len(r.TraceID)
}

// cut reports whether rows passed the byte bound, which is where events
// stopped reading them.
func (s *store) cut(rows []storedRow) bool {
	n := 0
	for i := range rows {
		n += rowBytes(&rows[i].row)
	}
	return n > s.maxBytes
}

// events runs a statement selecting schema.StoredColumns. It stops after
// the row that takes the rows past maxBytes (see cut).
func (s *store) events(ctx context.Context, st Statement) ([]storedRow, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close()
	var out []storedRow
	size := 0
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(r.row.ScanTargets(&r.created)...); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		out = append(out, r)
		if size += rowBytes(&r.row); size > s.maxBytes {
			return out, nil // closing the rows cancels the rest of the query
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, err)
	}
	return out, nil
}

// count runs a statement selecting one count.
func (s *store) count(ctx context.Context, st Statement) (uint64, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return 0, err
	}
	defer cancel()
	defer rows.Close()
	var n uint64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("read count: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, queryErr(ctx, err)
	}
	return n, nil
}

// positions runs a statement selecting (timestamp, id).
func (s *store) positions(ctx context.Context, st Statement) ([]schema.Position, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close()
	var out []schema.Position
	for rows.Next() {
		var p schema.Position
		if err := rows.Scan(&p.Timestamp, &p.ID); err != nil {
			return nil, fmt.Errorf("read keys: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, err)
	}
	return out, nil
}

// hourCount is the number of events of one UTC hour.
type hourCount struct {
	hour time.Time
	n    uint64
}

// hourly runs a CompileHourlyCounts statement.
func (s *store) hourly(ctx context.Context, st Statement) ([]hourCount, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close()
	var out []hourCount
	for rows.Next() {
		var h hourCount
		if err := rows.Scan(&h.hour, &h.n); err != nil {
			return nil, fmt.Errorf("read counts: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, err)
	}
	return out, nil
}

// EventType is one entry of the event-type catalog of an org.
type EventType struct {
	EventType string    `json:"eventType"`
	Count     uint64    `json:"count"`
	LastSeen  time.Time `json:"lastSeen"`
}

func (s *store) eventTypes(ctx context.Context, st Statement) ([]EventType, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close()
	out := []EventType{}
	for rows.Next() {
		var t EventType
		if err := rows.Scan(&t.EventType, &t.Count, &t.LastSeen); err != nil {
			return nil, fmt.Errorf("read event types: %w", err)
		}
		t.LastSeen = t.LastSeen.UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, err)
	}
	return out, nil
}

// Group is one row of an aggregate: the group values by field name, "time"
// (the bucket start) when bucketed, the metrics by name, and "other": true
// on the row that folds the groups beyond top.
type Group map[string]any

func (s *store) aggregate(ctx context.Context, st Statement, shape aggShape) ([]Group, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close()
	out := []Group{}
	for rows.Next() {
		var (
			isTop  uint8
			groups = make([]string, len(shape.groups))
			bucket time.Time
			n      uint64
			ms     = make([]uint64, len(shape.metrics))
		)
		dest := []any{&isTop}
		for i := range groups {
			dest = append(dest, &groups[i])
		}
		if shape.bucketed {
			dest = append(dest, &bucket)
		}
		dest = append(dest, &n)
		for i := range ms {
			dest = append(dest, &ms[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read aggregate: %w", err)
		}
		g := Group{}
		if isTop == 0 {
			g["other"] = true
		} else {
			for i, f := range shape.groups {
				g[string(f)] = groups[i]
			}
		}
		if shape.bucketed {
			g["time"] = bucket.UTC()
		}
		for i, m := range shape.metrics {
			g[string(m)] = ms[i]
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, err)
	}
	return out, nil
}
