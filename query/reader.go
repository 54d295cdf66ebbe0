package query

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync/atomic"
	"time"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// cursorWindow is how far from the cursor a keyset page first looks when
// sorting by time; only when that holds too few events does it read the
// whole remaining range.
const cursorWindow = 24 * time.Hour

// Reader plans and runs the reads of the query endpoints on the store:
// list pages (page, offset and keyset mode, timelines from the keys
// table), single events, the event-type catalog and aggregates. Every
// statement comes from readsql; the org comes from the caller.
type Reader struct {
	store     *store
	cursors   cursors
	cfg       Config
	now       func() time.Time
	hourCache *hourCache // ranges narrowed by time alone; nil when Config.HourCounts is 0
	// filterHours keeps the hour counts of filtered ranges (any condition
	// besides time), apart, so that many filters never evict the counts of
	// whole orgs; nil when Config.FilterHourCounts is 0.
	filterHours *hourCache
	// typeHours keeps the hours of the event-type catalog, split by type;
	// nil when Config.TypeHourCounts is 0.
	typeHours *hourCache
	// dayGroups answers counts per group over whole days from partial
	// aggregates kept in ClickHouse; nil when Config.DayGroups is off.
	dayGroups *dayGroups
	// uncounted counts the first pages of traces and timelines whose total
	// was their length (tracePage, firstKeyPage), for tests.
	uncounted atomic.Uint64
}

// NewReader returns a reader of conn's events under cfg's bounds, signing
// cursors with key.
func NewReader(conn Conn, cfg Config, key []byte) *Reader {
	return &Reader{store: &store{conn: conn, timeout: cfg.QueryTimeout, maxBytes: cfg.MaxPageBytes},
		cursors: cursors{key: key}, cfg: cfg, now: time.Now, hourCache: newHourCache(cfg.HourCounts, cfg.HourSettle),
		filterHours: newHourCache(cfg.FilterHourCounts, cfg.HourSettle), typeHours: newHourCache(cfg.TypeHourCounts, cfg.HourSettle),
		dayGroups: newDayGroups(cfg.DayGroups, cfg.HourSettle)}
}

// Page runs one page of a list.
//
// Sorted by time, FINAL cannot read in order and stop early: a page would
// merge the whole time range. So the newest page is first read from the
// end of the range that should hold it (the newest kept hours that held a
// page, else the last day; newestSpan) while the total is counted;
// another page first counts the events per hour (which gives the total
// too) and then reads the page from the hours that hold it; keyset mode
// reads the day after the cursor first. Other sorts run the count
// alongside the page, both from the same compiled conditions.
func (rd *Reader) Page(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page,
	bind [sha256.Size]byte) (ListResponse, error) {
	var (
		rows  []storedRow
		total uint64
		err   error
	)
	lk, timeline := readsql.LookupFor(f)
	counted := true
	switch {
	case len(f.Match[schema.FieldTraceID]) > 0 && pg.After == nil && pg.Number == 1:
		rows, total, counted, err = rd.tracePage(ctx, org, f, s, pg)
	case pg.NoTotal && pg.After == nil && pg.Number == 1 && s.By == schema.SortTimestamp && s.Desc && !timeline:
		rows, err = rd.newestWithoutTotal(ctx, org, f, s, pg)
		counted = false
	case timeline && s.By == schema.SortTimestamp:
		rows, total, err = rd.keyPage(ctx, org, lk, f, s, pg)
	case pg.After != nil:
		rows, err = rd.afterCursor(ctx, org, f, s, pg)
	case s.By == schema.SortTimestamp:
		rows, total, err = rd.pageByTime(ctx, org, f, s, pg)
	default:
		rows, total, err = rd.pageAndCount(ctx, org, f, s, pg)
	}
	res := ListResponse{Events: []schema.StoredEvent{}}
	if err != nil {
		return res, err
	}
	cut := rd.store.cut(rows)
	more := false
	if pg.After != nil || !counted {
		// One row more than the page was read: it says whether more follow.
		more = len(rows) > pg.Limit
		if more {
			rows = rows[:pg.Limit]
		}
		if !counted {
			res.Page = &pg.Number
		}
	} else {
		more = uint64(pg.Offset()+len(rows)) < total
		pages := (total + uint64(pg.Limit) - 1) / uint64(pg.Limit)
		res.Total, res.Page, res.Pages = &total, &pg.Number, &pages
	}
	if cut {
		more, res.Truncated = true, true
	}
	for i := range rows {
		res.Events = append(res.Events, rows[i].row.Stored(rows[i].created))
	}
	if more && len(rows) > 0 {
		next := rd.cursors.encode(bind, rows[len(rows)-1].position(s))
		res.NextCursor = &next
	}
	return res, nil
}

