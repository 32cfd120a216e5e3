package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A phase's rate and per-flow figures are its steady state: flows completed
// within the window over the window, taken when the window closes. A slow
// tail (flows still in flight at the end) is in the latencies, not in the
// rate; before, the rate divided the flows started in the window by the time
// to the last one's end, so a longer tail lowered it.
func TestClosedLoopCountsTheWindowNotTheTail(t *testing.T) {
	const (
		concurrency = 4
		fast        = 10 * time.Millisecond
		slow        = 1500 * time.Millisecond
		warmup      = 100 * time.Millisecond
		duration    = 600 * time.Millisecond
	)
	r := newResult("fake", "c=4")
	var mu sync.Mutex
	var fastDone []time.Time // when each fast flow returned
	var closedAt time.Time   // when the window's closing measurement ran
	first := true
	r.sessions = func() (int64, int64) {
		if first { // the opening measurement
			first = false
			return 0, 0
		}
		closedAt = time.Now()
		return 0, 0
	}
	flow := func(ctx context.Context, timed func(string, time.Duration)) (string, error) {
		// The last 100 ms of the window start flows that end long after it.
		if !r.to.IsZero() && time.Until(r.to) < 100*time.Millisecond && time.Now().Before(r.to) {
			time.Sleep(slow)
			return "slow", nil
		}
		time.Sleep(fast)
		mu.Lock()
		fastDone = append(fastDone, time.Now())
		mu.Unlock()
		return "fast", nil
	}
	began := time.Now()
	closedLoop(context.Background(), r, flow, concurrency, warmup, duration)
	took := time.Since(began)

	assert.Equal(t, duration, r.elapsed, "the rate's time is the window")
	inWindow := 0
	for _, d := range fastDone {
		if !d.Before(r.from) && d.Before(r.to) {
			inWindow++
		}
	}
	// A flow that returns at a window's edge may fall on the other side of it
	// by the time closedLoop reads the clock: at most one per worker and edge.
	assert.InDelta(t, inWindow, r.flows, 2*concurrency, "flows: the fast ones that ended within the window")
	assert.InDelta(t, float64(inWindow)/duration.Seconds(), r.rate(), 2*concurrency/duration.Seconds())
	require.False(t, closedAt.IsZero(), "the window's closing measurement ran")
	assert.Less(t, closedAt.Sub(r.to), slow/2, "measured when the window closed, not after the tail drained")
	assert.GreaterOrEqual(t, took, duration+warmup+slow/2, "the slow flows finished before closedLoop returned")
	assert.GreaterOrEqual(t, r.latency.pct(100), slow, "the tail is in the latencies")
	assert.EqualValues(t, r.latency.count(), r.started, "a latency for every flow started in the window")
	assert.Greater(t, r.started, r.flows-int64(concurrency), "flows started in the window were recorded")
}

func TestAnOpenLoopThatFellBehindSaysSo(t *testing.T) {
	r := newResult("service: HTTP, open loop", "15.5/s")
	r.arrivals, r.elapsed = 15.5, 30*time.Second
	r.flows = 324 // 10.8/s
	assert.Equal(t, "  service: HTTP, open loop fell behind: 10.8 flows/s completed of 15.5/s arriving — a rate beyond the service here, so its latencies are queueing", r.behind())
	r.flows = 450 // 15.0/s: within 5 %
	assert.Empty(t, r.behind())
	closed := newResult("service: HTTP, closed loop", "c=32")
	closed.flows, closed.elapsed = 10, 30*time.Second
	assert.Empty(t, closed.behind(), "a closed loop has no arrival rate to fall behind")
}
