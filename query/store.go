package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// Conn is what the query package needs of a ClickHouse connection: running
// a SELECT, or an INSERT of the day groups (schema.DayGroupsTable), with
// the parameters and settings carried by ctx (clickhouse.Context). Its
// errors are driver errors; the package wraps them as internal errors, so
// they never reach clients.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	Exec(ctx context.Context, query string, args ...any) error
}

// store runs compiled statements.
type store struct {
	conn     Conn
	timeout  time.Duration
	maxBytes int // of the rows events reads (see rowBytes)

	mu       sync.Mutex
	settings clickhouse.Settings // nil until probed
}

// probe returns the read settings (readsql.ReadSettings) the server
// knows, asking it once, and the query timeout.
func (s *store) probe(ctx context.Context) (clickhouse.Settings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settings != nil {
		return s.settings, nil
	}
	known, err := chconn.Strings(ctx, s.conn, readsql.SettingsProbe().SQL)
	if err != nil {
		return nil, fmt.Errorf("read server settings: %w", err)
	}
	set := clickhouse.Settings{"max_execution_time": int(math.Ceil(s.timeout.Seconds()))}
	for _, st := range readsql.KnownSettings(known) {
		set[st.Name] = st.Value
	}
	s.settings = set
	return set, nil
}

// query runs st; cancel must be called once the rows are read.
func (s *store) query(ctx context.Context, st readsql.Statement) (driver.Rows, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	set, err := s.probe(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(st.Wire()), clickhouse.WithSettings(set))
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
func (s *store) events(ctx context.Context, st readsql.Statement) ([]storedRow, error) {
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
func (s *store) count(ctx context.Context, st readsql.Statement) (uint64, error) {
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
func (s *store) positions(ctx context.Context, st readsql.Statement) ([]schema.Position, error) {
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

// scanRows runs st and reads each row with scan (what names them in
// errors).
func scanRows[T any](ctx context.Context, s *store, st readsql.Statement, what string, scan func(driver.Rows, *T) error) ([]T, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, err)
	}
	return out, nil
}

// hourly runs a readsql.HourlyCounts statement.
func (s *store) hourly(ctx context.Context, st readsql.Statement) ([]hourCount, error) {
	return scanRows(ctx, s, st, "counts", func(rows driver.Rows, h *hourCount) error { return rows.Scan(&h.hour, &h.n) })
}

// EventType is one entry of the event-type catalog of an org.
type EventType struct {
	EventType string    `json:"eventType"`
	Count     uint64    `json:"count"`
	LastSeen  time.Time `json:"lastSeen"`
}

func (s *store) eventTypes(ctx context.Context, st readsql.Statement) ([]EventType, error) {
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

// aggregate runs an aggregate; stored is the sum of its stored column
// (shape.Stored), zero without.
func (s *store) aggregate(ctx context.Context, st readsql.Statement, shape readsql.AggShape) (out []Group, stored uint64, err error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, 0, err
	}
	defer cancel()
	defer rows.Close()
	out = []Group{}
	for rows.Next() {
		var (
			isTop  uint8
			groups = make([]string, len(shape.Groups))
			bucket time.Time
			n      uint64
			ms     = make([]uint64, len(shape.Metrics))
			kept   uint64
		)
		dest := []any{&isTop}
		for i := range groups {
			dest = append(dest, &groups[i])
		}
		if shape.Bucketed {
			dest = append(dest, &bucket)
		}
		dest = append(dest, &n)
		for i := range ms {
			dest = append(dest, &ms[i])
		}
		if shape.Stored {
			dest = append(dest, &kept)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, fmt.Errorf("read aggregate: %w", err)
		}
		stored += kept
		g := Group{}
		if isTop == 0 {
			g["other"] = true
		} else {
			for i, f := range shape.Groups {
				g[string(f)] = groups[i]
			}
		}
		if shape.Bucketed {
			g["time"] = bucket.UTC()
		}
		for i, m := range shape.Metrics {
			g[string(m)] = ms[i]
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, queryErr(ctx, err)
	}
	return out, stored, nil
}
