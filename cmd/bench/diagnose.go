package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// diagnose runs what -engine-perf and -busy-cpus ask for during one measured
// closed-loop phase and returns the function that stops it: a `perf record`
// of the Temporal server (pid) from 2 s after the warmup for -engine-perf
// seconds, into <out>/engine-<phase>.perf.data; and a nice-19 busy loop on
// each CPU of -busy-cpus for the whole phase (how much a busy neighbouring CPU
// slows the engine: BENCHMARKS.md, "Where the service's extra engine CPU goes").
func diagnose(ctx context.Context, o options, phase string, pid int, recorded time.Duration) (stop func()) {
	var cmds []*exec.Cmd
	start := func(name string, args ...string) {
		cmd := exec.CommandContext(ctx, name, args...)
		if err := cmd.Start(); err != nil {
			logf("%s: %v", name, err)
			return
		}
		cmds = append(cmds, cmd)
	}
	for _, cpu := range strings.Split(o.busyCPUs, ",") {
		if cpu = strings.TrimSpace(cpu); cpu != "" {
			start("taskset", "-c", cpu, "nice", "-n", "19", "sh", "-c", "while :; do :; done")
		}
	}
	if seconds := min(o.enginePerf, recorded-4*time.Second); seconds > 0 && pid != 0 {
		file := filepath.Join(o.out, "engine-"+slug(phase)+".perf.data")
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(o.warmup + 2*time.Second):
			}
			out, err := exec.CommandContext(ctx, "perf", "record", "-e", "cpu-clock", "-g", "-p", strconv.Itoa(pid), "-o", file,
				"--", "sleep", strconv.FormatFloat(seconds.Seconds(), 'f', 1, 64)).CombinedOutput()
			if err != nil {
				logf("perf record of the engine: %v: %s", err, out)
				return
			}
			logf("engine profile of %q (%s): %s", phase, seconds, file)
		}()
	}
	return func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
}

// slug names a phase in a file name: "service: HTTP, closed loop" →
// "service-http-closed-loop".
func slug(phase string) string {
	words := strings.FieldsFunc(strings.ToLower(phase), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	return strings.Join(words, "-")
}
