package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// A stream change and its audit record are one outcome: the change is
// written, then its record is made durable; when the record fails, the
// stream's previous version is written back as a newer one (a new stream
// is stored deleted, an update restored, a deletion revived) and the
// caller gets 503 audit_unavailable. Workers are told of a change only
// once it is recorded, so an undone stream does not start delivering
// here; other servers reconcile every RefreshInterval and find it undone.
// Only if the undo fails too does the change persist without its record:
// logged as an error naming the stream, answered 500.

// undoTimeout bounds an undo, which runs even when the request's context
// has ended.
const undoTimeout = 15 * time.Second

// recordOrUndo records typ for d, the stream as changed, or writes prev,
// the stream before the change, back.
func (s *Service) recordOrUndo(ctx context.Context, a schema.Attribution, org, typ string, d def, md map[string]any, prev def) error {
	err := s.record(ctx, a, org, typ, d, md)
	if err == nil {
		s.changed()
		return nil
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	prev.updated = s.stamp(d.updated)
	if uerr := s.store.putStream(uctx, prev); uerr != nil {
		s.changed()
		s.log.Error("audit record failed and the stream change could not be undone: it persists without its record",
			"event", typ, "org", org, "stream", d.id, "error", err, "undo_error", uerr)
		// Not a *schema.Error: the caller gets 500, the details go to the log.
		return fmt.Errorf("%v; undo: %w", err, uerr)
	}
	s.changed()
	s.log.Warn("stream change undone: its audit record could not be written", "event", typ, "org", org, "stream", d.id, "error", err)
	return schema.ChangeUndone(typ, err)
}
