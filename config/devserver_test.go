package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// An experiment's override replaces the list's value of its key (the CLI
// does not say which of two values wins) or adds a new key; the list itself
// is left as it was.
func TestDevServerFlagsOverride(t *testing.T) {
	values := func(args []string) map[string][]string {
		out := map[string][]string{}
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "--dynamic-config-value" {
				k, v, _ := strings.Cut(args[i+1], "=")
				out[k] = append(out[k], v)
			}
		}
		return out
	}
	plain := values(DevServerFlags())
	assert.Equal(t, []string{"200"}, plain["history.transferProcessorMaxPollRPS"])
	assert.Equal(t, []string{"true"}, plain["frontend.enableUpdateWorkflowExecution"])

	got := values(DevServerFlags("history.transferProcessorMaxPollRPS=20", "matching.numTaskqueueReadPartitions=1"))
	assert.Equal(t, []string{"20"}, got["history.transferProcessorMaxPollRPS"], "replaced, not given twice")
	assert.Equal(t, []string{"1"}, got["matching.numTaskqueueReadPartitions"], "a new key is added")
	assert.Equal(t, []string{"true"}, got["system.enableActivityEagerExecution"], "the others stay")
	assert.Equal(t, []string{"200"}, values(DevServerFlags())["history.transferProcessorMaxPollRPS"], "the list is unchanged")
}
