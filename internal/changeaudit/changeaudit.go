// Package changeaudit makes a change and its audit record one outcome, for
// every package that changes configuration (tenant's orgs and keys,
// streams): the change is written first, then its audit record is made
// durable; when the record fails, the change is undone before the call
// returns and the caller gets 503 audit_unavailable (nothing changed,
// retry later). Only if the undo fails too does the change persist
// without its record: that is logged as an error naming the change, and
// the caller gets 500.
package changeaudit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// UndoTimeout bounds an undo, which runs even when the request's context
// has ended (a client that hangs up must not leave a change half made).
const UndoTimeout = 15 * time.Second

// RecordOrUndo calls record, which makes the audit record of a change of
// type typ durable; when it fails, it calls undo, under UndoTimeout and a
// context that outlives ctx. what names the change in the log ("change",
// "stream change"); attrs are logged with it. It returns nil once the
// record is durable, schema.ChangeUndone when the change was undone, and
// a plain error (a 500, its details logged) when the undo failed too.
func RecordOrUndo(ctx context.Context, log *slog.Logger, what, typ string, attrs []any,
	record, undo func(context.Context) error) error {
	err := record(ctx)
	if err == nil {
		return nil
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), UndoTimeout)
	defer cancel()
	if uerr := undo(uctx); uerr != nil {
		log.Error("audit record failed and the "+what+" could not be undone: it persists without its record",
			append([]any{"event", typ, "error", err, "undo_error", uerr}, attrs...)...)
		// Not a *schema.Error: the caller gets 500, the details go to the log.
		return fmt.Errorf("record audit event %s: %v; undo: %w", typ, err, uerr)
	}
	log.Warn(what+" undone: its audit record could not be written", append([]any{"event", typ, "error", err}, attrs...)...)
	return schema.ChangeUndone(typ, err)
}
