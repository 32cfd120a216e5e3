package workflows_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/workflows"
)

// reconciliationHistory was recorded from the real dev server by the e2e test
// TestReconciliationFindsMismatchesAndRepairsNothing (UPDATE_HISTORIES=1).
var reconciliationHistory = filepath.Join("testdata", "reconciliation", "findings_run1.json")

func TestReplayRecordedReconciliation(t *testing.T) {
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.ReconciliationWorkflow, workflow.RegisterOptions{Name: workflows.ReconciliationWorkflowType})
	require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, reconciliationHistory))
}

// A reconciliation that waits before opening its report is the kind of
// change that breaks running reconciliations: the replay must say so.
func TestReplayOfReconciliationDetectsIncompatibleChange(t *testing.T) {
	incompatible := func(ctx workflow.Context, in workflows.ReconciliationInput) (workflows.ReconciliationResult, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return workflows.ReconciliationResult{}, err
		}
		return workflows.ReconciliationWorkflow(ctx, in)
	}
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(incompatible, workflow.RegisterOptions{Name: workflows.ReconciliationWorkflowType})
	err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, reconciliationHistory)
	require.Error(t, err)
	require.Contains(t, err.Error(), "TMPRL1100", "the SDK's nondeterminism error") // here: the activity is where a timer should be
}
