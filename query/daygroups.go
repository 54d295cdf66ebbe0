package query

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// dayGroups answers the aggregates that count events per group over a
// range narrowed by time alone (readsql.DayGroupsFit: a top-10 of actors
// over 90 days) from partial aggregates of blocks of whole UTC days (a
// week for days a week old or more, else a day; see plan) kept in
// ClickHouse (schema.DayGroupsTable, migration 0013). A block is counted
// once per aggregate shape, with FINAL and without the expired events, and
// its rows are used again while its latest write (schema.HoursTable) is
// the one seen when it was counted, its earliest expiry is ahead and the
// count is younger than 30 days; the days written lately (whose marks are
// younger than the settle time) and the partial days at the range's ends
// are read from the events at every request. The answer is the one the
// plain aggregate gives, row for row: the rows of a kept block are those a
// read of it would group now, and the answer says how many kept rows it
// read, which must be as many as the markers say.
type dayGroups struct {
	settle time.Duration
	margin time.Duration // expiryMargin; shorter in tests

	slot    chan struct{}  // holds the count under way: one at a time on a server
	running sync.WaitGroup // counts under way (tests wait for them)

	reused, counted, failed atomic.Uint64 // blocks answered from kept rows; blocks counted and kept; counts not kept or answers refused
}

// minDays is the whole days a range must hold to be worth the day groups.
const minDays = 2

// expiryMargin is how far ahead a kept block's earliest expiry must be for
// it to be used (or kept): the answer runs a moment after the check.
const expiryMargin = time.Minute

// keepFor is how long a block's rows are used at most (the table's TTL).
const keepFor = 30 * 24 * time.Hour

func newDayGroups(on bool, settle time.Duration) *dayGroups {
	if !on {
		return nil
	}
	return &dayGroups{settle: settle, margin: expiryMargin, slot: make(chan struct{}, 1)}
}

// dayRun is one row of readsql.DayRuns.
type dayRun struct {
	day, computed, mark, expires time.Time
	days                         uint16
	run, rows                    uint64
}

// blockKey names a block: its first day (Unix seconds) and length.
type blockKey struct {
	start int64
	days  int
}

func keyOf(b readsql.Block) blockKey { return blockKey{b.Start.Unix(), b.Days} }

// keptDay is the run that answers a block, and its rows.
type keptDay struct{ run, rows uint64 }

// weekDays is the length of the blocks of days more than a week old: a
// week's groups are fewer rows than its seven days' (most groups recur
// from day to day), and such days are seldom written again.
const weekDays = 7

// plan splits [first, last) (whole days) into blocks: weeks (aligned on
// day numbers since 1970 that are multiples of 7) that end a week or
// more before last, single days elsewhere.
func plan(first, last time.Time) []readsql.Block {
	recent := last.AddDate(0, 0, -weekDays)
	var out []readsql.Block
	for p := first; p.Before(last); {
		n := weekDays
		if p.Unix()/86400%weekDays != 0 || p.AddDate(0, 0, weekDays).After(recent) {
			n = 1
		}
		out = append(out, readsql.Block{Start: p, Days: n})
		p = p.AddDate(0, 0, n)
	}
	return out
}

// blockMark is what the day marks say of a block written at least once:
// its latest write, and whether every write of it is settled.
type blockMark struct {
	block   readsql.Block
	last    time.Time
	settled bool
}

