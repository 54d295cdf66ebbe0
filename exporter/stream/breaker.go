package stream

import (
	"math/rand/v2"
	"time"
)

// backoff decides when a stream tries again after a failed attempt:
// exponential backoff with full jitter between RetryMin and RetryMax for
// retryable failures, never sooner than the destination's Retry-After; a
// slow probe every FailingProbe after a refusal; and a circuit breaker that,
// after BreakerFailures consecutive failures, opens for BreakerOpen
// (doubling up to BreakerMaxOpen at each failed probe), so that a dead
// destination costs one probe per open period.
type backoff struct {
	cfg      Config
	failures int           // consecutive failed attempts
	open     time.Duration // the breaker's current open period, 0 when closed
}

// failed records a failed attempt and returns the delay before the next
// one, and whether the stream is now failing (refused, or breaker open)
// rather than retrying.
func (b *backoff) failed(o outcome) (time.Duration, bool) {
	b.failures++
	if !o.retryable {
		return b.cfg.FailingProbe, true
	}
	exp := b.cfg.RetryMin
	for i := 1; i < b.failures && exp < b.cfg.RetryMax; i++ {
		exp *= 2
	}
	exp = min(exp, b.cfg.RetryMax)
	delay := exp/2 + rand.N(exp/2+1)
	if o.retryAfter > 0 {
		delay = o.retryAfter
	}
	if b.failures < b.cfg.BreakerFailures {
		return delay, false
	}
	if b.open == 0 {
		b.open = b.cfg.BreakerOpen
	} else {
		b.open = min(2*b.open, b.cfg.BreakerMaxOpen)
	}
	return max(delay, b.open), true
}

// reset closes the breaker: after a success, or when the stream's owner
// changed it or tested it successfully.
func (b *backoff) reset() { b.failures, b.open = 0, 0 }
