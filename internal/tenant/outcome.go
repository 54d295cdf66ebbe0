package tenant

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/internal/changeaudit"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// A change and its audit record are one outcome (package changeaudit). A
// change to an org or a key is written first (the recorder needs the
// org's plan, so an org must exist before its org.create record can be
// written); when its record fails, the change is undone: a new key is
// deleted, a revoked key restored, an org's previous plan written back as
// a newer version, a new org deleted.

// recordOrUndo makes e durable, or undoes the change it records.
func (s *Service) recordOrUndo(ctx context.Context, org string, e schema.Event, undo func(context.Context) error) error {
	return changeaudit.RecordOrUndo(ctx, s.log, "change", e.Event.Type, []any{"org", org},
		func(ctx context.Context) error { return s.rec.Record(ctx, org, e) }, undo)
}

// deleteOrg removes the org row written at o.CreatedAt (an org whose
// creation was undone; another instance's row of the same id is kept).
func (s *store) deleteOrg(ctx context.Context, o schema.Org) error {
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{"id": o.ID, "c": chconn.Time(o.CreatedAt)}),
		`DELETE FROM orgs WHERE id = {id:String} AND created_at = {c:DateTime64(3, 'UTC')}`)
	if err != nil {
		return fmt.Errorf("delete org: %w", err)
	}
	return nil
}

// deleteKey removes every version of a key (a key whose creation was
// undone: its random id names nothing else).
func (s *store) deleteKey(ctx context.Context, id string) error {
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{"id": id}), `DELETE FROM api_keys WHERE id = {id:String}`)
	if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	return nil
}

// after is a version time later than prev and not before now.
func (s *Service) after(prev time.Time) time.Time {
	t := s.now().UTC().Truncate(time.Millisecond)
	if !t.After(prev) {
		t = prev.Add(time.Millisecond)
	}
	return t
}
