package main

import (
	"os"
	"testing"
	"time"
)

func TestPercentilesAreNearestRank(t *testing.T) {
	var s samples
	if s.pct(99) != 0 {
		t.Fatal("no samples: want 0")
	}
	for i := 100; i >= 1; i-- { // out of order on purpose
		s.add(time.Duration(i) * time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50, 95: 95, 99: 99, 100: 100} {
		if got := s.pct(p); got != want*time.Millisecond {
			t.Errorf("p%v = %v, want %v", p, got, want*time.Millisecond)
		}
	}
}

func TestCPUTimeReadsThisProcess(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { // burn a little CPU
	}
	if cpuTime(0) != 0 {
		t.Error("pid 0 has no /proc entry: want 0")
	}
	if got := cpuTime(os.Getpid()); got <= 0 {
		t.Errorf("cpuTime(self) = %v, want > 0", got)
	}
}

func TestSlugNamesAPhaseInAFileName(t *testing.T) {
	for phase, want := range map[string]string{
		"service: HTTP, closed loop":                          "service-http-closed-loop",
		"ceiling + service-sized activity inputs and answers": "ceiling-service-sized-activity-inputs-and-answers",
		"ceiling: no-op, regular activities":                  "ceiling-no-op-regular-activities",
	} {
		if got := slug(phase); got != want {
			t.Errorf("slug(%q) = %q, want %q", phase, got, want)
		}
	}
}
