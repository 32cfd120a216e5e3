// Rate limits: per tenant, and failed authentications per client address.

package api

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// limiter keeps one token bucket per key (tenant or client address). Entries
// idle longer than ttl are evicted, so callers cannot grow the map without
// bound; ttl is at least the time a bucket takes to refill, so an evicted
// entry was full and forgetting it grants nothing a kept one would not.
type limiter struct {
	rps       rate.Limit
	burst     int
	ttl       time.Duration
	now       func() time.Time
	mu        sync.Mutex
	byKey     map[string]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// minLimiterTTL keeps entries of fast-refilling buckets a little while anyway.
const minLimiterTTL = time.Minute

func newLimiter(rps float64, burst int) *limiter {
	if rps <= 0 {
		return nil
	}
	burst = max(burst, 1)
	refill := time.Duration(float64(burst) / rps * float64(time.Second))
	return &limiter{rps: rate.Limit(rps), burst: burst, ttl: max(refill+time.Second, minLimiterTTL), now: time.Now,
		byKey: map[string]*limiterEntry{}}
}

// get returns key's bucket, creating it, and evicts idle entries at most
// once per ttl/2 (amortised: one sweep per half ttl, whatever the traffic).
func (l *limiter) get(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.ttl/2 {
		for k, e := range l.byKey {
			if now.Sub(e.lastSeen) > l.ttl {
				delete(l.byKey, k)
			}
		}
		l.lastSweep = now
	}
	e, ok := l.byKey[key]
	if !ok {
		e = &limiterEntry{lim: rate.NewLimiter(l.rps, l.burst)}
		l.byKey[key] = e
	}
	e.lastSeen = now
	return e.lim
}

// size is the number of tracked keys (tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey)
}

func (l *limiter) reserve(key string) (bool, time.Duration) {
	now := l.now()
	r := l.get(key, now).ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// failedAuthentication answers a failed authentication. Each failure spends
// the client address's budget; while the address has budget left the failure
// is audited and answered with deny (401), once it is spent the answer is 429
// with Retry-After and nothing is written, so a flood of bad keys or forged
// signatures costs no audit rows. Valid credentials never reach here: a
// partner whose key is good is served from a throttled address too. (Guessing
// keys is hopeless anyway: generated keys carry 256 bits, seeded ones at
// least 16 characters, and the stored hash is keyed.)
func (s *Server) failedAuthentication(c *gin.Context, actor, tenant, action, reason string, deny *Problem) {
	if s.failureLimiter != nil {
		l := s.failureLimiter
		now := l.now()
		lim := l.get("address:"+c.ClientIP(), now)
		if !lim.AllowN(now, 1) {
			wait := time.Duration((1 - lim.TokensAt(now)) / float64(lim.Limit()) * float64(time.Second))
			c.Header("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
			writeProblem(c, problem(CodeRateLimited, "too many failed authentications from this address; retry later"))
			return
		}
	}
	s.audit(c, actor, tenant, action, "denied", map[string]any{"reason": reason})
	writeProblem(c, deny)
}

// allow spends a token of the tenant's bucket or answers 429 with Retry-After.
func (s *Server) allow(c *gin.Context, l *limiter, key string) bool {
	if l == nil {
		return true
	}
	ok, wait := l.reserve(key)
	if ok {
		return true
	}
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeProblem(c, problem(CodeRateLimited, fmt.Sprintf("rate limit of %s exceeded; retry after %s", key, wait.Round(time.Millisecond))))
	return false
}

// AddressLimiter throttles requests per client address outside the API's own
// routes (the portal's sign-in requests, which send email).
type AddressLimiter struct{ l *limiter }

// NewAddressLimiter allows burst requests per address at once, refilled at
// perSecond; nil (no limit) when perSecond is not positive.
func NewAddressLimiter(perSecond float64, burst int) *AddressLimiter {
	l := newLimiter(perSecond, burst)
	if l == nil {
		return nil
	}
	return &AddressLimiter{l: l}
}

// Allow spends one request of address's budget, or reports how long to wait.
func (a *AddressLimiter) Allow(address string) (bool, time.Duration) {
	if a == nil {
		return true, 0
	}
	return a.l.reserve("address:" + address)
}