// tracePage reads the first page of a list narrowed to traces: a few
// events each, which the trace id's skip index finds over the whole range
// in one read, where the newest page's plan (newestPage) would read the
// last day and the hourly counts side by side and then the hours that
// hold the trace. It reads one event more than the page: when no more
// follow, the page is the whole list and its length the total; only a
// fuller trace is counted, and so is a page that the byte bound cut
// short (store.cut: more may follow). counted is false when the total is
// not asked for (rows then hold the extra event, as for
// newestWithoutTotal).
func (rd *Reader) tracePage(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page) (rows []storedRow, total uint64, counted bool, err error) {
	rows, err = rd.store.events(ctx, readsql.ListAt(org, f, s, pg.Limit+1, 0, nil))
	switch {
	case err != nil || pg.NoTotal:
		return rows, 0, !pg.NoTotal, err
	case len(rows) <= pg.Limit && !rd.store.cut(rows):
		rd.uncounted.Add(1)
		return rows, uint64(len(rows)), true, nil
	}
	total, err = rd.store.count(ctx, readsql.Count(org, f))
	return rows[:min(len(rows), pg.Limit)], total, true, err
}

// newestWithoutTotal reads the newest page without its total, for callers
// that ask for the total apart (total=false): the end of the range that
// should hold it first (newestSpan), the whole range only when that holds
// less than a page; one event more than the page, to know whether more
// follow.
func (rd *Reader) newestWithoutTotal(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page) ([]storedRow, error) {
	last, narrowed := rd.newestSpan(org, f, pg.Limit+1)
	rows, err := rd.store.events(ctx, readsql.ListAt(org, last, s, pg.Limit+1, 0, nil))
	if err == nil && len(rows) <= pg.Limit && narrowed {
		rows, err = rd.store.events(ctx, readsql.ListAt(org, f, s, pg.Limit+1, 0, nil))
	}
	return rows, err
}

// newestSpan narrows f to the end of its range that should hold its
// newest need events: from the latest hour from which the kept hour counts
// of f held that many (hourCache.newestHolding: at the largest orgs the
// last hour or two instead of a day; for a sparse filter the hours that
// hold its page, where the last day would fall short), else the last day
// (lastDay). narrowed is false when f is returned whole. A caller that
// reads fewer than need events from the span reads a wider range: the
// span is a guess, the answer never is.
func (rd *Reader) newestSpan(org string, f schema.Filter, need int) (span schema.Filter, narrowed bool) {
	if rest, withAccess, c := rd.keptHours(f); c != nil {
		of := orgFilter{org, readsql.FilterKey(rest)}
		if h, ok := c.newestHolding(of, withAccess, f.From, f.To, uint64(need), rd.now()); ok && h.After(f.From) {
			c.hinted.Add(1)
			span = f
			span.From = h
			return span, true
		}
	}
	return rd.lastDay(f)
}

