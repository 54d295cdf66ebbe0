package tenant

import (
	"math"
	"sync"
	"time"
)

// addrLimiter is a token bucket per client address, in a bounded map: an
// address idle long enough to refill its bucket is forgotten, which is the
// same as keeping a full bucket.
type addrLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets *lru[*bucket]
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newAddrLimiter(rate float64, burst, maxAddrs int) *addrLimiter {
	refill := time.Duration(float64(burst) / rate * float64(time.Second))
	return &addrLimiter{rate: rate, burst: float64(burst), buckets: newLRU[*bucket](maxAddrs, refill+time.Second)}
}

// take spends one token of addr; when there is none it returns false and
// how long until there is one.
func (l *addrLimiter) take(addr string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets.get(addr, now)
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	l.buckets.put(addr, b, now) // refreshes its expiry
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}
