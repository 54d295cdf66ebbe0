package tenant

import (
	"fmt"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/schema"
)

// OrgLimit returns the middleware that lets each org (the caller's, so it
// must follow Middleware) run at most max of the requests it guards at
// once; beyond, it answers 429 with code and Retry-After, so that one org
// cannot take the connections every org's reads share. what names the
// requests in the message ("queries").
func OrgLimit(code, what string, max int, retry time.Duration) gin.HandlerFunc {
	l := &orgLimiter{max: max, running: map[string]int{}}
	return func(c *gin.Context) {
		p, _ := schema.PrincipalFrom(c.Request.Context())
		if !l.acquire(p.OrgID) {
			e := schema.TooManyRequests(code, fmt.Sprintf(
				"your org already runs %d %s at once, the most it may; retry when one has finished", max, what))
			e.RetryAfter = retry
			_ = c.Error(e)
			c.Abort()
			return
		}
		defer l.release(p.OrgID)
		c.Next()
	}
}

// orgLimiter counts the requests each org runs; an org running none holds
// no entry, so the map is bounded by the requests in flight.
type orgLimiter struct {
	mu      sync.Mutex
	max     int
	running map[string]int
}

func (l *orgLimiter) acquire(org string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running[org] >= l.max {
		return false
	}
	l.running[org]++
	return true
}

func (l *orgLimiter) release(org string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running[org]--; l.running[org] <= 0 {
		delete(l.running, org)
	}
}
