package tenant

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/schema"
)

// OrgLimit returns the middleware that lets each org (the caller's, so it
// must follow Middleware) run at most max of the requests it guards at
// once, so that one org cannot take the connections every org's reads
// share. A request beyond waits up to wait for one of its org's to finish
// (at most max of an org's requests wait; wait 0: none); a request that
// finds the waiters full, or waits in vain, is answered 429 with code and
// Retry-After. what names the requests in the message ("queries").
func OrgLimit(code, what string, max int, wait, retry time.Duration) gin.HandlerFunc {
	return newOrgLimiter(max, wait).handler(code, what, retry)
}

// orgLimiter holds, per org with requests running or waiting, a semaphore
// of max slots; an org with neither holds no entry, so the map is bounded
// by the requests in flight.
type orgLimiter struct {
	mu   sync.Mutex
	max  int
	wait time.Duration
	orgs map[string]*orgSlots
}

type orgSlots struct {
	sem     chan struct{} // a token per running request
	waiting int           // requests waiting for a token
	refs    int           // running + waiting: the entry lives while > 0
}

func newOrgLimiter(max int, wait time.Duration) *orgLimiter {
	return &orgLimiter{max: max, wait: wait, orgs: map[string]*orgSlots{}}
}

func (l *orgLimiter) handler(code, what string, retry time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, _ := schema.PrincipalFrom(c.Request.Context())
		if !l.acquire(c.Request.Context(), p.OrgID) {
			msg := fmt.Sprintf("your org already runs %d %s at once, the most it may; retry when one has finished", l.max, what)
			if l.wait > 0 {
				msg = fmt.Sprintf("your org already runs %d %s at once, the most it may, and none finished within %s; retry later", l.max, what, l.wait)
			}
			e := schema.TooManyRequests(code, msg)
			e.RetryAfter = retry
			_ = c.Error(e)
			c.Abort()
			return
		}
		defer l.release(p.OrgID)
		c.Next()
	}
}

// acquire takes one of org's slots: at once if one is free, else after
// waiting up to l.wait (if fewer than max already wait), unless ctx ends
// first. It reports whether it took one.
func (l *orgLimiter) acquire(ctx context.Context, org string) bool {
	l.mu.Lock()
	s := l.orgs[org]
	if s == nil {
		s = &orgSlots{sem: make(chan struct{}, l.max)}
		l.orgs[org] = s
	}
	select {
	case s.sem <- struct{}{}:
		s.refs++
		l.mu.Unlock()
		return true
	default:
	}
	if l.wait <= 0 || s.waiting >= l.max {
		l.drop(org, s)
		l.mu.Unlock()
		return false
	}
	s.waiting++
	s.refs++
	l.mu.Unlock()

	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	ok := false
	select {
	case s.sem <- struct{}{}:
		ok = true
	case <-timer.C:
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s.waiting--
	if !ok {
		s.refs--
		l.drop(org, s)
	}
	return ok
}

func (l *orgLimiter) release(org string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.orgs[org]
	<-s.sem
	s.refs--
	l.drop(org, s)
}

// drop forgets org's entry when nothing runs or waits; l.mu is held.
func (l *orgLimiter) drop(org string, s *orgSlots) {
	if s.refs <= 0 {
		delete(l.orgs, org)
	}
}

// waiters reports how many of org's requests wait (for tests).
func (l *orgLimiter) waiters(org string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.orgs[org]; s != nil {
		return s.waiting
	}
	return 0
}
