package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
)

// fakeReconciler stands in for activities.Reconciler: it pages over a fixed
// set of open subscriptions, each with its findings, and records every call.
type fakeReconciler struct {
	mu       sync.Mutex
	ids      []string
	findings map[string][]domain.Finding
	begun    []ReconciliationStart
	batches  []ReconcileBatchRequest
	finished []ReconciliationFinish
	// running holds the pages of the second pass (running workflows the
	// read model calls closed), each a list of findings; tokens are page numbers.
	running      [][]domain.Finding
	runningCalls []ReconcileWorkflowsRequest
}

func newFakeReconciler(n int, findingsOf func(i int, id string) []domain.Finding) *fakeReconciler {
	f := &fakeReconciler{findings: map[string][]domain.Finding{}}
	for i := range n {
		id := fmt.Sprintf("sub-%04d", i)
		f.ids = append(f.ids, id)
		f.findings[id] = findingsOf(i, id)
	}
	return f
}

func (f *fakeReconciler) begin(_ context.Context, in ReconciliationStart) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begun = append(f.begun, in)
	return nil
}

func (f *fakeReconciler) batch(_ context.Context, req ReconcileBatchRequest) (ReconcileBatchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, req)
	start := sort.SearchStrings(f.ids, req.AfterID)
	if start < len(f.ids) && f.ids[start] == req.AfterID {
		start++
	}
	end := min(start+req.Limit, len(f.ids))
	res := ReconcileBatchResult{Checked: end - start, Done: end-start < req.Limit, Counts: map[string]int{}}
	for _, id := range f.ids[start:end] {
		res.LastID = id
		for _, fd := range f.findings[id] {
			res.Counts[fd.Kind]++
			if len(res.Sample) < req.SampleRoom {
				res.Sample = append(res.Sample, fd)
			}
		}
	}
	return res, nil
}

func (f *fakeReconciler) runningWorkflows(_ context.Context, req ReconcileWorkflowsRequest) (ReconcileBatchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runningCalls = append(f.runningCalls, req)
	page := 0
	if len(req.PageToken) > 0 {
		page = int(req.PageToken[0])
	}
	res := ReconcileBatchResult{Counts: map[string]int{}, Done: page+1 >= len(f.running)}
	if !res.Done {
		res.NextPageToken = []byte{byte(page + 1)}
	}
	if page < len(f.running) {
		res.Checked = len(f.running[page])
		for _, fd := range f.running[page] {
			res.Counts[fd.Kind]++
			if len(res.Sample) < req.SampleRoom {
				res.Sample = append(res.Sample, fd)
			}
		}
	}
	return res, nil
}

func (f *fakeReconciler) finish(_ context.Context, in ReconciliationFinish) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished = append(f.finished, in)
	return nil
}

// env runs the reconciliation workflow with only the three report
// activities registered: a workflow that tried to repair anything (a
// SaveSubscription, say) would fail on an unregistered activity.
func (f *fakeReconciler) env(t *testing.T) (*testsuite.TestWorkflowEnvironment, *[]string) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterWorkflowWithOptions(ReconciliationWorkflow, workflow.RegisterOptions{Name: ReconciliationWorkflowType})
	env.RegisterActivityWithOptions(f.begin, activity.RegisterOptions{Name: ActivityBeginReconciliation})
	env.RegisterActivityWithOptions(f.batch, activity.RegisterOptions{Name: ActivityReconcileBatch})
	env.RegisterActivityWithOptions(f.runningWorkflows, activity.RegisterOptions{Name: ActivityReconcileWorkflows})
	env.RegisterActivityWithOptions(f.finish, activity.RegisterOptions{Name: ActivityFinishReconciliation})
	var called []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		called = append(called, info.ActivityType.Name)
	})
	return env, &called
}

func mismatch(id, kind string) domain.Finding {
	return domain.Finding{SubscriptionID: id, Kind: kind, Detail: kind + " of " + id}
}

