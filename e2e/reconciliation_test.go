package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// OpsKey is the OPS_API_KEY of the stacks that read reconciliation reports.
const OpsKey = "e2e_ops_key_reconciliation_0123456789"

// opsEnv configures a stack for reconciliation: the ops key, a pending
// threshold so short that every pending subscription is overdue, and a
// schedule that never fires on its own during a test (intervals are aligned
// to the epoch: 24 h would fire at midnight UTC), so every report is one the
// test triggered.
var opsEnv = []string{"OPS_API_KEY=" + OpsKey, "RECONCILE_PENDING_THRESHOLD=1ms", "RECONCILE_EVERY=87600h"}

// latestReportID is the id of the latest completed reconciliation report ("" for none).
func (w *world) latestReportID(t *testing.T) string {
	t.Helper()
	var ids []string
	require.NoError(t, w.Store.DB().Select(&ids, `SELECT id FROM reconciliation_reports WHERE status = 'completed' ORDER BY finished_at DESC LIMIT 1`))
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// reconcile runs `fulfillment reconcile` (the schedule, triggered now) and
// waits for the report it produces.
func (w *world) reconcile(t *testing.T) string {
	t.Helper()
	before := w.latestReportID(t)
	cmd := exec.Command(testenv.Binary(t), "reconcile")
	cmd.Env = w.Env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "fulfillment reconcile: %s", out)
	var id string
	testenv.WaitFor(t, 90*time.Second, "a new reconciliation report", func() bool {
		id = w.latestReportID(t)
		return id != "" && id != before
	})
	return id
}

// dump renders rows of a query as JSON, to compare data before and after.
func (w *world) dump(t *testing.T, query string, args ...any) string {
	t.Helper()
	var rows []string
	require.NoError(t, w.Store.DB().Select(&rows, `SELECT row_to_json(x)::text FROM (`+query+`) x`, args...))
	return strings.Join(rows, "\n")
}

