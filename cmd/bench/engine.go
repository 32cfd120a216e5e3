package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/partnerhub/fulfillment/testenv"
)

// devEngine is the dev server the bench started. The engine slows as a run goes
// on (BENCHMARKS.md, "A slower host, the engine's drift"): the same no-op
// ceiling costs it more CPU per flow in its fourth phase than in its first.
// A phase measured later is measured on a slower engine, so with fresh set
// every measured phase after the first starts on a new dev server (same
// binary, flags and address; no workflow of the phases before, while the
// service's database keeps its rows): ceiling and service are compared from
// the same engine state, whatever their order.
type devEngine struct {
	srv       *testsuite.DevServer
	address   string
	metrics   string // the port of its Prometheus endpoint
	devConfig string
	pid       int
	fresh     bool
	used      bool
	restarts  int
	pin       *pinning
}

func startEngine(ctx context.Context, devConfig string, fresh bool) (*devEngine, error) {
	e := &devEngine{address: testenv.FreeAddress(), devConfig: devConfig, fresh: fresh}
	return e, e.start(ctx)
}

func (e *devEngine) start(ctx context.Context) error {
	_, e.metrics, _ = strings.Cut(testenv.FreeAddress(), ":")
	srv, err := startDevServer(ctx, e.address, e.metrics, e.devConfig)
	if err != nil {
		return err
	}
	e.srv = srv
	_, port, _ := strings.Cut(e.address, ":")
	e.pid = findProcess("start-dev", "--port "+port+" ")
	if e.pin != nil {
		e.pin.setEngine(e.pid)
	}
	return nil
}

func (e *devEngine) metricsURL() string {
	if e.srv == nil {
		return ""
	}
	return "http://127.0.0.1:" + e.metrics + "/metrics"
}

func (e *devEngine) stop() {
	if e.srv != nil {
		_ = e.srv.Stop()
		e.srv = nil
	}
}

// before readies the engine for a measured phase: with fresh set and the
// engine used by an earlier phase, a new dev server replaces it; the
// service's processes (st, when running) reconnect by themselves and are
// waited for. It returns the engine's pid, for the phase's CPU accounting.
func (e *devEngine) before(ctx context.Context, c client.Client, st *stack) (int, error) {
	if e == nil {
		return 0, nil
	}
	if !e.fresh || !e.used {
		e.used = true
		return e.pid, nil
	}
	e.stop()
	if err := e.start(ctx); err != nil {
		return 0, fmt.Errorf("restart the dev server: %w", err)
	}
	e.restarts++
	if st != nil {
		if err := st.reconnected(ctx, c); err != nil {
			return 0, err
		}
	}
	return e.pid, nil
}

// reconnected waits until the api answers /readyz and the worker polls both
// of its task queue's kinds on the (new) engine.
func (s *stack) reconnected(ctx context.Context, c client.Client) error {
	polling := func() bool {
		for _, kind := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			d, err := c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
				Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: s.taskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}, TaskQueueType: kind,
			})
			if err != nil || len(d.GetPollers()) == 0 {
				return false
			}
		}
		return true
	}
	if !waitUntil(ctx, 90*time.Second, func() bool { return s.apiReady() && polling() }) {
		return fmt.Errorf("the service did not reconnect to the new dev server within 90s (see %s)", s.logFile.Name())
	}
	return nil
}