// A run that finds disagreements reports them (counts, sample, report
// closed with the totals) and does nothing else: only the report's
// activities ran, in order.
func TestReconciliationReportsFindingsAndRepairsNothing(t *testing.T) {
	f := newFakeReconciler(250, func(i int, id string) []domain.Finding {
		switch {
		case i == 7:
			return []domain.Finding{mismatch(id, domain.FindingStatusMismatch), mismatch(id, domain.FindingChargeMissing)}
		case i == 120:
			return []domain.Finding{mismatch(id, domain.FindingLedgerBeyondTerm)}
		case i == 249:
			return []domain.Finding{mismatch(id, domain.FindingPendingOverdue)}
		}
		return nil
	})
	// The second pass finds a running workflow whose row says it ended.
	f.running = [][]domain.Finding{{mismatch("sub-closed-row", domain.FindingStatusMismatch)}}
	env, called := f.env(t)
	env.ExecuteWorkflow(ReconciliationWorkflowType, ReconciliationInput{PendingThreshold: time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ReconciliationResult
	require.NoError(t, env.GetWorkflowResult(&res))

	assert.Equal(t, 251, res.Checked)
	assert.Equal(t, 5, res.Findings)
	assert.Equal(t, map[string]int{domain.FindingStatusMismatch: 2, domain.FindingChargeMissing: 1,
		domain.FindingLedgerBeyondTerm: 1, domain.FindingPendingOverdue: 1}, res.Counts)
	require.Len(t, res.Sample, 5)
	assert.Equal(t, "sub-closed-row", res.Sample[4].SubscriptionID)
	assert.Equal(t, "sub-0007", res.Sample[0].SubscriptionID)
	assert.False(t, res.SampleTruncated)
	assert.NotEmpty(t, res.ReportID)

	assert.Equal(t, []string{ActivityBeginReconciliation, ActivityReconcileBatch, ActivityReconcileBatch, ActivityReconcileBatch,
		ActivityReconcileWorkflows, ActivityFinishReconciliation}, *called, "the report's activities and nothing else")
	require.Len(t, f.begun, 1)
	assert.Equal(t, res.ReportID, f.begun[0].ReportID)
	assert.Equal(t, time.Hour.String(), f.begun[0].PendingThreshold)
	require.Len(t, f.finished, 1)
	assert.Equal(t, ReconciliationFinish{ReportID: res.ReportID, FinishedAt: res.FinishedAt, Checked: 251, Counts: res.Counts}, f.finished[0])
	// Pages follow each other by id, every batch with the same threshold and report.
	assert.Equal(t, []string{"", "sub-0099", "sub-0199"}, []string{f.batches[0].AfterID, f.batches[1].AfterID, f.batches[2].AfterID})
	for _, b := range f.batches {
		assert.Equal(t, res.ReportID, b.ReportID)
		assert.Equal(t, time.Hour, b.PendingThreshold)
	}
}

// The result stays small however much is found: at most
// ReconciliationSampleLimit findings, the rest counted (and in the report).
func TestReconciliationResultKeepsASampleOfFindings(t *testing.T) {
	f := newFakeReconciler(300, func(_ int, id string) []domain.Finding {
		return []domain.Finding{mismatch(id, domain.FindingVersionMismatch)}
	})
	env, _ := f.env(t)
	env.ExecuteWorkflow(ReconciliationWorkflowType, ReconciliationInput{})
	require.NoError(t, env.GetWorkflowError())
	var res ReconciliationResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, 300, res.Findings)
	assert.Equal(t, 300, res.Counts[domain.FindingVersionMismatch])
	assert.Len(t, res.Sample, ReconciliationSampleLimit)
	assert.True(t, res.SampleTruncated)
	assert.Equal(t, 0, f.batches[len(f.batches)-1].SampleRoom, "a full sample asks for no more")
	assert.Equal(t, DefaultPendingThreshold, f.batches[0].PendingThreshold, "the default threshold")
}

// A reconciliation of many subscriptions continues as new after
// BatchesPerRun pages, carrying its cursor, totals and sample; the next run
// picks up where the last stopped, writes to the same report and does not
// open another.
func TestReconciliationContinuesAsNewBeyondItsBound(t *testing.T) {
	f := newFakeReconciler(45, func(i int, id string) []domain.Finding {
		if i%10 == 0 {
			return []domain.Finding{mismatch(id, domain.FindingQuantityMismatch)}
		}
		return nil
	})
	f.running = [][]domain.Finding{{}, {mismatch("sub-x", domain.FindingStatusMismatch)}, {}}
	in := ReconciliationInput{PendingThreshold: time.Hour, BatchSize: 10, BatchesPerRun: 2}
	var runs int
	for runs = 1; runs < 10; runs++ {
		env, _ := f.env(t)
		env.ExecuteWorkflow(ReconciliationWorkflowType, in)
		require.True(t, env.IsWorkflowCompleted())
		err := env.GetWorkflowError()
		if err == nil {
			var res ReconciliationResult
			require.NoError(t, env.GetWorkflowResult(&res))
			assert.Equal(t, 46, res.Checked)
			assert.Equal(t, 6, res.Findings)
			assert.Len(t, res.Sample, 6)
			assert.Equal(t, f.begun[0].ReportID, res.ReportID)
			break
		}
		var can *workflow.ContinueAsNewError
		require.True(t, errors.As(err, &can), "run %d: %v", runs, err)
		assert.Equal(t, ReconciliationWorkflowType, can.WorkflowType.Name)
		var next ReconciliationInput
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
		require.NotNil(t, next.Progress)
		assert.Equal(t, runs, next.Progress.Runs)
		switch runs {
		case 1, 2: // the read model's pages
			assert.Empty(t, next.Progress.Phase)
			assert.Equal(t, runs*20, next.Progress.Checked, "run %d checked two pages of ten", runs)
			assert.Equal(t, fmt.Sprintf("sub-%04d", runs*20-1), next.Progress.AfterID)
			assert.Equal(t, 2*runs, next.Progress.Counts[domain.FindingQuantityMismatch])
		case 3: // the last read-model page, then the first page of running workflows
			assert.Equal(t, PhaseRunningWorkflows, next.Progress.Phase)
			assert.Equal(t, []byte{1}, next.Progress.PageToken, "the next run continues the visibility pages")
			assert.Equal(t, 45, next.Progress.Checked)
		}
		assert.Empty(t, f.finished, "nothing finished before the last run")
		in = next
	}
	assert.Equal(t, 4, runs, "5 read-model pages and 3 pages of running workflows, 2 pages a run: four runs")
	assert.Len(t, f.begun, 1, "one report across runs")
	assert.Len(t, f.batches, 5)
	require.Len(t, f.runningCalls, 3)
	assert.Nil(t, f.runningCalls[0].PageToken)
	assert.Equal(t, []byte{2}, f.runningCalls[2].PageToken)
	require.Len(t, f.finished, 1)
	assert.Equal(t, 46, f.finished[0].Checked)
}
