// The reconciliation workflow (issue 13, item 6): run by a Temporal Schedule,
// it pages through the open subscriptions, has an activity compare each
// one's workflow state with the read model and the ledger, and reports what
// disagrees. It repairs nothing.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
)

// Names of the reconciliation workflow and its activities.
const (
	ReconciliationWorkflowType   = "ReconciliationWorkflow"
	ActivityBeginReconciliation  = "BeginReconciliation"
	ActivityReconcileBatch       = "ReconcileBatch"
	ActivityReconcileWorkflows   = "ReconcileRunningWorkflows"
	ActivityFinishReconciliation = "FinishReconciliation"
)

// ReconciliationSampleLimit bounds the findings a result carries (the Temporal
// UI shows it); the full list is in PostgreSQL.
const ReconciliationSampleLimit = 100

// Defaults of ReconciliationInput.
const (
	DefaultReconcileBatchSize     = 100
	DefaultReconcileBatchesPerRun = 40 // 4,000 subscriptions, about 250 history events, per run
	DefaultPendingThreshold       = 24 * time.Hour
)

// ReconciliationScheduleID names the schedule of a deployment (its task
// queue): stacks that share a Temporal namespace keep their own.
func ReconciliationScheduleID(taskQueue string) string { return "reconciliation/" + taskQueue }

// ReconciliationInput configures a run; Progress is carried across
// continue-as-new and is nil in the first run.
type ReconciliationInput struct {
	PendingThreshold time.Duration           `json:"pending_threshold"`
	BatchSize        int                     `json:"batch_size,omitempty"`
	BatchesPerRun    int                     `json:"batches_per_run,omitempty"`
	Progress         *ReconciliationProgress `json:"progress,omitempty"`
}

// ReconciliationProgress is what the runs of one reconciliation have done so far.
type ReconciliationProgress struct {
	ReportID  string           `json:"report_id"`
	StartedAt time.Time        `json:"started_at"`
	AfterID   string           `json:"after_id"`
	Checked   int              `json:"checked"`
	Counts    map[string]int   `json:"counts"`
	Sample    []domain.Finding `json:"sample"`
	Runs      int              `json:"runs"`
	// Phase is "" while the read model's open rows are paged, then
	// PhaseRunningWorkflows while Temporal's running subscription workflows
	// are (those the read model calls terminal, or lacks), by PageToken.
	Phase     string `json:"phase,omitempty"`
	PageToken []byte `json:"page_token,omitempty"`
}

// PhaseRunningWorkflows is the second pass of a reconciliation.
const PhaseRunningWorkflows = "running_workflows"

// ReconcileBatchRequest asks the activity to check the next page.
type ReconcileBatchRequest struct {
	ReportID         string        `json:"report_id"`
	AfterID          string        `json:"after_id"`
	Limit            int           `json:"limit"`
	PendingThreshold time.Duration `json:"pending_threshold"`
	AsOf             time.Time     `json:"as_of"`
	// SampleRoom is how many findings the answer may carry back.
	SampleRoom int `json:"sample_room"`
}

// ReconcileWorkflowsRequest asks the activity to check the next page of
// running subscription workflows (Temporal visibility).
type ReconcileWorkflowsRequest struct {
	ReportID         string        `json:"report_id"`
	PageToken        []byte        `json:"page_token,omitempty"`
	Limit            int           `json:"limit"`
	PendingThreshold time.Duration `json:"pending_threshold"`
	AsOf             time.Time     `json:"as_of"`
	SampleRoom       int           `json:"sample_room"`
}

// ReconcileBatchResult is what one page found (all of it is saved in the report).
type ReconcileBatchResult struct {
	Checked int    `json:"checked"`
	LastID  string `json:"last_id,omitempty"`
	// NextPageToken continues a page of running workflows.
	NextPageToken []byte           `json:"next_page_token,omitempty"`
	Done          bool             `json:"done"`
	Counts        map[string]int   `json:"counts"`
	Sample        []domain.Finding `json:"sample,omitempty"`
}

// ReconciliationStart opens a report.
type ReconciliationStart struct {
	ReportID         string    `json:"report_id"`
	WorkflowID       string    `json:"workflow_id"`
	StartedAt        time.Time `json:"started_at"`
	PendingThreshold string    `json:"pending_threshold"`
}

// ReconciliationFinish closes a report.
type ReconciliationFinish struct {
	ReportID   string         `json:"report_id"`
	FinishedAt time.Time      `json:"finished_at"`
	Checked    int            `json:"checked"`
	Counts     map[string]int `json:"counts"`
}

