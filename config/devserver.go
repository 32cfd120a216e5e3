package config

import "github.com/partnerhub/fulfillment/workflows"

// DevServerDynamicConfig is the dynamic config of every Temporal dev server
// this project starts (`fulfillment dev` for make run, the tests, the
// benchmark), as KEY=VALUE.
var DevServerDynamicConfig = []string{
	// Purchases are Update-with-Start and every callback is an Update.
	"frontend.enableUpdateWorkflowExecution=true",
	"frontend.enableExecuteMultiOperation=true",
	// Each transition's write is an activity on the worker that decided it:
	// handed over in the workflow task's answer, not through matching.
	"system.enableActivityEagerExecution=true",
	// The dev server has one history shard, and its transfer queue — which
	// hands matching a new run's first workflow task and every task that
	// follows an activity — reads new tasks at most 20 times a second per
	// shard by default (sized for clusters of hundreds of shards). Under load
	// each such task waited 0–50 ms: four per purchase→active flow, half of
	// its p50 (BENCHMARKS.md, "The engine's transfer queue"). 200 reads a
	// second bound that wait by 5 ms; 1000 lowered the closed-loop ceiling in
	// three runs of four and one of them stalled, 200 did neither in two.
	// Safe to change on a running server: it only lets the queue read sooner.
	"history.transferProcessorMaxPollRPS=200",
}

// DevServerFlags are `temporal server start-dev` arguments for
// DevServerDynamicConfig and the ops search attributes.
func DevServerFlags() []string {
	var args []string
	for _, kv := range DevServerDynamicConfig {
		args = append(args, "--dynamic-config-value", kv)
	}
	for _, name := range workflows.SearchAttributeNames {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	return args
}
