package query

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// hourCache keeps the exact number of events of each (org, filter, UTC
// hour) it counted, with when the hour was last written
// (schema.HoursTable) and the earliest expiry among the events counted,
// and hands it out again while the hour has had no write since and none of
// those events has expired. A page's total over 30 days then adds 720
// known hours (and counts the hours written lately and the partial hours
// at the range's ends) instead of reading every event of the range with
// FINAL. The filter is what the range has besides time
// (readsql.HourFilter): none, or any other condition, a viewer's scope
// included; a filtered view shown again (its next page, a refresh, its
// histogram) reuses the hours counted the first time.
//
// Every write into an hour, a re-sent copy of an event included, leaves a
// later mark, so a kept count is never used past a write. Marks younger
// than the settle time are not trusted (the mark of an insert may become
// visible just before its events): such hours are counted every time.
type hourCache struct {
	max    int           // cells kept at most (see cells); a full cache drops a tenth
	settle time.Duration // see above
	// maxRows bounds the rows (an hour and a type) one event-type catalog
	// reads from the events; a range with more is read as the catalog
	// itself (readsql.EventTypes, at most Config.MaxEventTypes types).
	maxRows int

	mu     sync.Mutex
	m      map[hourKey]hourEntry
	size   int                 // the cells of m
	newest map[orgFilter]int64 // per org and filter, the newest hour ever kept (Unix seconds)
	// through is, per org and filter, the end of the latest hours whose
	// marks were read (Unix seconds, a whole hour): an hour before it
	// without an entry had no settled write when read (newestHolding).
	through map[orgFilter]int64

	reused, counted atomic.Uint64 // hours answered from the cache, and counted
	hinted          atomic.Uint64 // newest pages first read from the span of newestHolding
}

// maxSpans bounds the time ranges of one count (see hours).
const maxSpans = 16

// maxTypeRows is hourCache.maxRows: 30 days of 250 types an hour, about
// 20 MB read at most.
const maxTypeRows = 200_000

// errTooManyRows says that a count read more than hourCache.maxRows rows.
var errTooManyRows = errors.New("too many rows for the kept hours")

// orgFilter is an org and a filter's readsql.FilterKey.
type orgFilter struct {
	org    string
	filter [sha256.Size]byte
}

type hourKey struct {
	orgFilter
	hour int64 // Unix seconds
}

type hourEntry struct {
	events, access uint64    // events, and of them the store's access records
	last           time.Time // the hour's latest write when it was counted
	expires        time.Time // the earliest expiry among its events
	// types splits the events by event type, in the caches of the event-type
	// catalog (Reader.typeHours); nil elsewhere.
	types map[string]typeCount
}

// typeCount is what an hour holds of one event type: its events and the
// latest one's time.
type typeCount struct {
	n    uint64
	last time.Time
}

// cells is what e counts against a cache's bound: one, and one per type.
func (e hourEntry) cells() int { return 1 + len(e.types) }

func newHourCache(max int, settle time.Duration) *hourCache {
	if max <= 0 {
		return nil
	}
	return &hourCache{max: max, settle: settle, maxRows: maxTypeRows, m: map[hourKey]hourEntry{},
		newest: map[orgFilter]int64{}, through: map[orgFilter]int64{}}
}

// writeMark is one row of readsql.HourMarks or readsql.DayMarks: when the
// hour or day that starts at at was last written, whether that write is
// settled, and the server's clock.
type writeMark struct {
	at, last, now time.Time
	settled       bool
}

// hourPiece is what a count found in one hour: a row of
// readsql.HourPieces, or the rows of an hour of readsql.HourTypePieces
// (with types).
type hourPiece struct {
	hour           time.Time
	events, access uint64
	expires        time.Time
	types          map[string]typeCount
}

// piecesFunc counts, per hour, the events of a cache's org and filter
// within spans.
type piecesFunc func(ctx context.Context, spans []readsql.Span) ([]hourPiece, error)

