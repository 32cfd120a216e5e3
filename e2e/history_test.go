package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// historyVersion prefixes the files TestRecordHistories writes: the shape of
// the workflow code that records them. v0: before durableSave; v1: durable
// saves, one term per run; v2: renewals in place (renewInPlace); v3: the
// code paths carried in the input (State.SavesDurably, State.RenewsInPlace),
// so no run asks GetVersion: no MarkerRecorded, no TemporalChangeVersion
// upsert. Files of earlier shapes stay in testdata and keep being replayed:
// they are the histories of runs started under that code.
const historyVersion = "v3"

// TestRecordHistories runs the main paths on the real server, exports every
// run's history and replays it against the current workflow code. With
// UPDATE_HISTORIES=1 it also writes workflows/testdata/histories/<historyVersion>_*,
// which the workflows package replays on every test run.
func TestRecordHistories(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{})
	paths := map[string]string{}

	active := w.buy(t, "analytics", "annual", 2)
	w.fulfill(t, active, 2)
	paths["purchase_to_active"] = active.Str("id")

	expired := w.buy(t, "analytics", "quick-expiry", 1)
	w.waitStatus(t, expired.Str("id"), "fulfillment_expired", 15*time.Second)
	paths["fulfillment_expired"] = expired.Str("id")

	cancelled := w.buy(t, "analytics", "annual", 3)
	w.fulfill(t, cancelled, 3)
	r := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+cancelled.Str("id")+"/cancel", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	paths["cancel_with_refund"] = cancelled.Str("id")

	// Changes keep arriving across two renewals, so the run renews in place
	// with Updates in flight and keeps answering in the new terms.
	renewing := w.buy(t, "analytics", "short-term", 1)
	w.fulfill(t, renewing, 1)
	i := 0
	testenv.WaitFor(t, 30*time.Second, "two renewals", func() bool {
		i++
		r := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+renewing.Str("id"), map[string]any{"nickname": fmt.Sprintf("n%d", i)})
		n, _ := r.Body["term_number"].(float64)
		return n >= 3
	})
	paths["renewal_with_updates"] = renewing.Str("id")

	patched := w.buy(t, "analytics", "annual", 2)
	w.fulfill(t, patched, 2)
	for _, body := range []map[string]any{
		{"nickname": "HQ", "reseller_partner_id": "northwind"},
		{"quantity": 5},              // proration up
		{"quantity": 3},              // proration down, inside the window
		{"auto_renew": false},        // no proration
		{"nickname": "HQ"},           // a no-op: refused before it costs history
		{"reseller_partner_id": nil}, // cleared
	} {
		r := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+patched.Str("id"), body)
		require.Equal(t, http.StatusOK, r.Status, r.String())
	}
	paths["patch_and_proration"] = patched.Str("id")

	parent := w.buy(t, "analytics", "annual", 1)
	app := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "insights-app", "plan_id": "monthly",
		"quantity": 1, "parent_subscription_id": parent.Str("id")})
	require.Equal(t, http.StatusCreated, app.Status, app.String())
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+parent.Str("id")+"/deactivate", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	w.waitStatus(t, app.Str("id"), "deactivated", 15*time.Second)
	paths["link_and_deactivate_parent"] = parent.Str("id")
	paths["deactivated_by_parent"] = app.Str("id")

	// A plan change that takes effect when its veto window ends (a timer
	// before the term end), then one the publisher refuses (the veto timer
	// cancelled).
	changing := w.buy(t, "analytics", "pc-standard", 2)
	w.fulfill(t, changing, 2)
	changingID := changing.Str("id")
	r = planChange(w.admin, changingID, "pc-premium", "history-upgrade")
	require.Equal(t, http.StatusAccepted, r.Status, r.String())
	testenv.WaitFor(t, 30*time.Second, "the upgrade to take effect", func() bool {
		return w.admin.Do(http.MethodGet, "/v1/subscriptions/"+changingID, nil).Str("plan_id") == "pc-premium"
	})
	r = planChange(w.admin, changingID, "pc-standard", "history-downgrade")
	require.Equal(t, http.StatusAccepted, r.Status, r.String())
	r = w.contoso.Send("/v1/publisher/subscriptions/"+changingID+"/plan-change/refuse", map[string]any{"reason": "history"})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	paths["plan_change"] = changingID

	c := w.Temporal.Client(t)
	out := t.TempDir()
	if os.Getenv("UPDATE_HISTORIES") != "" {
		out = filepath.Join(testenv.RepoRoot(), "workflows", "testdata", "histories")
	}
	for name, id := range paths {
		runs := runsOf(t, c, id)
		if name == "renewal_with_updates" {
			require.Len(t, runs, 1, "the subscription renewed in place, in one run")
		}
		for i, run := range runs {
			file := filepath.Join(out, fmt.Sprintf("%s_%s_run%d.json", historyVersion, name, i+1))
			events := writeHistory(t, c, workflows.WorkflowID(id), run, file)
			requireNoVersionMarker(t, file, events)
			if name == "purchase_to_active" {
				require.Len(t, events, 38, "%s: purchase→active is 38 events (BENCHMARKS.md)", file)
			}
			replayer := sdkworker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(workflows.SubscriptionWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowType})
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, file), "replay %s", file)
		}
	}
}

// runsOf lists the run ids of a subscription's workflow, oldest first.
func runsOf(t *testing.T, c client.Client, id string) []string {
	t.Helper()
	var runs []string
	testenv.WaitFor(t, 15*time.Second, "visibility of "+id, func() bool {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", workflows.WorkflowID(id)),
		})
		if err != nil || len(resp.Executions) == 0 {
			return false
		}
		runs = runs[:0]
		for i := len(resp.Executions) - 1; i >= 0; i-- {
			runs = append(runs, resp.Executions[i].Execution.RunId)
		}
		return true
	})
	return runs
}

// requireNoVersionMarker: a subscription started by the current code carries
// its code paths in its input, so no run asks GetVersion. (The workflow
// records no other marker: it has no local activity nor side effect.)
func requireNoVersionMarker(t *testing.T, file string, events []*historypb.HistoryEvent) {
	t.Helper()
	for _, e := range events {
		require.NotEqual(t, enumspb.EVENT_TYPE_MARKER_RECORDED, e.GetEventType(), "%s: event %d", file, e.GetEventId())
		if sa := e.GetUpsertWorkflowSearchAttributesEventAttributes(); sa != nil {
			require.NotContains(t, sa.GetSearchAttributes().GetIndexedFields(), "TemporalChangeVersion", "%s: event %d", file, e.GetEventId())
		}
	}
}

func writeHistory(t *testing.T, c client.Client, workflowID, runID, file string) []*historypb.HistoryEvent {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	history := &historypb.History{}
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		history.Events = append(history.Events, e)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(history)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, raw, 0o644))
	return history.Events
}
