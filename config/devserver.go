package config

import (
	"slices"
	"strings"

	"github.com/partnerhub/fulfillment/workflows"
)

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
	// second bound that wait by 5 ms; of three runs at 1000, two measured a
	// lower closed-loop ceiling and the third stalled; 200 did neither in two.
	// Safe to change on a running server: it only lets the queue read sooner.
	"history.transferProcessorMaxPollRPS=200",
	// The CLI's dev server turns this on by default, so that a search
	// attribute created at run time is usable at once; the server then reads
	// the search attribute types (GetCurrentClusterMetadata) and the
	// namespace (GetNamespace, under a registry-wide lock) from SQLite on
	// every search attribute read — each start with search attributes, each
	// upsert, each visibility write. That was ~8 engine persistence calls per
	// purchase→active flow beyond the no-op ceiling's (BENCHMARKS.md, "The
	// dev server's search attribute reads"). This project's search attributes
	// are all given at start (--search-attribute, written into the
	// namespace before the server serves), so the cache is never stale here;
	// off is also every production server's default. One created later (the
	// service's own AddSearchAttributes, for a server started without them)
	// is seen within the cache's 60 s refresh.
	"system.forceSearchAttributesCacheRefreshOnRead=false",
}

// DevServerFlags are `temporal server start-dev` arguments for
// DevServerDynamicConfig and the ops search attributes. An override
// (KEY=VALUE, for experiments) replaces the list's value of its key or adds
// one: the CLI takes a key given twice without saying which value wins.
func DevServerFlags(overrides ...string) []string {
	values := slices.Clone(DevServerDynamicConfig)
	for _, o := range overrides {
		key, _, _ := strings.Cut(o, "=")
		if i := slices.IndexFunc(values, func(kv string) bool { return strings.HasPrefix(kv, key+"=") }); i >= 0 {
			values[i] = o
		} else {
			values = append(values, o)
		}
	}
	var args []string
	for _, kv := range values {
		args = append(args, "--dynamic-config-value", kv)
	}
	for _, name := range workflows.SearchAttributeNames {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	return args
}
