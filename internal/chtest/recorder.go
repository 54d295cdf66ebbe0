package chtest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/schema"
)

// BatchConn is what DirectRecorder needs of a ClickHouse connection.
type BatchConn interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// PlanSource gives an org's current plan.
type PlanSource interface {
	Plan(ctx context.Context, org string) (schema.Plan, error)
}

// DirectRecorder records the store's own audit events for tests that run
// without the ingest pipeline: each event goes straight to ClickHouse, and
// Record returns once ClickHouse has acknowledged it.
type DirectRecorder struct {
	Conn  BatchConn
	Plans PlanSource
}

var insertEvents = "INSERT INTO " + schema.EventsTable + " (" + strings.Join(schema.WriteColumns, ", ") + ")"

// Record writes e as an event of org.
func (r *DirectRecorder) Record(ctx context.Context, org string, e schema.Event) error {
	plan, err := r.Plans.Plan(ctx, org)
	if err != nil {
		return err
	}
	e.OrgID = org
	row := schema.NewRow(&e, org, time.Now(), plan)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplicate": 1}))
	b, err := r.Conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return fmt.Errorf("prepare audit insert: %w", err)
	}
	if err := b.Append(row.WriteValues()...); err != nil {
		_ = b.Abort()
		return fmt.Errorf("append audit event: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert audit event: %w", err)
	}
	return nil
}
