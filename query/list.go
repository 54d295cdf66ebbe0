package query

import (
	"context"
	"crypto/sha256"

	"github.com/auditstore/auditstore/schema"
)

// page runs one page of a list. Keyset mode reads Limit+1 rows to learn
// whether more follow. Page mode runs the count alongside the page (both
// from the same compiled conditions), so the page costs the slower of the
// two rather than their sum.
func (h *Handler) page(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page,
	bind [sha256.Size]byte) (ListResponse, error) {
	res := ListResponse{Events: []schema.StoredEvent{}}
	var (
		total    uint64
		countErr error
		counted  = make(chan struct{})
	)
	if pg.After == nil {
		go func() {
			defer close(counted)
			total, countErr = h.store.count(ctx, CompileCount(org, f))
		}()
	}
	rows, err := h.store.events(ctx, CompileList(org, f, s, pg))
	if pg.After == nil {
		<-counted
	}
	if err != nil {
		return res, err
	}
	if countErr != nil {
		return res, countErr
	}
	more := false
	if pg.After != nil {
		more = len(rows) > pg.Limit
		if more {
			rows = rows[:pg.Limit]
		}
	} else {
		more = uint64(pg.Offset()+len(rows)) < total
		pages := (total + uint64(pg.Limit) - 1) / uint64(pg.Limit)
		res.Total, res.Page, res.Pages = &total, &pg.Number, &pages
	}
	for i := range rows {
		res.Events = append(res.Events, rows[i].row.Stored(rows[i].created))
	}
	if more && len(rows) > 0 {
		next := h.cursors.encode(bind, rows[len(rows)-1].position(s))
		res.NextCursor = &next
	}
	return res, nil
}
