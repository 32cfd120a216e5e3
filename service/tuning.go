package service

import (
	"log/slog"
	"os"
	"strconv"

	sdkworker "go.temporal.io/sdk/worker"
)

// tuneWorkerCache bounds the sticky workflow cache (the SDK keeps 10,000
// workflows in memory by default) when WORKFLOW_CACHE_SIZE is set: a worker
// holding many open subscriptions trades memory for replays on eviction (see
// BENCHMARKS.md). It must run before the worker is created.
func tuneWorkerCache(logger *slog.Logger) {
	v := os.Getenv("WORKFLOW_CACHE_SIZE")
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		logger.Warn("WORKFLOW_CACHE_SIZE ignored: not a positive integer", "value", v)
		return
	}
	sdkworker.SetStickyWorkflowCacheSize(n)
	logger.Info("sticky workflow cache bounded", "size", n)
}