// aggregate answers a from the day groups; ok is false when they do not
// serve it (see readsql.DayGroupsFit, minDays), and the caller reads it
// as such.
func (d *dayGroups) aggregate(ctx context.Context, st *store, org string, f schema.Filter, a schema.Aggregate, now time.Time, maxRows int) (groups []Group, ok bool, err error) {
	if d == nil || !readsql.DayGroupsFit(f, a) {
		return nil, false, nil
	}
	end := f.To
	if end.IsZero() {
		end = now
	}
	last := end.UTC().Truncate(24 * time.Hour) // the end of the last whole day (UTC days: Truncate counts from a UTC midnight)
	first := ceilTo(f.From, 24*time.Hour)
	if f.From.IsZero() {
		first = time.Unix(0, 0).UTC() // open: from the org's first day written (below)
	}
	if !f.From.IsZero() && last.Sub(first) < minDays*24*time.Hour {
		return nil, false, nil
	}
	shape := readsql.DayShape(f, a.GroupBy)
	var (
		runs    []dayRun
		runsErr error
		read    = make(chan struct{})
	)
	go func() {
		defer close(read)
		runs, runsErr = st.dayRuns(ctx, readsql.DayRuns(org, shape, first, last))
	}()
	marks, err := st.marks(ctx, readsql.DayMarks(org, first, last, d.settle))
	<-read
	if err == nil {
		err = runsErr
	}
	if err != nil {
		return nil, true, err
	}
	if f.From.IsZero() && len(marks) > 0 {
		first = marks[0].at // an open range starts at the org's first day written
	}
	if last.Sub(first) < minDays*24*time.Hour || len(marks) == 0 {
		return nil, false, nil
	}
	clock := marks[0].now
	use := map[blockKey]dayRun{} // the latest run of each block still valid
	for _, r := range runs {
		k := blockKey{r.day.Unix(), int(r.days)}
		if cur, seen := use[k]; (!seen || r.computed.After(cur.computed)) && r.expires.After(clock.Add(d.margin)) &&
			r.computed.Add(keepFor).After(clock.Add(d.margin)) {
			use[k] = r
		}
	}
	blocks := plan(first, last)
	kept := map[blockKey]keptDay{}
	marked := blockMarks(blocks, marks)
	var todo []blockMark
	for _, bm := range marked {
		if r, found := use[keyOf(bm.block)]; found && r.mark.Equal(bm.last) {
			kept[keyOf(bm.block)] = keptDay{r.run, r.rows}
		} else if bm.settled {
			todo = append(todo, bm)
		}
	}
	reused := uint64(len(kept))
	if len(todo) > 0 {
		d.countLater(ctx, st, org, shape, f, a, todo, clock)
	}
	if len(kept) == 0 {
		return nil, false, nil
	}
	ids, live, want, lastStart := split(f, blocks, kept)
	stmt, aggShape := readsql.DayGroupsAggregate(org, shape, f, a, ids, first, lastStart, live, maxRows)
	groups, stored, err := st.aggregate(ctx, stmt, aggShape)
	if err == nil && stored != want {
		// Rows of a kept run are missing here (a replica that has its
		// markers and not yet every row, a node the markers were not read
		// from): the aggregate is read from the events, and the kept
		// blocks are counted again for the next request.
		d.failed.Add(1)
		var again []blockMark
		for _, bm := range marked {
			if _, k := kept[keyOf(bm.block)]; k && bm.settled {
				again = append(again, bm)
			}
		}
		d.countLater(ctx, st, org, shape, f, a, again, clock)
		return nil, false, nil
	}
	d.reused.Add(reused)
	return groups, true, err
}

// blockMarks returns the marks of the blocks written at least once.
func blockMarks(blocks []readsql.Block, marks []writeMark) []blockMark {
	byDay := make(map[int64]writeMark, len(marks))
	for _, m := range marks {
		byDay[m.at.Unix()] = m
	}
	var out []blockMark
	for _, b := range blocks {
		bm, seen := blockMark{block: b, settled: true}, false
		for i := range b.Days {
			m, ok := byDay[b.Start.AddDate(0, 0, i).Unix()]
			if !ok {
				continue
			}
			seen = true
			if m.last.After(bm.last) {
				bm.last = m.last
			}
			bm.settled = bm.settled && m.settled
		}
		if seen {
			out = append(out, bm)
		}
	}
	return out
}

// countLater counts the blocks todo of shape in the background, for the
// requests that follow: the request at hand answers without them (the
// count groups its blocks per day and group, and writes them: a few times
// the plain aggregate's time). One count runs at a time on a server: a
// request that finds it counting leaves its blocks to a later one.
func (d *dayGroups) countLater(ctx context.Context, st *store, org, shape string, f schema.Filter, a schema.Aggregate,
	todo []blockMark, clock time.Time) {
	select {
	case d.slot <- struct{}{}:
	default:
		return
	}
	d.running.Add(1)
	go func() {
		defer d.running.Done()
		defer func() { <-d.slot }()
		d.count(context.WithoutCancel(ctx), st, org, shape, f, a, todo, clock)
	}()
}

// count counts the blocks todo of shape under a new run. A failure leaves
// them to be read from the events (and is counted in failed): the rows of
// a count without markers are never used.
func (d *dayGroups) count(ctx context.Context, st *store, org, shape string, f schema.Filter, a schema.Aggregate, todo []blockMark,
	clock time.Time) {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	run := binary.LittleEndian.Uint64(b[:])
	var markers []readsql.DayMarker
	for _, days := range []int{1, weekDays} {
		var these []blockMark
		for _, bm := range todo {
			if bm.block.Days == days {
				these = append(these, bm)
			}
		}
		if len(these) == 0 {
			continue
		}
		written, err := d.write(ctx, st, org, shape, run, clock, f, a, days, these)
		if err != nil {
			d.failed.Add(1)
			return
		}
		for _, bm := range these {
			w, found := written[bm.block.Start.Unix()]
			if !found {
				w = readsql.DayMarker{Expires: clock.Add(keepFor)} // no event under f in the block
			}
			if !w.Expires.After(clock.Add(d.margin)) {
				continue // an event of the block expires now: read it from the events
			}
			w.Day, w.Days, w.Mark = bm.block.Start, days, bm.last
			markers = append(markers, w)
		}
	}
	if len(markers) == 0 {
		return
	}
	if err := st.exec(ctx, readsql.DayMarkers(org, shape, run, clock, markers)); err != nil {
		d.failed.Add(1)
		return
	}
	d.counted.Add(uint64(len(markers)))
}