// lastDay narrows f to the last day of its range (cursorWindow before its
// end, or before now); narrowed is false when the range is no longer than
// that, and last is then f itself.
func (rd *Reader) lastDay(f schema.Filter) (last schema.Filter, narrowed bool) {
	last = f
	if f.To.IsZero() {
		last.From = rd.now().Add(-cursorWindow)
	} else {
		last.From = f.To.Add(-cursorWindow)
	}
	if !last.From.After(f.From) {
		return f, false
	}
	return last, true
}

func (rd *Reader) pageAndCount(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page) ([]storedRow, uint64, error) {
	total := beside(func() (uint64, error) { return rd.total(ctx, org, f) })
	rows, err := rd.store.events(ctx, readsql.List(org, f, s, pg))
	return withTotal(rows, err, total)
}

// beside starts count and returns a wait for its result: a page's total
// is counted while the page is read.
func beside(count func() (uint64, error)) func() (uint64, error) {
	var (
		n    uint64
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		n, err = count()
	}()
	return func() (uint64, error) {
		<-done
		return n, err
	}
}

// withTotal waits for total (see beside) and returns rows with it, and the
// first of the two errors.
func withTotal(rows []storedRow, err error, total func() (uint64, error)) ([]storedRow, uint64, error) {
	n, countErr := total()
	if err == nil {
		err = countErr
	}
	return rows, n, err
}

func (rd *Reader) pageByTime(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page) ([]storedRow, uint64, error) {
	if pg.Number == 1 && s.Desc {
		return rd.newestPage(ctx, org, f, s, pg)
	}
	hours, err := rd.hourly(ctx, org, f)
	if err != nil {
		return nil, 0, err
	}
	var total uint64
	for _, hc := range hours {
		total += hc.n
	}
	if uint64(pg.Offset()) >= total {
		return nil, total, nil
	}
	from, to, skip := window(hours, s.Desc, uint64(pg.Offset()), uint64(pg.Limit))
	nf := narrow(f, from, to)
	rows, err := rd.store.events(ctx, readsql.ListAt(org, nf, s, pg.Limit, int(skip), nil))
	return rows, total, err
}

// newestPage serves the most asked page, the newest events: a read of the
// end of the range that should hold them (newestSpan) runs alongside the
// total, and holds the page whenever it holds at least a page of events.
// The total comes from a plain count when no condition but time narrows
// the org's events and no hour counts are kept (the last day then nearly
// always suffices), and from hourly counts otherwise, so that when the
// span falls short the hours that hold the page are known and the whole
// range is never read.
func (rd *Reader) newestPage(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page) ([]storedRow, uint64, error) {
	_, _, kept := rd.keptHours(f)
	plain := !readsql.Narrows(f) && kept == nil
	var (
		total    uint64
		hours    []hourCount
		countErr error
		counted  = make(chan struct{})
	)
	go func() {
		defer close(counted)
		if plain {
			total, countErr = rd.store.count(ctx, readsql.Count(org, f))
			return
		}
		hours, countErr = rd.hourly(ctx, org, f)
		for _, hc := range hours {
			total += hc.n
		}
	}()
	last, narrowed := rd.newestSpan(org, f, pg.Limit)
	rows, err := rd.store.events(ctx, readsql.ListAt(org, last, s, pg.Limit, 0, nil))
	<-counted
	if err == nil {
		err = countErr
	}
	if err != nil || len(rows) >= pg.Limit || !narrowed || uint64(len(rows)) >= total {
		return rows, total, err
	}
	if plain {
		rows, err = rd.store.events(ctx, readsql.ListAt(org, f, s, pg.Limit, 0, nil))
		return rows, total, err
	}
	from, to, _ := window(hours, true, 0, uint64(pg.Limit))
	rows, err = rd.store.events(ctx, readsql.ListAt(org, narrow(f, from, to), s, pg.Limit, 0, nil))
	return rows, total, err
}

