package main

import "fmt"

// cpuRoom is the CPU arithmetic behind a service phase's ratio to the
// regular ceiling, for runs where both phases keep every CPU busy (their
// throughput then follows CPU per flow): the service's whole CPU per flow
// may be at most ceiling/target; the engine's share of it leaves the room
// for the service's own processes, which is set against what they took and
// what the ceiling's in-process client and worker took. It ends with the
// ratio of a service that cost only the engine's CPU per flow plus the
// ceiling's client and worker: what no change to the service's own code can
// beat while the engine costs what it did.
type cpuRoom struct {
	target        float64
	ceilingTotal  float64 // every process of the ceiling phase, ms per flow
	ceilingClient float64 // the ceiling's in-process client and worker
	engine        float64 // the Temporal server, per service flow
	own           float64 // api, worker, PostgreSQL and load generator, per service flow
}

func (c cpuRoom) budget() float64 { return c.ceilingTotal / c.target }

func (c cpuRoom) room() float64 { return c.budget() - c.engine }

// floor is the ratio of a service costing the engine plus the ceiling's client.
func (c cpuRoom) floor() float64 { return c.ceilingTotal / (c.engine + c.ceilingClient) }

func (c cpuRoom) String() string {
	return fmt.Sprintf("%.2f needs ≤ %.1f ms of CPU per flow; the engine took %.1f, leaving %.1f for api, worker, PostgreSQL and load generator (they took %.1f; the ceiling's in-process client and worker %.1f); the engine's share plus the ceiling's client and worker alone would be %.2f",
		c.target, c.budget(), c.engine, c.room(), c.own, c.ceilingClient, c.floor())
}

// roomOf is the arithmetic for a service phase measured against the ceiling
// (false for the ceilings themselves and when CPU was not measured).
func roomOf(r, ceiling *result, target float64) (cpuRoom, bool) {
	const temporal, api, bench = 0, 1, 3
	if ceiling == nil || r == ceiling || r.load != ceiling.load || len(r.procs) <= api || r.procs[api].pid == 0 || r.flows == 0 || ceiling.flows == 0 {
		return cpuRoom{}, false
	}
	c := cpuRoom{target: target, ceilingClient: ceiling.cpuPerFlow(bench), engine: r.cpuPerFlow(temporal)}
	for i := range ceiling.procs {
		c.ceilingTotal += ceiling.cpuPerFlow(i)
	}
	for i := range r.procs {
		if i != temporal {
			c.own += r.cpuPerFlow(i)
		}
	}
	if c.engine == 0 || c.ceilingTotal == 0 {
		return cpuRoom{}, false
	}
	return c, true
}
