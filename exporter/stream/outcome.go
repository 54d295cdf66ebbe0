package stream

import (
	"context"

	"github.com/auditstore/auditstore/internal/changeaudit"
	"github.com/auditstore/auditstore/schema"
)

// A stream change and its audit record are one outcome (package
// changeaudit): when the record fails, the stream's previous version is
// written back as a newer one (a new stream is stored deleted, an update
// restored, a deletion revived) and the caller gets 503 audit_unavailable. Workers are told of a change only
// once it is recorded, so an undone stream does not start delivering
// here; other servers reconcile every RefreshInterval and find it undone.
// Only if the undo fails too does the change persist without its record:
// logged as an error naming the stream, answered 500.

// recordOrUndo records typ for d, the stream as changed, or writes prev,
// the stream before the change, back.
func (s *Service) recordOrUndo(ctx context.Context, a schema.Attribution, org, typ string, d def, md map[string]any, prev def) error {
	err := changeaudit.RecordOrUndo(ctx, s.log, "stream change", typ, []any{"org", org, "stream", d.id},
		func(ctx context.Context) error { return s.record(ctx, a, org, typ, d, md) },
		func(ctx context.Context) error {
			prev.updated = s.stamp(d.updated)
			return s.store.putStream(ctx, prev)
		})
	s.changed()
	return err
}