// hourly returns org's events under f per UTC hour, oldest first: from the
// hour counts kept by the reader (hourCache) when f narrows by time alone,
// else counted.
func (rd *Reader) hourly(ctx context.Context, org string, f schema.Filter) ([]hourCount, error) {
	if rest, withAccess, c := rd.keptHours(f); c != nil {
		return c.hours(ctx, rd.store, org, f, rest, withAccess)
	}
	return rd.store.hourly(ctx, readsql.HourlyCounts(org, f))
}

// keptHours returns the kept hour counts that answer f (those of ranges
// narrowed by time alone, or of filtered ranges), nil when the reader
// keeps none for it, with readsql.HourFilter's split of f.
func (rd *Reader) keptHours(f schema.Filter) (rest schema.Filter, withAccess bool, c *hourCache) {
	rest, withAccess, ok := readsql.HourFilter(f)
	switch {
	case !ok:
		return rest, withAccess, nil
	case readsql.TimeOnly(f):
		c = rd.hourCache
	default:
		c = rd.filterHours
	}
	return rest, withAccess, c
}

// total returns the number of org's events under f (see hourly).
func (rd *Reader) total(ctx context.Context, org string, f schema.Filter) (uint64, error) {
	if _, _, c := rd.keptHours(f); c == nil {
		return rd.store.count(ctx, readsql.Count(org, f))
	}
	hours, err := rd.hourly(ctx, org, f)
	var n uint64
	for _, hc := range hours {
		n += hc.n
	}
	return n, err
}

// window finds the hours holding the events of ranks [offset, offset+limit)
// in the order given by desc: the time range [from, to) they span, and how
// many events of that range come before the page.
func window(hours []hourCount, desc bool, offset, limit uint64) (from, to time.Time, skip uint64) {
	n := len(hours)
	at := func(i int) hourCount {
		if desc {
			return hours[n-1-i]
		}
		return hours[i]
	}
	var cum uint64
	first, last := -1, 0
	for i := range n {
		hc := at(i)
		if first < 0 && cum+hc.n > offset {
			first, skip = i, offset-cum
		}
		if cum < offset+limit {
			last = i
		}
		cum += hc.n
	}
	a, b := at(first).hour, at(last).hour
	if desc {
		a, b = b, a
	}
	return a, b.Add(time.Hour), skip
}

// narrow returns f restricted to [from, to).
func narrow(f schema.Filter, from, to time.Time) schema.Filter {
	if f.From.IsZero() || from.After(f.From) {
		f.From = from
	}
	if f.To.IsZero() || to.Before(f.To) {
		f.To = to
	}
	return f
}

func (rd *Reader) afterCursor(ctx context.Context, org string, f schema.Filter, s schema.Sort, pg schema.Page) ([]storedRow, error) {
	if s.By == schema.SortTimestamp {
		at := pg.After.Timestamp
		from, to := at, at.Add(cursorWindow)
		if s.Desc {
			from, to = at.Add(-cursorWindow), at.Add(time.Millisecond)
		}
		nf := narrow(f, from, to)
		rows, err := rd.store.events(ctx, readsql.ListAt(org, nf, s, pg.Limit, 0, pg.After))
		if err != nil || len(rows) > pg.Limit || (nf.From.Equal(f.From) && nf.To.Equal(f.To)) {
			return rows, err
		}
	}
	return rd.store.events(ctx, readsql.ListAt(org, f, s, pg.Limit, 0, pg.After))
}

// Event reads one event of org by id; an event outside a viewer's fixed
// scope (nil for none) is not found, like one that does not exist.
func (rd *Reader) Event(ctx context.Context, org, id string, scope map[schema.Field][]string) (schema.StoredEvent, error) {
	rows, err := rd.store.events(ctx, readsql.Get(org, id))
	if err != nil {
		return schema.StoredEvent{}, err
	}
	if len(rows) == 0 || (scope != nil && !inScope(scope, &rows[0].row)) {
		return schema.StoredEvent{}, schema.NotFound("event_not_found", "no event with this id in your org (it may have expired)")
	}
	return rows[0].row.Stored(rows[0].created), nil
}