// hours returns the events of org under f per UTC hour, oldest first,
// without empty hours; rest and withAccess are readsql.HourFilter's split
// of f.
func (c *hourCache) hours(ctx context.Context, st *store, org string, f, rest schema.Filter, withAccess bool) ([]hourCount, error) {
	hours, ok, err := c.entries(ctx, st, org, f, rest, func(ctx context.Context, spans []readsql.Span) ([]hourPiece, error) {
		return st.hourPieces(ctx, readsql.HourPieces(org, rest, spans))
	})
	if !ok && err == nil {
		return st.hourly(ctx, readsql.HourlyCounts(org, f)) // less than two hours
	}
	if err != nil {
		return nil, err
	}
	out := make([]hourCount, 0, len(hours))
	for h, e := range hours {
		n := e.events
		if !withAccess {
			n -= e.access
		}
		if n > 0 {
			out = append(out, hourCount{hour: time.Unix(h, 0).UTC(), n: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hour.Before(out[j].hour) })
	return out, nil
}

// entries returns what the hours of org's events under rest within f's
// range hold, by hour (Unix seconds), kept or counted by pieces; ok is
// false, with nothing read, when the range holds less than two whole
// hours (count it directly).
//
// Two statements run side by side: the hour marks of the range, and a count
// of what is surely not kept — the partial hours at the range's ends and
// the hours after the org's newest kept hour (in the steady state, the last
// hour or two, being written). Hours the marks show stale before that are
// counted after (a late event into an old hour). Counting beside the marks
// rather than after them is sound for what is kept: a kept count's mark is
// settled, older than HourSettle, so its events were visible to both.
func (c *hourCache) entries(ctx context.Context, st *store, org string, f, rest schema.Filter, pieces piecesFunc) (map[int64]hourEntry, bool, error) {
	lo, hi := f.From, f.To // the whole hours of the range: [lo, hi); zero is open
	if !lo.IsZero() {
		lo = ceilTo(lo, time.Hour)
	}
	if !hi.IsZero() {
		hi = hi.UTC().Truncate(time.Hour)
	}
	if !lo.IsZero() && !hi.IsZero() && !lo.Before(hi) {
		return nil, false, nil
	}
	var spec []readsql.Span
	if !f.From.IsZero() && f.From.Before(lo) {
		spec = append(spec, readsql.Span{From: f.From, To: lo}) // the left end
	}
	from := lo // the hours after the newest kept, zero when open
	of := orgFilter{org, readsql.FilterKey(rest)}
	c.mu.Lock()
	newest, kept := c.newest[of]
	c.mu.Unlock()
	if next := time.Unix(newest, 0).UTC().Add(time.Hour); kept && (from.IsZero() || next.After(from)) {
		from = next
	}
	switch {
	case hi.IsZero():
		spec = append(spec, readsql.Span{From: from})
	case from.Before(hi):
		spec = append(spec, readsql.Span{From: from, To: f.To}) // with the right end
	case hi.Before(f.To):
		spec = append(spec, readsql.Span{From: hi, To: f.To}) // the right end
	}
	hours, err := c.count(ctx, st, of, lo, hi, spec, pieces)
	return hours, err == nil, err
}

// count runs the marks of [lo, hi) beside the count of spec, counts the
// stale hours spec left out, keeps what it may and returns the hours, with
// an entry for each hour that holds any event.
func (c *hourCache) count(ctx context.Context, st *store, of orgFilter, lo, hi time.Time,
	spec []readsql.Span, pieces piecesFunc) (map[int64]hourEntry, error) {
	org := of.org
	var (
		counted []hourPiece
		specErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		if len(spec) > 0 {
			counted, specErr = pieces(ctx, spec)
		}
	}()
	read := hi // the hours the marks cover end here
	if read.IsZero() {
		read = time.Now().UTC().Truncate(time.Hour)
	}
	marks, err := st.marks(ctx, readsql.HourMarks(org, lo, hi, c.settle))
	<-done
	if err == nil {
		err = specErr
	}
	if err != nil {
		return nil, err
	}
	covered := func(t time.Time) bool {
		for _, s := range spec {
			if !t.Before(s.From) && (s.To.IsZero() || t.Before(s.To)) {
				return true
			}
		}
		return false
	}
	known := map[int64]hourEntry{}
	stale := map[int64]writeMark{}
	var later []readsql.Span // stale hours spec did not count
	c.mu.Lock()
	for _, mk := range marks {
		k, cov := hourKey{of, mk.at.Unix()}, covered(mk.at)
		if e, ok := c.m[k]; ok && mk.settled && e.last.Equal(mk.last) && mk.now.Before(e.expires) && !cov {
			known[k.hour] = e
			continue
		}
		stale[k.hour] = mk
		if cov {
			continue
		}
		later = readsql.AppendSpan(later, readsql.Span{From: mk.at, To: mk.at.Add(time.Hour)})
	}
	c.mu.Unlock()
	if len(later) > maxSpans {
		// Many scattered hours (a sparse org): one range from the first to
		// the last is cheaper to plan than a condition per hour; the known
		// hours it also counts keep their kept counts.
		later = []readsql.Span{{From: later[0].From, To: later[len(later)-1].To}}
	}
	if len(later) > 0 {
		more, err := pieces(ctx, later)
		if err != nil {
			return nil, err
		}
		counted = append(counted, more...)
	}
	c.reused.Add(uint64(len(known)))
	c.counted.Add(uint64(len(stale)))
	// Keep what was counted of the whole hours whose latest write was
	// settled; an hour without a row has no live event.
	fresh := map[int64]hourEntry{}
	for _, p := range counted {
		fresh[p.hour.Unix()] = hourEntry{events: p.events, access: p.access, expires: p.expires, types: p.types}
	}
	c.mu.Lock()
	if t, ok := c.through[of]; !ok || read.Unix() > t {
		c.through[of] = read.Unix()
	}
	for h, mk := range stale {
		e, ok := fresh[h]
		if !ok {
			e.expires = time.Unix(1<<62, 0)
		}
		e.last = mk.last
		if mk.settled {
			c.put(hourKey{of, h}, e)
		}
	}
	c.mu.Unlock()
	// The answer: the known hours and everything counted now (the partial
	// hours at the ends are pieces too, never kept).
	for h, e := range fresh {
		if _, dup := known[h]; !dup && e.events > 0 {
			known[h] = e
		}
	}
	for h, e := range known {
		if e.events == 0 {
			delete(known, h)
		}
	}
	return known, nil
}

// HourCountStats say what a reader's kept hour counts did since it
// started: hours answered from them (Reused) and counted from the events
// (Counted), and the hours they keep now (Kept).
type HourCountStats struct {
	Reused, Counted, Kept uint64
}

// stats returns c's HourCountStats (zero when c is nil: none kept).
func (c *hourCache) stats() HourCountStats {
	if c == nil {
		return HourCountStats{}
	}
	c.mu.Lock()
	kept := len(c.m)
	c.mu.Unlock()
	return HourCountStats{Reused: c.reused.Load(), Counted: c.counted.Load(), Kept: uint64(kept)}
}

// HourCounts returns the HourCountStats of the counts kept for ranges
// narrowed by time alone (whole), of those kept for filtered ranges
// (filtered), and of those kept per type for the event-type catalog
// (eventTypes; Kept counts hours), for the operator's metrics.
func (h *Handler) HourCounts() (whole, filtered, eventTypes HourCountStats) {
	return h.read.hourCache.stats(), h.read.filterHours.stats(), h.read.typeHours.stats()
}

// put keeps e under k, making room first when the cache is full; c.mu is
// held.
func (c *hourCache) put(k hourKey, e hourEntry) {
	if old, ok := c.m[k]; ok {
		delete(c.m, k)
		c.size -= old.cells()
	}
	if c.size+e.cells() > c.max {
		goal := c.max - c.max/10 - e.cells()
		for old, oe := range c.m { // map order is random: a random tenth goes
			if c.size <= goal {
				break
			}
			delete(c.m, old)
			c.size -= oe.cells()
			// Bounded with the entries; without it the next read of the
			// filter only counts less of its range alongside the marks.
			delete(c.newest, old.orgFilter)
			delete(c.through, old.orgFilter)
		}
		if c.size+e.cells() > c.max {
			return // one hour of more types than the whole bound
		}
	}
	c.m[k] = e
	c.size += e.cells()
	if n, ok := c.newest[k.orgFilter]; !ok || k.hour > n {
		c.newest[k.orgFilter] = k.hour
	}
}

// hintHours bounds the kept hours one newest-page hint adds up (a week).
const hintHours = 7 * 24

// newestHolding returns the start of the latest whole hour h of [from, to)
// (zero is open: to is then now) from which the hours kept for of held at
// least need events (access records counted when withAccess) and have not
// expired by now. ok is false when no such hour is among the hintHours
// before the range's end, or when the hours whose marks were last read end
// more than two hours before it: the hours after them are unknown and may
// hold the page alone.
//
// It is a hint, not an answer: an hour written since it was counted holds
// more, never less, as do the hours not kept (being written, or counted
// when their marks were not settled); a reader that finds fewer events
// from h reads a wider range.
func (c *hourCache) newestHolding(of orgFilter, withAccess bool, from, to time.Time, need uint64, now time.Time) (h time.Time, ok bool) {
	if c == nil {
		return time.Time{}, false
	}
	end := to
	if end.IsZero() {
		end = now
	}
	last := end.UTC().Truncate(time.Hour).Add(-time.Hour).Unix() // the last whole hour before end
	c.mu.Lock()
	defer c.mu.Unlock()
	through, read := c.through[of]
	if !read || through < last {
		return time.Time{}, false
	}
	top := min(last, through-3600)
	first := top - (hintHours-1)*3600
	if !from.IsZero() {
		first = max(first, ceilTo(from, time.Hour).Unix())
	}
	var sum uint64
	for hour := top; hour >= first; hour -= 3600 {
		e, ok := c.m[hourKey{of, hour}]
		if !ok || !now.Before(e.expires) {
			continue
		}
		sum += e.events
		if !withAccess {
			sum -= e.access
		}
		if sum >= need {
			return time.Unix(hour, 0).UTC(), true
		}
	}
	return time.Time{}, false
}

// ceilTo rounds t up to a whole unit (an hour, a day) since the zero
// time, in UTC: a UTC hour or midnight.
func ceilTo(t time.Time, unit time.Duration) time.Time {
	h := t.UTC().Truncate(unit)
	if h.Before(t) {
		h = h.Add(unit)
	}
	return h
}

// marks runs a readsql.HourMarks or readsql.DayMarks statement.
func (s *store) marks(ctx context.Context, st readsql.Statement) ([]writeMark, error) {
	return scanRows(ctx, s, st, "write marks", func(rows driver.Rows, m *writeMark) error {
		var settled uint8
		err := rows.Scan(&m.at, &m.last, &settled, &m.now)
		m.at, m.settled = m.at.UTC(), settled == 1
		return err
	})
}

// hourPieces runs a readsql.HourPieces statement.
func (s *store) hourPieces(ctx context.Context, st readsql.Statement) ([]hourPiece, error) {
	return scanRows(ctx, s, st, "hour counts", func(rows driver.Rows, p *hourPiece) error {
		err := rows.Scan(&p.hour, &p.events, &p.access, &p.expires)
		p.hour = p.hour.UTC()
		return err
	})
}

// hourTypePieces runs a readsql.HourTypePieces statement: one piece per
// hour, its events split by type (the access records' types counted in
// access too); more than maxRows rows is errTooManyRows.
func (s *store) hourTypePieces(ctx context.Context, st readsql.Statement, maxRows int) ([]hourPiece, error) {
	rows, cancel, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close()
	var out []hourPiece
	for read := 0; rows.Next(); read++ {
		if read == maxRows {
			return nil, errTooManyRows
		}
		var (
			hour, last, expires time.Time
			typ                 string
			n                   uint64
		)
		if err := rows.Scan(&hour, &typ, &n, &last, &expires); err != nil {
			return nil, fmt.Errorf("read hour counts by type: %w", err)
		}
		hour = hour.UTC()
		if k := len(out); k == 0 || !out[k-1].hour.Equal(hour) {
			out = append(out, hourPiece{hour: hour, expires: expires, types: map[string]typeCount{}})
		}
		p := &out[len(out)-1]
		p.types[typ] = typeCount{n: n, last: last.UTC()}
		p.events += n
		if schema.IsAccessEventType(typ) {
			p.access += n
		}
		if expires.Before(p.expires) {
			p.expires = expires
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, err)
	}
	return out, nil
}

// eventTypes answers the event-type catalog of org under f from the kept
// hours (see hours); ok is false, with nothing kept, when the range holds
// less than two whole hours, or more rows (an hour and a type) to read
// than c.maxRows.
func (c *hourCache) eventTypes(ctx context.Context, st *store, org string, f, rest schema.Filter, withAccess bool) ([]EventType, bool, error) {
	hours, ok, err := c.entries(ctx, st, org, f, rest, func(ctx context.Context, spans []readsql.Span) ([]hourPiece, error) {
		return st.hourTypePieces(ctx, readsql.HourTypePieces(org, rest, spans, c.maxRows), c.maxRows)
	})
	if errors.Is(err, errTooManyRows) {
		return nil, false, nil
	}
	if !ok || err != nil {
		return nil, ok, err
	}
	sum := map[string]EventType{}
	for _, e := range hours {
		for typ, tc := range e.types {
			if !withAccess && schema.IsAccessEventType(typ) {
				continue
			}
			t := sum[typ]
			t.EventType, t.Count = typ, t.Count+tc.n
			if tc.last.After(t.LastSeen) {
				t.LastSeen = tc.last
			}
			sum[typ] = t
		}
	}
	out := make([]EventType, 0, len(sum))
	for _, t := range sum {
		out = append(out, t)
	}
	// As readsql.EventTypes orders them: most frequent first, then by name.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].EventType < out[j].EventType
	})
	return out, true, nil
}
