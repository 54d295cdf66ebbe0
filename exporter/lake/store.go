package lake

import (
	"context"
	"fmt"
	"github.com/auditstore/auditstore/internal/chconn"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// store reads and writes the lake tables (schema/sql/0010_lake.sql). Every
// write inserts a new version of a row; reads use FINAL. Values reach
// ClickHouse only as server-side parameters.
type store struct {
	conn    Conn
	timeout time.Duration
}

// def is a destination as stored: its target still sealed.
type def struct {
	org, id, name, kind string // org "" receives every org
	sealed              string
	paused, deleted     bool
	created, updated    time.Time
}

// params binds p to the queries of ctx, escaped by chconn.Params (the one
// encoder of server-side parameters), so that any text arrives unchanged.
func params(ctx context.Context, p clickhouse.Parameters, opts ...clickhouse.QueryOption) context.Context {
	return clickhouse.Context(ctx, append(opts, clickhouse.WithParameters(chconn.Params(p)))...)
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

const dt = "DateTime64(3, 'UTC')"

func (s *store) putDestination(ctx context.Context, d def) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{
		"org": d.org, "id": d.id, "name": d.name, "kind": d.kind, "sealed": d.sealed,
		"paused": flag(d.paused), "deleted": flag(d.deleted), "c": chconn.Time(d.created), "u": chconn.Time(d.updated)}),
		`INSERT INTO lake_destinations (org_id, id, name, kind, config_sealed, paused, deleted, created_at, updated_at)
		 VALUES ({org:String}, {id:String}, {name:String}, {kind:String}, {sealed:String}, {paused:UInt8},
		         {deleted:UInt8}, {c:`+dt+`}, {u:`+dt+`})`)
	if err != nil {
		return fmt.Errorf("write lake destination: %w", err)
	}
	return nil
}

// destinations returns the latest versions of the destinations of org (nil
// for every scope), or the one destination id when id is set.
func (s *store) destinations(ctx context.Context, org *string, id string) ([]def, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var where []string
	p := clickhouse.Parameters{}
	if org != nil {
		where, p["org"] = append(where, "org_id = {org:String}"), *org
	}
	if id != "" {
		where, p["id"] = append(where, "id = {id:String}"), id
	}
	q := `SELECT org_id, id, name, kind, config_sealed, paused, deleted, created_at, updated_at FROM lake_destinations FINAL`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.conn.Query(params(ctx, p), q+" ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("read lake destinations: %w", err)
	}
	defer rows.Close()
	var out []def
	for rows.Next() {
		var d def
		var paused, deleted uint8
		if err := rows.Scan(&d.org, &d.id, &d.name, &d.kind, &d.sealed, &paused, &deleted, &d.created, &d.updated); err != nil {
			return nil, fmt.Errorf("read lake destinations: %w", err)
		}
		d.paused, d.deleted = paused == 1, deleted == 1
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read lake destinations: %w", err)
	}
	return out, nil
}

// mark is a destination's position and status on one ingest node.
type mark struct {
	dest, node         string
	seq, pendingUpto   uint64
	files, rows, bytes uint64
	lastFile           string
	lastFileAt         time.Time
	lastEventAt        time.Time
	lastError          string
	lastErrorAt        time.Time
	version            uint64
}

func (s *store) putMark(ctx context.Context, m mark) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{
		"dest": m.dest, "node": m.node, "seq": u64(m.seq), "pending": u64(m.pendingUpto),
		"files": u64(m.files), "rows": u64(m.rows), "bytes": u64(m.bytes), "lf": m.lastFile,
		"lfa": chconn.Time(m.lastFileAt), "lea": chconn.Time(m.lastEventAt), "err": m.lastError, "ea": chconn.Time(m.lastErrorAt),
		"version": u64(m.version), "u": chconn.Time(time.Now())}),
		`INSERT INTO lake_watermarks (dest_id, node, seq, pending_upto, files, rows, bytes, last_file, last_file_at,
		                              last_event_at, last_error, last_error_at, version, updated_at)
		 VALUES ({dest:String}, {node:String}, {seq:UInt64}, {pending:UInt64}, {files:UInt64}, {rows:UInt64},
		         {bytes:UInt64}, {lf:String}, {lfa:`+dt+`}, {lea:`+dt+`}, {err:String}, {ea:`+dt+`},
		         {version:UInt64}, {u:`+dt+`})`)
	if err != nil {
		return fmt.Errorf("write lake watermark: %w", err)
	}
	return nil
}

// marks returns a destination's watermarks on every node, by node.
func (s *store) marks(ctx context.Context, dest string) (map[string]mark, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(params(ctx, clickhouse.Parameters{"dest": dest}),
		`SELECT dest_id, node, seq, pending_upto, files, rows, bytes, last_file, last_file_at, last_event_at,
		        last_error, last_error_at, version
		 FROM lake_watermarks FINAL WHERE dest_id = {dest:String}`)
	if err != nil {
		return nil, fmt.Errorf("read lake watermarks: %w", err)
	}
	defer rows.Close()
	out := map[string]mark{}
	for rows.Next() {
		var m mark
		if err := rows.Scan(&m.dest, &m.node, &m.seq, &m.pendingUpto, &m.files, &m.rows, &m.bytes, &m.lastFile,
			&m.lastFileAt, &m.lastEventAt, &m.lastError, &m.lastErrorAt, &m.version); err != nil {
			return nil, fmt.Errorf("read lake watermarks: %w", err)
		}
		out[m.node] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read lake watermarks: %w", err)
	}
	return out, nil
}

// fileRow is one delivered file.
type fileRow struct {
	dest, partition, name, node string
	seqFrom, seqTo              uint64
	rows, bytes                 uint64
	checksum                    string
	minTime, maxTime, written   time.Time
}

func (s *store) putFile(ctx context.Context, f fileRow) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{
		"dest": f.dest, "part": f.partition, "name": f.name, "node": f.node, "from": u64(f.seqFrom),
		"to": u64(f.seqTo), "rows": u64(f.rows), "bytes": u64(f.bytes), "sum": f.checksum,
		"min": chconn.Time(f.minTime), "max": chconn.Time(f.maxTime), "w": chconn.Time(f.written)}),
		`INSERT INTO lake_files (dest_id, partition, name, node, seq_from, seq_to, rows, bytes, checksum, min_time,
		                         max_time, written_at)
		 VALUES ({dest:String}, {part:String}, {name:String}, {node:String}, {from:UInt64}, {to:UInt64},
		         {rows:UInt64}, {bytes:UInt64}, {sum:String}, {min:`+dt+`}, {max:`+dt+`}, {w:`+dt+`})`)
	if err != nil {
		return fmt.Errorf("write lake file: %w", err)
	}
	return nil
}

// files returns the files of one partition of a destination, by name.
func (s *store) files(ctx context.Context, dest, partition string) ([]fileRow, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(params(ctx, clickhouse.Parameters{"dest": dest, "part": partition}),
		`SELECT dest_id, partition, name, node, seq_from, seq_to, rows, bytes, checksum, min_time, max_time, written_at
		 FROM lake_files FINAL WHERE dest_id = {dest:String} AND partition = {part:String} ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read lake files: %w", err)
	}
	defer rows.Close()
	var out []fileRow
	for rows.Next() {
		var f fileRow
		if err := rows.Scan(&f.dest, &f.partition, &f.name, &f.node, &f.seqFrom, &f.seqTo, &f.rows, &f.bytes,
			&f.checksum, &f.minTime, &f.maxTime, &f.written); err != nil {
			return nil, fmt.Errorf("read lake files: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read lake files: %w", err)
	}
	return out, nil
}
