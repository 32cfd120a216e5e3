package service

import (
	"log/slog"
	"os"
	"strconv"
	"time"

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

// workerOptions are the worker's options, the SDK's defaults unless set:
// WORKFLOW_TASK_POLLERS (workflow task pollers, SDK default 2) and
// STICKY_SCHEDULE_TO_START_TIMEOUT (how long a cached workflow's task waits
// for this worker before the server hands it to any worker with the whole
// history, SDK default 5s). Both are for a worker facing a renewal wave (see
// BENCHMARKS.md).
func workerOptions(logger *slog.Logger) sdkworker.Options {
	var o sdkworker.Options
	if v := os.Getenv("WORKFLOW_TASK_POLLERS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			o.MaxConcurrentWorkflowTaskPollers = n
			logger.Info("workflow task pollers", "pollers", n)
		} else {
			logger.Warn("WORKFLOW_TASK_POLLERS ignored: not a positive integer", "value", v)
		}
	}
	if v := os.Getenv("STICKY_SCHEDULE_TO_START_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			o.StickyScheduleToStartTimeout = d
			logger.Info("sticky schedule-to-start timeout", "timeout", d.String())
		} else {
			logger.Warn("STICKY_SCHEDULE_TO_START_TIMEOUT ignored: not a positive duration", "value", v)
		}
	}
	return o
}