// write counts blocks of days days (oldest first) under run and returns,
// per block (its start, Unix seconds), the rows it wrote and their
// earliest expiry.
func (d *dayGroups) write(ctx context.Context, st *store, org, shape string, run uint64, clock time.Time, f schema.Filter,
	a schema.Aggregate, days int, blocks []blockMark) (map[int64]readsql.DayMarker, error) {
	starts := make([]time.Time, len(blocks))
	for i, bm := range blocks {
		starts[i] = bm.block.Start
	}
	if err := st.exec(ctx, readsql.DayGroupsWrite(org, shape, run, clock, f, a.GroupBy, days, starts)); err != nil {
		return nil, err
	}
	return st.dayRunRows(ctx, readsql.DayRunRows(org, shape, run, days, starts[0], starts[len(starts)-1].AddDate(0, 0, 1)))
}

// split splits f's range into the blocks answered by kept runs (their
// runs, the rows they hold, the start of the last) and the live spans
// read from the events: before the first block, the blocks not kept, and
// after the last.
func split(f schema.Filter, blocks []readsql.Block, kept map[blockKey]keptDay) (runs []uint64, live []readsql.Span, rows uint64, lastStart time.Time) {
	open := f.From // start of the live span under way (zero: open)
	for _, b := range blocks {
		k, ok := kept[keyOf(b)]
		if !ok {
			continue
		}
		if open.Before(b.Start) { // a zero open is before any day
			live = append(live, readsql.Span{From: open, To: b.Start})
		}
		runs, rows, lastStart = append(runs, k.run), rows+k.rows, b.Start
		open = b.Start.AddDate(0, 0, b.Days)
	}
	if f.To.IsZero() || open.Before(f.To) {
		live = append(live, readsql.Span{From: open, To: f.To})
	}
	return runs, live, rows, lastStart
}

// DayGroupStats say what a reader's day groups did since it started:
// blocks of days (a day or a week) answered from kept rows (Reused),
// blocks counted and kept (Counted), and failures (Failed: a count that
// could not be written, or an answer that found kept rows missing; the
// aggregate was then read from the events).
type DayGroupStats struct {
	Reused, Counted, Failed uint64
}

// DayGroups returns the DayGroupStats of the reader (zero when it keeps
// none), for the operator's metrics.
func (h *Handler) DayGroups() DayGroupStats {
	d := h.read.dayGroups
	if d == nil {
		return DayGroupStats{}
	}
	return DayGroupStats{Reused: d.reused.Load(), Counted: d.counted.Load(), Failed: d.failed.Load()}
}

// exec runs a statement that writes (an INSERT).
func (s *store) exec(ctx context.Context, st readsql.Statement) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	set, err := s.probe(ctx)
	if err != nil {
		return err
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(st.Wire()), clickhouse.WithSettings(set))
	if err := s.conn.Exec(ctx, st.SQL); err != nil {
		return queryErr(ctx, err)
	}
	return nil
}

func (s *store) dayRuns(ctx context.Context, st readsql.Statement) ([]dayRun, error) {
	return scanRows(ctx, s, st, "day runs", func(rows driver.Rows, r *dayRun) error {
		err := rows.Scan(&r.day, &r.days, &r.run, &r.computed, &r.mark, &r.rows, &r.expires)
		r.day = r.day.UTC()
		return err
	})
}

func (s *store) dayRunRows(ctx context.Context, st readsql.Statement) (map[int64]readsql.DayMarker, error) {
	ms, err := scanRows(ctx, s, st, "day run rows", func(rows driver.Rows, m *readsql.DayMarker) error {
		err := rows.Scan(&m.Day, &m.Rows, &m.Expires)
		m.Day = m.Day.UTC()
		return err
	})
	out := make(map[int64]readsql.DayMarker, len(ms))
	for _, m := range ms {
		out[m.Day.Unix()] = m
	}
	return out, err
}
