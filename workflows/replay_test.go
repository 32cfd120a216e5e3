package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/workflows"
)

// historyFiles are histories recorded from the real dev server by the e2e
// test TestRecordHistories (UPDATE_HISTORIES=1 rewrites them).
func historyFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories under testdata/histories")
	return files
}

// TestReplayRecordedHistories fails when a workflow change is incompatible
// with histories of the main paths: such a change needs workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	for _, file := range historyFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			replayer := sdkworker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(workflows.SubscriptionWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowType})
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, file))
		})
	}
}

// incompatibleSubscriptionWorkflow sleeps before recording the purchase: the
// kind of change that breaks running workflows.
func incompatibleSubscriptionWorkflow(ctx workflow.Context, in workflows.State) (domain.Subscription, error) {
	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return in.Subscription, err
	}
	return workflows.SubscriptionWorkflow(ctx, in)
}

// TestReplayDetectsIncompatibleChange proves the guard above can fail.
func TestReplayDetectsIncompatibleChange(t *testing.T) {
	file := historyFiles(t)[0]
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(raw), "EVENT_TYPE_MARKER_RECORDED"), "the history should record the purchase")
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(incompatibleSubscriptionWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowType})
	err = replayer.ReplayWorkflowHistoryFromJSONFile(nil, file)
	require.Error(t, err)
	require.Contains(t, strings.ToLower(err.Error()), "nondetermin")
}
