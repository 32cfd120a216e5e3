package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// engineCallsPerFlow is what the engine served during a phase's recorded part, per
// recorded flow.
func (r *result) engineCallsPerFlow() map[string]float64 {
	if r.flows == 0 || r.engineEnd == nil {
		return nil
	}
	out := map[string]float64{}
	for k, v := range r.engineEnd {
		if d := v - r.engineStart[k]; d > 0 {
			out[k] = d / float64(r.flows)
		}
	}
	return out
}

// printEngineCalls prints the engine's RPCs and persistence calls per flow of
// each phase side by side, the rows where some phase differs from the first
// (the ceiling) by at least 0.05 per flow, then each phase's totals.
func printEngineCalls(w io.Writer, results []*result) {
	var phases []*result
	var per []map[string]float64
	for _, r := range results {
		if m := r.engineCallsPerFlow(); m != nil {
			phases, per = append(phases, r), append(per, m)
		}
	}
	if len(phases) == 0 {
		return
	}
	keys := map[string]bool{}
	for _, m := range per {
		for k := range m {
			keys[k] = true
		}
	}
	var rows []string
	for k := range keys {
		for _, m := range per[1:] {
			if d := m[k] - per[0][k]; d >= 0.05 || d <= -0.05 {
				rows = append(rows, k)
				break
			}
		}
		if len(per) == 1 && per[0][k] >= 0.05 {
			rows = append(rows, k)
		}
	}
	slices.Sort(rows)
	fmt.Fprintf(w, "\nthe engine's calls per flow (its Prometheus counters service_requests and persistence_requests over the recorded part; it publishes them about once a second), where a phase differs from %q by 0.05 or more:\n", phases[0].name)
	header := "| " + fmt.Sprintf("%-52s", "service operation")
	rule := "|" + strings.Repeat("-", 54)
	for _, r := range phases {
		header += " | " + fmt.Sprintf("%10s", shortPhase(r.name))
		rule += "|" + strings.Repeat("-", 12)
	}
	fmt.Fprintln(w, header+" |")
	fmt.Fprintln(w, rule+"|")
	for _, k := range rows {
		line := "| " + fmt.Sprintf("%-52s", k)
		for _, m := range per {
			line += " | " + fmt.Sprintf("%10.2f", m[k])
		}
		fmt.Fprintln(w, line+" |")
	}
	for _, total := range []string{"rpc", "persistence"} {
		line := "| " + fmt.Sprintf("%-52s", "all "+total+" calls")
		for _, m := range per {
			var sum float64
			for k, v := range m {
				if strings.HasPrefix(k, "persistence ") == (total == "persistence") {
					sum += v
				}
			}
			line += " | " + fmt.Sprintf("%10.2f", sum)
		}
		fmt.Fprintln(w, line+" |")
	}
}

// shortPhase names a phase in a column ten characters wide.
func shortPhase(name string) string {
	switch {
	case strings.HasPrefix(name, "service: HTTP, closed"):
		return "closed"
	case strings.HasPrefix(name, "service: HTTP, open"):
		return "open"
	case strings.HasPrefix(name, "ceiling: no-op, regular"):
		return "ceiling"
	case strings.HasPrefix(name, "ceiling: no-op, local"):
		return "local"
	}
	s := slug(name)
	s = strings.TrimPrefix(s, "ceiling-")
	if len(s) > 10 {
		s = s[:10]
	}
	return s
}
