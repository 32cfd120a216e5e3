package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
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
	// TaskQueue is the deployment's task queue: the running subscription
	// workflows checked in the second pass are those on it.
	TaskQueue string
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
	ids := make([]string, 0, len(subs))
	for _, sub := range subs {
		ids = append(ids, sub.ID)
	}
	return res, r.checkAll(ctx, req.ReportID, ids, false, req.AsOf, req.PendingThreshold, req.SampleRoom, &res)
}

// ReconcileRunningWorkflows checks the next page of running subscription
// workflows (Temporal visibility, so a workflow that just started or ended
// may be missing or still listed: the next run sees it) whose read-model row
// is terminal or missing: the read-model pass cannot see those.
func (r *Reconciler) ReconcileRunningWorkflows(ctx context.Context, req workflows.ReconcileWorkflowsRequest) (workflows.ReconcileBatchResult, error) {
	res := workflows.ReconcileBatchResult{Counts: map[string]int{}}
	if strings.ContainsAny(r.TaskQueue, `'"\`) {
		return res, fmt.Errorf("task queue %q cannot be named in a visibility query", r.TaskQueue)
	}
	page, err := r.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: int32(req.Limit), NextPageToken: req.PageToken,
		Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND TaskQueue = '%s'", workflows.WorkflowType, r.TaskQueue),
	})
	if err != nil {
		return res, fmt.Errorf("list running subscription workflows: %w", err)
	}
	res.NextPageToken, res.Done = page.GetNextPageToken(), len(page.GetNextPageToken()) == 0
	var ids []string
	for _, e := range page.GetExecutions() {
		if id, ok := strings.CutPrefix(e.GetExecution().GetWorkflowId(), "subscription/"); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return res, nil
	}
	statuses, err := r.Store.SubscriptionStatuses(ctx, ids)
	if err != nil {
		return res, err
	}
	var closedOrMissing []string // open rows were checked by the first pass
	for _, id := range ids {
		if st, ok := statuses[id]; !ok || st.Terminal() {
			closedOrMissing = append(closedOrMissing, id)
		}
	}
	res.Checked = len(closedOrMissing)
	if len(closedOrMissing) == 0 {
		return res, nil
	}
	return res, r.checkAll(ctx, req.ReportID, closedOrMissing, true, req.AsOf, req.PendingThreshold, req.SampleRoom, &res)
}

// checkAll compares subscriptions (8 at once), saves their findings in the
// report (replacing what an earlier attempt saved for them) and counts them
// into res. wantRow: a missing read-model row is a finding (else the row
// went away since the page was read, and there is nothing to compare).
func (r *Reconciler) checkAll(ctx context.Context, reportID string, ids []string, wantRow bool, asOf time.Time, threshold time.Duration,
	sampleRoom int, res *workflows.ReconcileBatchResult) error {
	findings := make([][]domain.Finding, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, queryParallelism)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			findings[i], errs[i] = r.check(ctx, id, wantRow, asOf, threshold)
			activity.RecordHeartbeat(ctx, i)
		}()
	}
	wg.Wait()
	var all []domain.Finding
	for i := range ids {
		if errs[i] != nil {
			return errs[i]
		}
		all = append(all, findings[i]...)
	}
	if err := r.Store.SaveFindings(ctx, reportID, ids, all); err != nil {
		return err
	}
	for _, f := range all {
		res.Counts[f.Kind]++
	}
	res.Sample = all[:min(len(all), max(0, sampleRoom))]
	return nil
}

// check compares one subscription. Workflow and read model may be a write
// apart for an instant (the read model is written before the workflow
// adopts the change): a disagreement is reported only if it survives a
// second look a moment later.
func (r *Reconciler) check(ctx context.Context, id string, wantRow bool, asOf time.Time, threshold time.Duration) ([]domain.Finding, error) {
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
			if !wantRow {
				return nil, nil // gone from the read model since the page was read
			}
			findings = []domain.Finding{{SubscriptionID: id, Kind: domain.FindingReadModelMissing,
				Detail: "workflow " + workflows.WorkflowID(id) + " runs without a read-model row"}}
			if state != nil {
				findings[0].WorkflowValue = ptr(string(state.Status))
			}
			continue
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
		findings = domain.Reconcile(state, row, ledger[id], asOf, threshold)
		if len(findings) == 0 || onlyOverdue(findings) {
			return findings, nil
		}
	}
	return findings, nil
}

func ptr(s string) *string { return &s }

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
