package query

import (
	"context"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// keyPage serves a page of a timeline from schema.KeysTable: the page's
// keys (with the total, in page mode), then the page's events. The first
// page is firstKeyPage; other pages by number count the total and read
// their keys side by side.
func (rd *Reader) keyPage(ctx context.Context, org string, k readsql.Lookup, f schema.Filter, s schema.Sort,
	pg schema.Page) ([]storedRow, uint64, error) {
	if pg.After == nil && pg.Number == 1 {
		return rd.firstKeyPage(ctx, org, k, f, s, pg)
	}
	total := func() (uint64, error) { return 0, nil }
	if pg.After == nil {
		total = beside(func() (uint64, error) { return rd.store.count(ctx, readsql.TimelineCount(org, k, f)) })
	}
	at, err := rd.store.positions(ctx, readsql.TimelinePage(org, k, f, s, pg.Limit, pg.Offset(), pg.After))
	_, n, err := withTotal(nil, err, total)
	if err != nil || len(at) == 0 {
		return nil, n, err
	}
	rows, err := rd.store.events(ctx, readsql.Fetch(org, at, s))
	return rows, n, err
}

// firstKeyPage serves a timeline's first page: the keys of one event more
// than the page first. When no more follow, the page is the whole
// timeline and its length the total (the count would read the same keys
// under the same conditions); otherwise the total is counted while the
// page's events are fetched.
func (rd *Reader) firstKeyPage(ctx context.Context, org string, k readsql.Lookup, f schema.Filter, s schema.Sort,
	pg schema.Page) ([]storedRow, uint64, error) {
	at, err := rd.store.positions(ctx, readsql.TimelinePage(org, k, f, s, pg.Limit+1, 0, nil))
	switch {
	case err != nil:
		return nil, 0, err
	case len(at) <= pg.Limit:
		rd.uncounted.Add(1)
		if len(at) == 0 {
			return nil, 0, nil
		}
		rows, err := rd.store.events(ctx, readsql.Fetch(org, at, s))
		return rows, uint64(len(at)), err
	}
	total := beside(func() (uint64, error) { return rd.store.count(ctx, readsql.TimelineCount(org, k, f)) })
	rows, err := rd.store.events(ctx, readsql.Fetch(org, at[:pg.Limit], s))
	return withTotal(rows, err, total)
}
