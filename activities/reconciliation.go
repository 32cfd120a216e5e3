package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

// Reconciler holds the reconciliation workflow's activities. They read
// Temporal and PostgreSQL and write only the report: every one is safe to
// run twice, and none changes a subscription, its ledger or its workflow.
type Reconciler struct {
	Store    *store.Store
	Temporal client.Client
	// Observe, when set, sees each completed report (metrics, logs).
	Observe func(workflows.ReconciliationFinish)
}

// queryParallelism bounds the state queries in flight per batch.
const queryParallelism = 8

// BeginReconciliation opens the report (idempotent by report id).
func (r *Reconciler) BeginReconciliation(ctx context.Context, in workflows.ReconciliationStart) error {
	return r.Store.BeginReconciliation(ctx, store.ReconciliationReport{
		ID: in.ReportID, WorkflowID: in.WorkflowID, StartedAt: in.StartedAt, PendingThreshold: in.PendingThreshold,
	})
}

// ReconcileBatch checks the next page of open subscriptions and replaces
// their findings in the report.
func (r *Reconciler) ReconcileBatch(ctx context.Context, req workflows.ReconcileBatchRequest) (workflows.ReconcileBatchResult, error) {
	res := workflows.ReconcileBatchResult{Counts: map[string]int{}}
	subs, err := r.Store.OpenSubscriptions(ctx, req.AfterID, req.Limit)
	if err != nil {
		return res, err
	}
	res.Checked, res.Done = len(subs), len(subs) < req.Limit
	if len(subs) == 0 {
		return res, nil
	}
	res.LastID = subs[len(subs)-1].ID
	findings := make([][]domain.Finding, len(subs))
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, queryParallelism)
	for i, sub := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			findings[i], errs[i] = r.check(ctx, sub.ID, req)
			activity.RecordHeartbeat(ctx, i)
		}()
	}
	wg.Wait()
	var all []domain.Finding
	ids := make([]string, 0, len(subs))
	for i, sub := range subs {
		if errs[i] != nil {
			return res, errs[i]
		}
		ids = append(ids, sub.ID)
		all = append(all, findings[i]...)
	}
	if err := r.Store.SaveFindings(ctx, req.ReportID, ids, all); err != nil {
		return res, err
	}
	for _, f := range all {
		res.Counts[f.Kind]++
	}
	res.Sample = all[:min(len(all), max(0, req.SampleRoom))]
	return res, nil
}

// check compares one subscription. Workflow and read model may be a write
// apart for an instant (the read model is written before the workflow
// adopts the change): a disagreement is reported only if it survives a
// second look a moment later.
func (r *Reconciler) check(ctx context.Context, id string, req workflows.ReconcileBatchRequest) ([]domain.Finding, error) {
	var findings []domain.Finding
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		state, unreadable, err := r.state(ctx, id)
		if err != nil {
			return nil, err
		}
		row, err := r.Store.Subscription(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil // gone from the read model since the page was read
		}
		if err != nil {
			return nil, err
		}
		ledger, err := r.Store.LedgerOf(ctx, []string{id})
		if err != nil {
			return nil, err
		}
		if unreadable != "" {
			findings = []domain.Finding{{SubscriptionID: id, Kind: domain.FindingWorkflowUnreadable, Detail: unreadable}}
			continue
		}
		findings = domain.Reconcile(state, row, ledger[id], req.AsOf, req.PendingThreshold)
		if len(findings) == 0 || onlyOverdue(findings) {
			return findings, nil
		}
	}
	return findings, nil
}

func onlyOverdue(fs []domain.Finding) bool {
	for _, f := range fs {
		if f.Kind != domain.FindingPendingOverdue {
			return false
		}
	}
	return true
}

// state queries the workflow's state. A missing workflow is (nil, "", nil);
// a workflow that does not answer is described in unreadable; err is for
// failures that should fail the activity (its context ended).
func (r *Reconciler) state(ctx context.Context, id string) (*domain.Subscription, string, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := r.Temporal.QueryWorkflow(qctx, workflows.WorkflowID(id), "", workflows.QueryState)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, "", nil
		}
		return nil, fmt.Sprintf("query %s: %v", workflows.QueryState, err), nil
	}
	var s domain.Subscription
	if err := v.Get(&s); err != nil {
		return nil, fmt.Sprintf("decode state: %v", err), nil
	}
	return &s, "", nil
}

// FinishReconciliation completes the report.
func (r *Reconciler) FinishReconciliation(ctx context.Context, in workflows.ReconciliationFinish) error {
	if err := r.Store.FinishReconciliation(ctx, in.ReportID, in.FinishedAt, in.Checked, in.Counts); err != nil {
		return err
	}
	if r.Observe != nil {
		r.Observe(in)
	}
	return nil
}
