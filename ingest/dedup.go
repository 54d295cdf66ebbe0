package ingest

import (
	"sync"
	"time"
)

// recentIDs remembers, for a bounded window, the timestamp given to events
// that arrived with an id but without a timestamp. Rows are identified by
// (org, timestamp, id) in ClickHouse; a client that re-sends such an event
// after a timeout would otherwise get a second row with a new timestamp.
// Reusing the first timestamp makes the copy identical, and reads fold it.
// Events sent with both id and timestamp need no memory: their copies are
// identical by construction. Events sent without id get a fresh one each
// time: send ids to make retries safe.
type recentIDs struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	m      map[string]time.Time
	ring   []recentEntry // insertion order, for eviction
	head   int
}

type recentEntry struct {
	key  string
	seen time.Time
}

func newRecentIDs(max int, window time.Duration) *recentIDs {
	return &recentIDs{max: max, window: window, m: make(map[string]time.Time)}
}

// timestamp returns the timestamp to use for (org, id): the remembered one,
// or ts, which is then remembered. reused reports the former.
func (r *recentIDs) timestamp(org, id string, ts, now time.Time) (time.Time, bool) {
	if r.max <= 0 {
		return ts, false
	}
	key := org + "\x00" + id
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evict(now)
	if first, ok := r.m[key]; ok {
		return first, true
	}
	r.m[key] = ts
	r.ring = append(r.ring, recentEntry{key: key, seen: now})
	return ts, false
}

func (r *recentIDs) evict(now time.Time) {
	for r.head < len(r.ring) && (len(r.m) >= r.max || now.Sub(r.ring[r.head].seen) > r.window) {
		delete(r.m, r.ring[r.head].key)
		r.ring[r.head] = recentEntry{}
		r.head++
	}
	if r.head > 1024 && r.head*2 > len(r.ring) {
		r.ring = append(r.ring[:0], r.ring[r.head:]...)
		r.head = 0
	}
}
