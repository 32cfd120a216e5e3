package worker_test

import (
	"path/filepath"
	"strings"
	"testing"

	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/workflows"
)

// BenchmarkReplay replays recorded histories through the subscription
// workflow: the worker's CPU for a workflow that is not in its sticky cache
// (every transition rebuilt from the history), e.g. after a cache eviction
// with a bounded WorkflowCacheSize. One op is one whole history.
func BenchmarkReplay(b *testing.B) {
	files, err := filepath.Glob(filepath.Join("..", "workflows", "testdata", "histories", "*.json"))
	if err != nil || len(files) == 0 {
		b.Skip("no recorded histories under workflows/testdata/histories")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		if !strings.Contains(name, "purchase_to_active") && !strings.Contains(name, "renewal_run1") {
			continue
		}
		b.Run(name, func(b *testing.B) {
			replayer := sdkworker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(workflows.SubscriptionWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowType})
			b.ReportAllocs()
			for b.Loop() {
				if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