// The reconciliation finds what was broken behind the workflows' backs (a
// charge row deleted, a read-model status rewritten to another open one and
// one rewritten to a terminal one) and a subscription left
// waiting on its publisher, reports them over the ops endpoint, in the
// metrics and as the workflow's result, and changes nothing.
func TestReconciliationFindsMismatchesAndRepairsNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Env: opsEnv})
	ops := w.Partner(OpsKey) // a bearer like any other

	noReport := ops.Do(http.MethodGet, "/v1/ops/reconciliation/latest", nil)
	require.Equal(t, http.StatusNotFound, noReport.Status, noReport.String())
	forbidden := w.admin.Do(http.MethodGet, "/v1/ops/reconciliation/latest", nil)
	require.Equal(t, http.StatusForbidden, forbidden.Status, forbidden.String())
	assert.Equal(t, "forbidden_role", forbidden.Str("code"))
	anonymous := w.Do(http.MethodGet, "/v1/ops/reconciliation/latest", nil)
	require.Equal(t, http.StatusUnauthorized, anonymous.Status, anonymous.String())

	uncharged := w.buy(t, "analytics", "annual", 2)
	w.fulfill(t, uncharged, 2)
	rewritten := w.buy(t, "analytics", "annual", 3)
	w.fulfill(t, rewritten, 3)
	healthy := w.buy(t, "analytics", "annual", 1)
	w.fulfill(t, healthy, 1)
	closedRow := w.buy(t, "analytics", "annual", 4) // its row will say cancelled while its workflow runs
	w.fulfill(t, closedRow, 4)
	waiting := w.buy(t, "analytics", "annual", 1) // the publisher never calls back
	require.Equal(t, 1, w.ledgerRows(t, uncharged.Str("id"), domain.LedgerCharge))

	db := w.Store.DB()
	_, err := db.Exec(`DELETE FROM ledger WHERE subscription_id = $1 AND kind = 'charge'`, uncharged.Str("id"))
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE subscriptions SET status = 'pending_fulfillment' WHERE id = $1`, rewritten.Str("id"))
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE subscriptions SET status = 'cancelled' WHERE id = $1`, closedRow.Str("id"))
	require.NoError(t, err)
	const subscriptionsQuery = `SELECT * FROM subscriptions ORDER BY id`
	const ledgerQuery = `SELECT * FROM ledger ORDER BY id`
	const eventsQuery = `SELECT id, dedup_key, type FROM events ORDER BY id`
	subsBefore, ledgerBefore, eventsBefore := w.dump(t, subscriptionsQuery), w.dump(t, ledgerQuery), w.dump(t, eventsQuery)
	statesBefore := map[string]domain.Subscription{}
	for _, r := range []testenv.Response{uncharged, rewritten, healthy, waiting, closedRow} {
		statesBefore[r.Str("id")] = w.workflowState(t, r.Str("id"))
	}

	reportID := w.reconcile(t)

	report := ops.Do(http.MethodGet, "/v1/ops/reconciliation/latest", nil)
	require.Equal(t, http.StatusOK, report.Status, report.String())
	assert.Equal(t, reportID, report.Str("id"))
	assert.Equal(t, "completed", report.Str("status"))
	assert.EqualValues(t, 5, report.Body["checked"], "four open rows (the rewritten one reads pending), and the running workflow whose row reads cancelled")
	counts := map[string]int{}
	for k, v := range report.Body["counts"].(map[string]any) {
		counts[k] = int(v.(float64))
	}
	want := map[string]int{}
	for _, k := range domain.FindingKinds {
		want[k] = 0
	}
	want[domain.FindingChargeMissing] = 1
	want[domain.FindingStatusMismatch] = 2
	want[domain.FindingPendingOverdue] = 1
	assert.Equal(t, want, counts, report.String())
	assert.EqualValues(t, 4, report.Body["findings_total"])
	found := map[string]string{} // subscription → kind
	for _, f := range report.Body["findings"].([]any) {
		f := f.(map[string]any)
		found[f["subscription_id"].(string)] = f["kind"].(string)
		if f["kind"] == domain.FindingStatusMismatch {
			assert.Equal(t, "active", f["workflow_value"])
			want := map[string]string{rewritten.Str("id"): "pending_fulfillment", closedRow.Str("id"): "cancelled"}[f["subscription_id"].(string)]
			assert.Equal(t, want, f["read_model_value"])
		}
		if f["kind"] == domain.FindingChargeMissing {
			assert.EqualValues(t, 1, f["term_number"])
		}
	}
	assert.Equal(t, map[string]string{
		uncharged.Str("id"): domain.FindingChargeMissing,
		rewritten.Str("id"): domain.FindingStatusMismatch,
		closedRow.Str("id"): domain.FindingStatusMismatch,
		waiting.Str("id"):   domain.FindingPendingOverdue,
	}, found)

	// Paged one finding at a time, the same four.
	var paged []string
	cursor := ""
	for range 5 {
		path := "/v1/ops/reconciliation/latest?limit=1"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		page := ops.Do(http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, page.Status, page.String())
		for _, f := range page.Body["findings"].([]any) {
			paged = append(paged, f.(map[string]any)["kind"].(string))
		}
		cursor, _ = page.Body["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	assert.Len(t, paged, 4)

	// Nothing was repaired: rows and workflows are as the test left them.
	assert.Equal(t, subsBefore, w.dump(t, subscriptionsQuery), "read model untouched")
	assert.Equal(t, ledgerBefore, w.dump(t, ledgerQuery), "ledger untouched")
	assert.Equal(t, eventsBefore, w.dump(t, eventsQuery), "timeline untouched")
	assert.Zero(t, w.ledgerRows(t, uncharged.Str("id"), domain.LedgerCharge), "the deleted charge was not written again")
	for id, before := range statesBefore {
		assert.Equal(t, before, w.workflowState(t, id), "workflow state of %s", id)
	}

	// The metrics show the same counts.
	var metrics string
	testenv.WaitFor(t, 15*time.Second, "reconciliation metrics on the api", func() bool {
		metrics = opsScrape(w.BaseURL + "/metrics")
		return strings.Contains(metrics, "fulfillment_reconciliation_last_run_timestamp_seconds")
	})
	for _, k := range domain.FindingKinds {
		assert.Contains(t, metrics, fmt.Sprintf("fulfillment_reconciliation_findings{kind=%q} %d\n", k, want[k]))
	}
	assert.Contains(t, metrics, "fulfillment_reconciliation_checked_subscriptions 5\n")

	// The workflow's result (what the Temporal UI shows) carries the counts and the findings.
	tc := w.Temporal.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var workflowID string
	require.NoError(t, db.Get(&workflowID, `SELECT workflow_id FROM reconciliation_reports WHERE id = $1`, reportID))
	assert.True(t, strings.HasPrefix(workflowID, "reconciliation/"), workflowID)
	var result workflows.ReconciliationResult
	require.NoError(t, tc.GetWorkflow(ctx, workflowID, reportID).Get(ctx, &result))
	assert.Equal(t, reportID, result.ReportID)
	assert.Equal(t, 4, result.Findings)
	assert.Equal(t, 5, result.Checked)
	assert.Len(t, result.Sample, 4)
	raw, _ := json.Marshal(result)
	assert.Less(t, len(raw), 4096, "the result stays small")

	// Its history replays against the current code; UPDATE_HISTORIES=1 keeps
	// it for the workflows package's replay test.
	file := filepath.Join(t.TempDir(), "reconciliation.json")
	if os.Getenv("UPDATE_HISTORIES") != "" {
		file = filepath.Join(testenv.RepoRoot(), "workflows", "testdata", "reconciliation", "findings_run1.json")
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
	}
	writeHistory(t, tc, workflowID, reportID, file)
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.ReconciliationWorkflow, workflow.RegisterOptions{Name: workflows.ReconciliationWorkflowType})
	require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, file))
}
