package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEngineCallsPerFlowPrintsWhatDiffers(t *testing.T) {
	ceiling := &result{name: "ceiling: no-op, regular activities", flows: 10,
		engineStart: map[string]float64{"frontend A": 5, "frontend B": 0},
		engineEnd:   map[string]float64{"frontend A": 25, "frontend B": 10, "persistence P": 30}}
	closed := &result{name: "service: HTTP, closed loop", flows: 20,
		engineStart: map[string]float64{},
		engineEnd:   map[string]float64{"frontend A": 40, "frontend B": 30, "persistence P": 60}}
	assert.Equal(t, map[string]float64{"frontend A": 2, "frontend B": 1, "persistence P": 3}, ceiling.engineCallsPerFlow())
	var out bytes.Buffer
	printEngineCalls(&out, []*result{ceiling, closed, newResult("list", "")})
	lines := strings.Split(out.String(), "\n")
	require.Len(t, lines, 8, out.String())
	assert.Contains(t, lines[2], "ceiling")
	assert.Contains(t, lines[2], "closed")
	assert.Regexp(t, `frontend B +\| +1\.00 \| +1\.50 \|`, lines[4])    // differs: shown
	assert.NotContains(t, out.String(), "frontend A ")                  // 2.00 in both: left out
	assert.Regexp(t, `all rpc calls +\| +3\.00 \| +3\.50 \|`, lines[5]) // totals over every row
	assert.Regexp(t, `all persistence calls +\| +3\.00 \| +3\.00 \|`, lines[6])
}
