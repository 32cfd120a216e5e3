package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/metrics"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

// reconciliationSchedule is the schedule's wanted spec and action.
func reconciliationSchedule(cfg config.Config) (client.ScheduleSpec, *client.ScheduleWorkflowAction) {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.ReconcileEvery}}}
	action := &client.ScheduleWorkflowAction{
		ID:        workflows.ReconciliationScheduleID(cfg.TaskQueue),
		Workflow:  workflows.ReconciliationWorkflowType,
		Args:      []any{workflows.ReconciliationInput{PendingThreshold: cfg.ReconcilePendingAfter}},
		TaskQueue: cfg.TaskQueue,
	}
	return spec, action
}

// EnsureReconciliationSchedule creates the reconciliation schedule of this
// deployment (one per task queue), or brings an existing one to the
// configured interval and threshold. Safe to run from every worker at once.
func EnsureReconciliationSchedule(ctx context.Context, c client.Client, cfg config.Config) error {
	spec, action := reconciliationSchedule(cfg)
	id := workflows.ReconciliationScheduleID(cfg.TaskQueue)
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note: "compares workflows, read model and ledger; repairs nothing (issue 13, item 6)",
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		if err != nil {
			return fmt.Errorf("create schedule %s: %w", id, err)
		}
		return nil
	}
	err = c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", id, err)
	}
	return nil
}

// ensureScheduleWhenReachable keeps trying until the schedule is in place.
func ensureScheduleWhenReachable(ctx context.Context, d *Deps) {
	var r retry
	for {
		err := EnsureReconciliationSchedule(ctx, d.Temporal, d.Config)
		if err == nil {
			d.Logger.Info("reconciliation schedule ready", "schedule_id", workflows.ReconciliationScheduleID(d.Config.TaskQueue),
				"every", d.Config.ReconcileEvery.String())
			return
		}
		delay, log := r.failed(time.Now())
		if log {
			d.Logger.Warn("reconciliation schedule", "attempt", r.attempt, "retry_in", delay.Round(time.Millisecond).String(), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// TriggerReconciliation (`fulfillment reconcile`) makes sure the schedule
// exists and runs it now, even while a scheduled run is still going.
func TriggerReconciliation(ctx context.Context, cfg config.Config, d *Deps) error {
	if err := EnsureReconciliationSchedule(ctx, d.Temporal, cfg); err != nil {
		return err
	}
	id := workflows.ReconciliationScheduleID(cfg.TaskQueue)
	err := d.Temporal.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
	})
	if err != nil {
		return fmt.Errorf("trigger schedule %s: %w", id, err)
	}
	d.Logger.Info("reconciliation triggered", "schedule_id", id)
	return nil
}

// latestReconciliation feeds the reconciliation metrics from the latest report.
func latestReconciliation(st *store.Store) metrics.LatestReconciliation {
	return func(ctx context.Context) (metrics.ReconciliationSummary, bool, error) {
		r, err := st.LatestReconciliation(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return metrics.ReconciliationSummary{}, false, nil
		}
		if err != nil || r.FinishedAt == nil {
			return metrics.ReconciliationSummary{}, false, err
		}
		return metrics.ReconciliationSummary{FinishedAt: *r.FinishedAt, Checked: r.Checked, Counts: r.Counts}, true, nil
	}
}