// EventTypes reads the event-type catalog of org's events under f, at
// most MaxEventTypes entries; truncated says whether there were more.
func (rd *Reader) EventTypes(ctx context.Context, org string, f schema.Filter) (types []EventType, truncated bool, err error) {
	kept := false
	if rest, withAccess, ok := readsql.HourFilter(f); ok && rd.typeHours != nil {
		types, kept, err = rd.typeHours.eventTypes(ctx, rd.store, org, f, rest, withAccess)
	}
	if !kept && err == nil {
		types, err = rd.store.eventTypes(ctx, readsql.EventTypes(org, f, rd.cfg.MaxEventTypes+1))
	}
	if err != nil {
		return nil, false, err
	}
	if len(types) > rd.cfg.MaxEventTypes {
		return types[:rd.cfg.MaxEventTypes], true, nil
	}
	return types, false, nil
}

// Aggregate reads the figures of org's events under f grouped as a asks;
// more than MaxGroups rows is a 400 asking for narrower terms.
func (rd *Reader) Aggregate(ctx context.Context, org string, f schema.Filter, a schema.Aggregate) ([]Group, error) {
	groups, ok, err := rd.countsByTime(ctx, org, f, a)
	if !ok && err == nil {
		groups, ok, err = rd.dayGroups.aggregate(ctx, rd.store, org, f, a, rd.now(), rd.cfg.MaxGroups)
	}
	if !ok && err == nil {
		st, shape := readsql.Aggregate(org, f, a, rd.cfg.MaxGroups)
		groups, _, err = rd.store.aggregate(ctx, st, shape)
	}
	if err != nil {
		return nil, err
	}
	if len(groups) > rd.cfg.MaxGroups {
		return nil, schema.Invalid("too_many_groups", "the aggregate has too many rows: add top, a coarser interval or narrower filters",
			schema.FieldError{Index: -1, Field: readsql.ParamGroupBy, Code: "too_many_groups", Message: "more rows than the limit"})
	}
	return groups, nil
}

// countsByTime answers from the hour counts (see hourly) the aggregates
// that count the events of a range narrowed by time alone, per hour, per
// day or in all; ok is false for any other aggregate.
func (rd *Reader) countsByTime(ctx context.Context, org string, f schema.Filter, a schema.Aggregate) (groups []Group, ok bool, err error) {
	_, _, kept := rd.keptHours(f)
	width := map[schema.Interval]time.Duration{schema.IntervalNone: 0, schema.IntervalHour: time.Hour, schema.IntervalDay: 24 * time.Hour}
	w, byTime := width[a.Interval]
	if kept == nil || !byTime || len(a.GroupBy) > 0 ||
		slices.ContainsFunc(a.Metrics, func(m schema.Metric) bool { return m != schema.MetricCount }) {
		return nil, false, nil
	}
	hours, err := rd.hourly(ctx, org, f)
	if err != nil {
		return nil, true, err
	}
	group := func(n uint64) Group {
		g := Group{}
		for _, m := range a.Metrics {
			g[string(m)] = n
		}
		return g
	}
	if w == 0 {
		var n uint64
		for _, h := range hours {
			n += h.n
		}
		return []Group{group(n)}, true, nil
	}
	groups = []Group{}
	var last time.Time
	for _, h := range hours {
		t := h.hour.Truncate(w) // UTC days: time.Truncate counts from the zero time, a UTC midnight
		if n := len(groups); n > 0 && t.Equal(last) {
			for _, m := range a.Metrics {
				groups[n-1][string(m)] = groups[n-1][string(m)].(uint64) + h.n
			}
			continue
		}
		g := group(h.n)
		g["time"], last = t, t
		groups = append(groups, g)
	}
	return groups, true, nil
}
