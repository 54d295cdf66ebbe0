package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/internal/chconn"
)

// store reads and writes the streams and stream_cursors tables (see
// schema/sql/0006_streams.sql). Every write inserts a new version of a row;
// reads use FINAL.
type store struct {
	conn    Conn
	timeout time.Duration
}

// def is a stream as stored: its configuration still sealed.
type def struct {
	org, id, name, provider string
	sealed                  string
	filter                  Filter
	paused, deleted         bool
	created, updated        time.Time
}

// params binds the parameters of the next query (chconn escapes them).
func params(ctx context.Context, p map[string]string) context.Context {
	return chconn.WithParams(ctx, p, nil)
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (s *store) putStream(ctx context.Context, d def) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	f, _ := json.Marshal(d.filter)
	err := s.conn.Exec(params(ctx, map[string]string{
		"org": d.org, "id": d.id, "name": d.name, "provider": d.provider, "sealed": d.sealed,
		"filter": string(f), "paused": flag(d.paused), "deleted": flag(d.deleted),
		"c": chconn.Time(d.created), "u": chconn.Time(d.updated)}),
		`INSERT INTO streams (org_id, id, name, provider, config_sealed, filter, paused, deleted, created_at, updated_at)
		 VALUES ({org:String}, {id:String}, {name:String}, {provider:String}, {sealed:String}, {filter:String},
		         {paused:UInt8}, {deleted:UInt8}, {c:DateTime64(3, 'UTC')}, {u:DateTime64(3, 'UTC')})`)
	if err != nil {
		return fmt.Errorf("write stream: %w", err)
	}
	return nil
}

// streams returns the latest version of the streams of org ("" for every
// org), or of the one stream id when id is set; deleted ones included.
func (s *store) streams(ctx context.Context, org, id string) ([]def, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var where []string
	p := map[string]string{}
	if org != "" {
		where, p["org"] = append(where, "org_id = {org:String}"), org
	}
	if id != "" {
		where, p["id"] = append(where, "id = {id:String}"), id
	}
	q := `SELECT org_id, id, name, provider, config_sealed, filter, paused, deleted, created_at, updated_at
	      FROM streams FINAL`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.conn.Query(params(ctx, p), q+" ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	defer rows.Close()
	var out []def
	for rows.Next() {
		var d def
		var filter string
		var paused, deleted uint8
		if err := rows.Scan(&d.org, &d.id, &d.name, &d.provider, &d.sealed, &filter, &paused, &deleted, &d.created, &d.updated); err != nil {
			return nil, fmt.Errorf("read streams: %w", err)
		}
		_ = json.Unmarshal([]byte(filter), &d.filter) // written by putStream
		d.paused, d.deleted = paused == 1, deleted == 1
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	return out, nil
}

// cursor is a stream's position and status on one ingest node.
type cursor struct {
	stream, node      string
	seq               uint64
	delivered, failed uint64
	lastEvent         time.Time // receive time of the last event delivered
	lastDelivery      time.Time
	lastError         string
	lastErrorAt       time.Time
	state             string
	version           uint64
	updated           time.Time
}

func (s *store) putCursor(ctx context.Context, c cursor) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.conn.Exec(params(ctx, map[string]string{
		"stream": c.stream, "node": c.node, "seq": strconv.FormatUint(c.seq, 10),
		"delivered": strconv.FormatUint(c.delivered, 10), "failed": strconv.FormatUint(c.failed, 10),
		"le": chconn.Time(c.lastEvent), "ld": chconn.Time(c.lastDelivery), "err": c.lastError, "ea": chconn.Time(c.lastErrorAt),
		"state": c.state, "version": strconv.FormatUint(c.version, 10), "u": chconn.Time(c.updated)}),
		`INSERT INTO stream_cursors (stream_id, node, seq, delivered, failed, last_event_at, last_delivery_at,
		                             last_error, last_error_at, state, version, updated_at)
		 VALUES ({stream:String}, {node:String}, {seq:UInt64}, {delivered:UInt64}, {failed:UInt64},
		         {le:DateTime64(3, 'UTC')}, {ld:DateTime64(3, 'UTC')}, {err:String}, {ea:DateTime64(3, 'UTC')},
		         {state:String}, {version:UInt64}, {u:DateTime64(3, 'UTC')})`)
	if err != nil {
		return fmt.Errorf("write stream cursor: %w", err)
	}
	return nil
}

// cursors returns a stream's cursors on every node, by node.
func (s *store) cursors(ctx context.Context, stream string) (map[string]cursor, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(params(ctx, map[string]string{"stream": stream}),
		`SELECT stream_id, node, seq, delivered, failed, last_event_at, last_delivery_at, last_error, last_error_at,
		        state, version, updated_at
		 FROM stream_cursors FINAL WHERE stream_id = {stream:String}`)
	if err != nil {
		return nil, fmt.Errorf("read stream cursors: %w", err)
	}
	defer rows.Close()
	out := map[string]cursor{}
	for rows.Next() {
		var c cursor
		if err := rows.Scan(&c.stream, &c.node, &c.seq, &c.delivered, &c.failed, &c.lastEvent, &c.lastDelivery,
			&c.lastError, &c.lastErrorAt, &c.state, &c.version, &c.updated); err != nil {
			return nil, fmt.Errorf("read stream cursors: %w", err)
		}
		out[c.node] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stream cursors: %w", err)
	}
	return out, nil
}
