package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pinning gives the Temporal server CPUs of its own: its threads run on the
// engine set, and every other process of the run (this program with the
// ceiling's client and worker, the api and worker processes, the PostgreSQL
// backends of the service's database) on the rest. It answers what the
// shared machine cannot: how many flows the service gets out of an engine
// whose CPU it does not compete for, as in a deployment where Temporal (or
// Temporal Cloud) runs apart from the service.
type pinning struct {
	engineCPUs, rest unix.CPUSet
	describe         string

	mu       sync.Mutex
	engine   int    // the Temporal server's pid (a new one when the bench restarts it)
	others   []int  // this program, then the service's processes once started
	backends string // the command-line match of the service database's PostgreSQL backends
}

// newPinning parses a CPU list ("0", "0-1", "0,2") for the engine; the rest
// of the online CPUs go to everything else.
func newPinning(list string) (*pinning, error) {
	n := runtime.NumCPU()
	p := &pinning{}
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, ranged := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && ranged {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= n {
			return nil, fmt.Errorf("CPU list %q: want CPUs 0 to %d, as 0 or 0-1 or 0,2", list, n-1)
		}
		for cpu := a; cpu <= b; cpu++ {
			p.engineCPUs.Set(cpu)
		}
	}
	for cpu := range n {
		if !p.engineCPUs.IsSet(cpu) {
			p.rest.Set(cpu)
		}
	}
	if p.rest.Count() == 0 {
		return nil, fmt.Errorf("CPU list %q leaves no CPU for the service", list)
	}
	p.describe = fmt.Sprintf("Temporal server on %d of %d CPUs (%s), everything else on the other %d", p.engineCPUs.Count(), n, list, p.rest.Count())
	return p, nil
}

// keep pins the engine and the others every half second until ctx ends, so
// threads and backends started later are pinned too.
func (p *pinning) keep(ctx context.Context, enginePID int) {
	p.others = []int{os.Getpid()}
	p.setEngine(enginePID)
	pinAll := func() {
		p.mu.Lock()
		engine, others, backends := p.engine, slices.Clone(p.others), p.backends
		p.mu.Unlock()
		pinProcess(engine, &p.engineCPUs)
		if backends != "" {
			others = append(others, findProcesses(backends)...)
		}
		for _, pid := range others {
			pinProcess(pid, &p.rest)
		}
	}
	pinAll()
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pinAll()
			}
		}
	}()
}

// setEngine names the Temporal server's process (pinned at the next tick).
func (p *pinning) setEngine(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.engine = pid
}

// service adds the service's processes, and its database's backends by their
// command line, to what runs off the engine's CPUs (pinned at the next tick).
func (p *pinning) service(backends string, pids ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.others = append(p.others, pids...)
	p.backends = backends
}

// pinProcess sets the affinity of every thread of pid (a process's affinity
// call sets one thread's only).
func pinProcess(pid int, set *unix.CPUSet) {
	if pid <= 0 {
		return
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/[0-9]*", pid))
	for _, t := range tasks {
		if tid, err := strconv.Atoi(filepath.Base(t)); err == nil {
			_ = unix.SchedSetaffinity(tid, set) // a thread may have exited
		}
	}
}

// affinity reads a process's allowed CPUs as the kernel states them (for the
// run's header, proof that the pinning held).
func affinity(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
