package query

import (
	"context"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// keyPage serves a page of a timeline from schema.KeysTable: in page mode
// the total and the page's keys side by side, then the page's events.
func (rd *Reader) keyPage(ctx context.Context, org string, k readsql.Lookup, f schema.Filter, s schema.Sort,
	pg schema.Page) ([]storedRow, uint64, error) {
	var (
		total    uint64
		countErr error
		counted  = make(chan struct{})
	)
	if pg.After == nil {
		go func() {
			defer close(counted)
			total, countErr = rd.store.count(ctx, readsql.TimelineCount(org, k, f))
		}()
	} else {
		close(counted)
	}
	at, err := rd.store.positions(ctx, readsql.TimelinePage(org, k, f, s, pg.Limit, pg.Offset(), pg.After))
	<-counted
	if err == nil {
		err = countErr
	}
	if err != nil || len(at) == 0 {
		return nil, total, err
	}
	rows, err := rd.store.events(ctx, readsql.Fetch(org, at, s))
	return rows, total, err
}
