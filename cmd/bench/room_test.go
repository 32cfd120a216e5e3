package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ninth session's 03:44 run: ceiling 23.7 + 6.0 ms per flow, service
// 32.0 (engine) + 4.5 + 9.0 + 1.4 + 6.4.
func TestCPURoom(t *testing.T) {
	phase := func(name string, flows int64, ms ...float64) *result {
		r := newResult(name, "c=32")
		r.flows = flows
		r.procs = procs{{name: "temporal", pid: 1}, {name: "api"}, {name: "worker"}, {name: "bench", pid: 1}, {name: "postgres"}}
		if len(ms) == 5 {
			r.procs[1].pid, r.procs[2].pid, r.procs[4].match = 2, 3, "db"
		}
		r.cpu = make([]time.Duration, len(r.procs))
		for i, v := range ms {
			r.cpu[i] = time.Duration(v * float64(flows) * float64(time.Millisecond))
		}
		return r
	}
	ceiling := phase("ceiling", 826, 23.7, 0, 0, 6.0)
	service := phase("service", 1091, 32.0, 4.5, 9.0, 1.4, 6.4)

	c, ok := roomOf(service, ceiling, 0.8)
	require.True(t, ok)
	assert.InDelta(t, 37.125, c.budget(), 1e-6)
	assert.InDelta(t, 5.125, c.room(), 1e-6)
	assert.InDelta(t, 21.3, c.own, 1e-6)
	assert.InDelta(t, 29.7/38.0, c.floor(), 1e-6)
	assert.True(t, strings.HasPrefix(c.String(), "0.80 needs ≤ 37.1 ms of CPU per flow; the engine took 32.0, leaving 5.1"), c.String())

	_, ok = roomOf(ceiling, ceiling, 0.8)
	assert.False(t, ok, "not for the ceiling itself")
	_, ok = roomOf(phase("ceiling + extras", 900, 25, 0, 0, 6), ceiling, 0.8)
	assert.False(t, ok, "not for a phase without the service's processes")
	open := phase("open", 500, 41.9, 5.9, 12.8, 2.2, 7.4)
	open.load = "18.6/s"
	_, ok = roomOf(open, ceiling, 0.8)
	assert.False(t, ok, "not for a phase at another load")
}
