package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The per-key limiter map does not grow without bound: entries idle longer
// than the TTL are evicted. The TTL is at least a full refill, so an evicted
// entry had a full bucket anyway: eviction hands no drained client a budget early.
func TestLimiterEvictsIdleEntries(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(1, 20) // refills in 20 s
	l.now = func() time.Time { return clock }
	require.GreaterOrEqual(t, l.ttl, 20*time.Second, "the TTL covers a full refill")

	// A drained client.
	for range 20 {
		ok, _ := l.reserve("drained")
		require.True(t, ok)
	}
	ok, _ := l.reserve("drained")
	require.False(t, ok)

	// A flood of one-off keys (spoofed addresses, say).
	for i := range 10_000 {
		l.reserve(fmt.Sprintf("flood-%d", i))
	}
	assert.Equal(t, 10_001, l.size())

	// Within the TTL nothing is forgotten: the drained client (one token back
	// after a second) is still limited.
	clock = clock.Add(time.Second)
	l.reserve("drained")
	ok, _ = l.reserve("drained")
	assert.False(t, ok)
	clock = clock.Add(l.ttl/2 - time.Second)
	l.reserve("drained")
	assert.Equal(t, 10_001, l.size(), "half a TTL later every entry is still tracked")

	clock = clock.Add(l.ttl/2 + time.Second)
	l.reserve("new")
	assert.Equal(t, 2, l.size(), "the idle flood is evicted; the recently seen client is kept")

	clock = clock.Add(2 * l.ttl)
	l.reserve("later")
	assert.Equal(t, 1, l.size())
}

func TestMethodLabel(t *testing.T) {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		assert.Equal(t, m, MethodLabel(m))
	}
	for _, m := range []string{"get", "BREW", "PROPFIND", "X-" + string(make([]byte, 100))} {
		assert.Equal(t, "other", MethodLabel(m))
	}
}