// ReconciliationResult is the workflow's result: counts and a sample.
type ReconciliationResult struct {
	ReportID   string           `json:"report_id"`
	StartedAt  time.Time        `json:"started_at"`
	FinishedAt time.Time        `json:"finished_at"`
	Checked    int              `json:"checked"`
	Findings   int              `json:"findings"`
	Counts     map[string]int   `json:"counts"`
	Sample     []domain.Finding `json:"sample"`
	// SampleTruncated says the report holds more findings than Sample.
	SampleTruncated bool `json:"sample_truncated"`
}

// ReconciliationWorkflow checks every open subscription once and reports:
// first the read model's open rows by id, then the running subscription
// workflows whose rows are terminal or missing (found through visibility).
func ReconciliationWorkflow(ctx workflow.Context, in ReconciliationInput) (ReconciliationResult, error) {
	if in.BatchSize <= 0 {
		in.BatchSize = DefaultReconcileBatchSize
	}
	if in.BatchesPerRun <= 0 {
		in.BatchesPerRun = DefaultReconcileBatchesPerRun
	}
	if in.PendingThreshold <= 0 {
		in.PendingThreshold = DefaultPendingThreshold
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute, // one subscription takes at most 3 queries of 10 s
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	})
	p := in.Progress
	if p == nil {
		info := workflow.GetInfo(ctx)
		reportID := info.FirstRunID // one report across continue-as-new
		if reportID == "" {
			reportID = info.WorkflowExecution.RunID
		}
		p = &ReconciliationProgress{ReportID: reportID, StartedAt: workflow.Now(ctx).UTC(),
			Counts: map[string]int{}, Sample: []domain.Finding{}}
		start := ReconciliationStart{ReportID: p.ReportID, WorkflowID: info.WorkflowExecution.ID, StartedAt: p.StartedAt,
			PendingThreshold: in.PendingThreshold.String()}
		if err := workflow.ExecuteActivity(ctx, ActivityBeginReconciliation, start).Get(ctx, nil); err != nil {
			return ReconciliationResult{}, err
		}
	}
	if p.Counts == nil {
		p.Counts = map[string]int{}
	}
	p.Runs++
	for batches := 0; ; batches++ {
		if batches >= in.BatchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			in.Progress = p
			return ReconciliationResult{}, workflow.NewContinueAsNewError(ctx, ReconciliationWorkflowType, in)
		}
		var res ReconcileBatchResult
		room := ReconciliationSampleLimit - len(p.Sample)
		if p.Phase == "" {
			req := ReconcileBatchRequest{ReportID: p.ReportID, AfterID: p.AfterID, Limit: in.BatchSize,
				PendingThreshold: in.PendingThreshold, AsOf: workflow.Now(ctx).UTC(), SampleRoom: room}
			if err := workflow.ExecuteActivity(ctx, ActivityReconcileBatch, req).Get(ctx, &res); err != nil {
				return ReconciliationResult{}, err
			}
		} else {
			req := ReconcileWorkflowsRequest{ReportID: p.ReportID, PageToken: p.PageToken, Limit: in.BatchSize,
				PendingThreshold: in.PendingThreshold, AsOf: workflow.Now(ctx).UTC(), SampleRoom: room}
			if err := workflow.ExecuteActivity(ctx, ActivityReconcileWorkflows, req).Get(ctx, &res); err != nil {
				return ReconciliationResult{}, err
			}
		}
		p.Checked += res.Checked
		for _, kind := range domain.FindingKinds { // a slice: no map iteration in workflow code
			if n := res.Counts[kind]; n > 0 {
				p.Counts[kind] += n
			}
		}
		p.Sample = append(p.Sample, res.Sample[:min(len(res.Sample), max(0, room))]...)
		if p.Phase == "" {
			if res.LastID != "" {
				p.AfterID = res.LastID
			}
			if res.Done { // the read model is done: now the workflows it may not know as open
				p.Phase = PhaseRunningWorkflows
			}
			continue
		}
		p.PageToken = res.NextPageToken
		if res.Done {
			break
		}
	}
	finish := ReconciliationFinish{ReportID: p.ReportID, FinishedAt: workflow.Now(ctx).UTC(), Checked: p.Checked, Counts: p.Counts}
	if err := workflow.ExecuteActivity(ctx, ActivityFinishReconciliation, finish).Get(ctx, nil); err != nil {
		return ReconciliationResult{}, err
	}
	total := 0
	for _, kind := range domain.FindingKinds {
		total += p.Counts[kind]
	}
	return ReconciliationResult{ReportID: p.ReportID, StartedAt: p.StartedAt, FinishedAt: finish.FinishedAt, Checked: p.Checked,
		Findings: total, Counts: p.Counts, Sample: p.Sample, SampleTruncated: total > len(p.Sample)}, nil
}
