package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTick = 10 * time.Millisecond

// procs names the processes whose CPU time a phase accounts for; an entry
// with match set sums every process whose command line holds it (the
// PostgreSQL backends serving one database; one that exits between two
// snapshots is missed).
type procs []struct {
	name  string
	pid   int
	match string
}

// cpuTime is a process's user+system CPU time so far (0 if unreadable).
func cpuTime(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after its ')'.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

func (p procs) snapshot() []time.Duration {
	out := make([]time.Duration, len(p))
	for i, x := range p {
		if x.match != "" {
			for _, pid := range findProcesses(x.match) {
				out[i] += cpuTime(pid)
			}
			continue
		}
		out[i] = cpuTime(x.pid)
	}
	return out
}

// findProcess is the first process whose command line holds every one of parts.
func findProcess(parts ...string) int {
	if pids := findProcesses(parts...); len(pids) > 0 {
		return pids[0]
	}
	return 0
}

// findProcesses lists the processes whose command line holds every one of parts.
func findProcesses(parts ...string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(raw), "\x00", " ") + " "
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(cmdline, p)
		}
		if ok {
			pid, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, pid)
		}
	}
	return pids
}
