package tenant

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Conn is what the tenant store needs of a ClickHouse connection.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// store reads and writes orgs and keys. Each change inserts a new version
// of the row; ReplacingMergeTree(updated_at) with FINAL gives the latest.
type store struct {
	conn Conn
}

func params(ctx context.Context, p clickhouse.Parameters) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithParameters(chconn.Params(p)))
}

func (s *store) putOrg(ctx context.Context, o schema.Org) error {
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{
		"id": o.ID, "plan": o.Plan, "trace": o.TraceURL, "c": chconn.Time(o.CreatedAt), "u": chconn.Time(o.UpdatedAt)}),
		`INSERT INTO orgs (id, plan, trace_url, created_at, updated_at)
		 VALUES ({id:String}, {plan:String}, {trace:String}, {c:DateTime64(3, 'UTC')}, {u:DateTime64(3, 'UTC')})`)
	if err != nil {
		return fmt.Errorf("write org: %w", err)
	}
	return nil
}

func (s *store) orgs(ctx context.Context) (map[string]schema.Org, error) {
	return s.orgsWhere(ctx, "", nil)
}

func (s *store) orgsWhere(ctx context.Context, where string, p clickhouse.Parameters) (map[string]schema.Org, error) {
	q := "SELECT id, plan, trace_url, created_at, updated_at FROM orgs FINAL"
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := s.conn.Query(params(ctx, p), q)
	if err != nil {
		return nil, fmt.Errorf("read orgs: %w", err)
	}
	defer rows.Close()
	out := map[string]schema.Org{}
	for rows.Next() {
		var o schema.Org
		if err := rows.Scan(&o.ID, &o.Plan, &o.TraceURL, &o.CreatedAt, &o.UpdatedAt); err != nil {
			return nil, fmt.Errorf("read orgs: %w", err)
		}
		out[o.ID] = o
	}
	return out, rows.Err()
}

// storedKey is a key as the authenticator needs it.
type storedKey struct {
	schema.APIKey
	hash string
}

func (s *store) putKey(ctx context.Context, k storedKey, updated time.Time) error {
	revoked := ""
	if k.RevokedAt != nil {
		revoked = chconn.Time(*k.RevokedAt)
	}
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{
		"id": k.ID, "org": k.OrgID, "name": k.Name, "role": string(k.Role), "hash": k.hash,
		"c": chconn.Time(k.CreatedAt), "r": revoked, "u": chconn.Time(updated)}),
		`INSERT INTO api_keys (id, org_id, name, role, secret_hash, created_at, revoked_at, updated_at)
		 VALUES ({id:String}, {org:String}, {name:String}, {role:String}, {hash:String},
		         {c:DateTime64(3, 'UTC')}, if({r:String} = '', NULL, parseDateTime64BestEffort({r:String}, 3, 'UTC')),
		         {u:DateTime64(3, 'UTC')})`)
	if err != nil {
		return fmt.Errorf("write api key: %w", err)
	}
	return nil
}

const keyColumns = "id, org_id, name, role, secret_hash, created_at, revoked_at"

func (s *store) keys(ctx context.Context, where string, p clickhouse.Parameters) (map[string]storedKey, error) {
	q := "SELECT " + keyColumns + " FROM api_keys FINAL"
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := s.conn.Query(params(ctx, p), q)
	if err != nil {
		return nil, fmt.Errorf("read api keys: %w", err)
	}
	defer rows.Close()
	out := map[string]storedKey{}
	for rows.Next() {
		var k storedKey
		var role string
		if err := rows.Scan(&k.ID, &k.OrgID, &k.Name, &role, &k.hash, &k.CreatedAt, &k.RevokedAt); err != nil {
			return nil, fmt.Errorf("read api keys: %w", err)
		}
		k.Role = schema.Role(role)
		out[k.ID] = k
	}
	return out, rows.Err()
}

func (s *store) allKeys(ctx context.Context) (map[string]storedKey, error) {
	return s.keys(ctx, "", nil)
}

func (s *store) key(ctx context.Context, id string) (storedKey, bool, error) {
	m, err := s.keys(ctx, "id = {id:String}", clickhouse.Parameters{"id": id})
	k, ok := m[id]
	return k, ok, err
}
