package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
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

// currentShape is the prefix of the histories recorded by the current code
// (historyVersion in e2e/history_test.go).
const currentShape = "v3"

func readHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	require.NoError(t, err)
	return h
}

// TestCurrentHistoriesRecordNoVersionMarker: a subscription started by the
// current code carries its code paths in its input (workflows.NewState), so
// its runs ask no GetVersion: no MarkerRecorded, no TemporalChangeVersion
// upsert, and purchase→active is 38 events (BENCHMARKS.md).
func TestCurrentHistoriesRecordNoVersionMarker(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", currentShape+"_*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no %s histories: record them (e2e TestRecordHistories, UPDATE_HISTORIES=1)", currentShape)
	for _, file := range files {
		events := readHistory(t, file).GetEvents()
		for _, e := range events {
			require.NotEqual(t, enumspb.EVENT_TYPE_MARKER_RECORDED, e.GetEventType(), "%s: event %d", file, e.GetEventId())
			if sa := e.GetUpsertWorkflowSearchAttributesEventAttributes(); sa != nil {
				require.NotContains(t, sa.GetSearchAttributes().GetIndexedFields(), "TemporalChangeVersion", "%s: event %d", file, e.GetEventId())
			}
		}
	}
	purchase := readHistory(t, filepath.Join("testdata", "histories", currentShape+"_purchase_to_active_run1.json"))
	require.Len(t, purchase.GetEvents(), 38)
}

// workerBeforeCarriedPaths is the workflow as a worker from before the
// carried code paths runs it: it ignores them and asks GetVersion.
func workerBeforeCarriedPaths(ctx workflow.Context, in workflows.State) (domain.Subscription, error) {
	in.SavesDurably, in.RenewsInPlace = false, false
	return workflows.SubscriptionWorkflow(ctx, in)
}

// TestWorkerBeforeCarriedPathsCannotReplayNewRuns is the deploy rule: a
// worker from before the carried paths, replaying a run started with them,
// finds no version marker, takes the write path of DefaultVersion (a local
// activity) and fails on nondeterminism. Every worker must run the current
// code before a subscription is sold (or a run continues as new) under it.
// Histories recorded before (v2) replay on such a worker, as they did.
func TestWorkerBeforeCarriedPathsCannotReplayNewRuns(t *testing.T) {
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workerBeforeCarriedPaths, workflow.RegisterOptions{Name: workflows.WorkflowType})
	require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", "histories", "v2_purchase_to_active_run1.json")))
	err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", "histories", currentShape+"_purchase_to_active_run1.json"))
	require.Error(t, err)
	// The SDK's nondeterminism error: the local activity's completion is
	// looked for where the history has the activity's.
	require.Contains(t, err.Error(), "TMPRL1100")
}
