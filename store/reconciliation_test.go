package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

// Open subscriptions page by id and leave terminal ones out; the ledger of a
// page comes in one query, per subscription.
func TestOpenSubscriptionsPageByIDWithTheirLedger(t *testing.T) {
	f := seeded(t)
	for _, id := range []string{"sub-c", "sub-a", "sub-e", "sub-b", "sub-d"} {
		f.save(t, purchase(subscription(id)), hash("code-"+id))
	}
	f.save(t, activation(subscription("sub-b")), nil)
	f.exec(t, `UPDATE subscriptions SET status = 'cancelled' WHERE id = 'sub-d'`)

	page, err := f.st.OpenSubscriptions(f.ctx, "", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"sub-a", "sub-b"}, ids(page))
	page, err = f.st.OpenSubscriptions(f.ctx, "sub-b", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"sub-c", "sub-e"}, ids(page), "sub-d is cancelled")
	page, err = f.st.OpenSubscriptions(f.ctx, "sub-e", 2)
	require.NoError(t, err)
	assert.Empty(t, page)

	statuses, err := f.st.SubscriptionStatuses(f.ctx, []string{"sub-b", "sub-d", "sub-unknown"})
	require.NoError(t, err)
	assert.Equal(t, map[string]domain.Status{"sub-b": domain.StatusActive, "sub-d": domain.StatusCancelled}, statuses,
		"an id without a row is absent")

	ledger, err := f.st.LedgerOf(f.ctx, []string{"sub-a", "sub-b"})
	require.NoError(t, err)
	assert.Empty(t, ledger["sub-a"])
	require.Len(t, ledger["sub-b"], 1)
	assert.Equal(t, chargeID("sub-b", 1), ledger["sub-b"][0].ID)
}

// A report is opened once, its batches' findings are replaced (never
// duplicated) when a batch runs again, and the latest completed report is
// served with its findings paged; reports past retention are dropped.
func TestReconciliationReportLifecycle(t *testing.T) {
	f := newFixture(t)
	_, err := f.st.LatestReconciliation(f.ctx)
	require.ErrorIs(t, err, store.ErrNotFound, "no report yet")

	old := store.ReconciliationReport{ID: "run-old", WorkflowID: "reconciliation/q-1", StartedAt: t0.Add(-100 * 24 * time.Hour), PendingThreshold: "24h0m0s"}
	require.NoError(t, f.st.BeginReconciliation(f.ctx, old))
	require.NoError(t, f.st.FinishReconciliation(f.ctx, old.ID, old.StartedAt.Add(time.Minute), 3, map[string]int{}))

	r := store.ReconciliationReport{ID: "run-1", WorkflowID: "reconciliation/q-2", StartedAt: t0, PendingThreshold: "24h0m0s"}
	require.NoError(t, f.st.BeginReconciliation(f.ctx, r))
	require.NoError(t, f.st.BeginReconciliation(f.ctx, r), "a retried begin")
	assert.Equal(t, 2, f.count(t, "reconciliation_reports"))

	mm := func(sub, kind string, term int) domain.Finding {
		return domain.Finding{SubscriptionID: sub, Kind: kind, TermNumber: term, Detail: kind}
	}
	batch := []string{"sub-1", "sub-2", "sub-3"}
	first := []domain.Finding{mm("sub-1", domain.FindingStatusMismatch, 0), mm("sub-2", domain.FindingChargeMissing, 1), mm("sub-2", domain.FindingChargeMissing, 2)}
	require.NoError(t, f.st.SaveFindings(f.ctx, r.ID, batch, first))
	retried := []domain.Finding{mm("sub-2", domain.FindingChargeMissing, 1), mm("sub-3", domain.FindingPendingOverdue, 0)}
	require.NoError(t, f.st.SaveFindings(f.ctx, r.ID, batch, retried))
	assert.Equal(t, 2, f.count(t, "reconciliation_findings WHERE report_id = 'run-1'"), "the retried batch's findings replace the first attempt's")
	require.NoError(t, f.st.SaveFindings(f.ctx, r.ID, []string{"sub-4"}, []domain.Finding{mm("sub-4", domain.FindingVersionMismatch, 0)}))

	latest, err := f.st.LatestReconciliation(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, "run-old", latest.ID, "a running report is not the latest completed one")

	finished := t0.Add(2 * time.Minute)
	counts := map[string]int{domain.FindingChargeMissing: 1, domain.FindingPendingOverdue: 1, domain.FindingVersionMismatch: 1}
	require.NoError(t, f.st.FinishReconciliation(f.ctx, r.ID, finished, 4, counts))
	latest, err = f.st.LatestReconciliation(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, store.ReconciliationReport{ID: "run-1", WorkflowID: "reconciliation/q-2", StartedAt: t0, FinishedAt: &finished,
		Status: store.ReportCompleted, PendingThreshold: "24h0m0s", Checked: 4, Counts: counts}, latest)
	assert.Equal(t, 0, f.count(t, "reconciliation_reports WHERE id = 'run-old'"), "reports older than 90 days are dropped")

	page, next, err := f.st.ReconciliationFindings(f.ctx, r.ID, nil, 2)
	require.NoError(t, err)
	assert.Equal(t, []domain.Finding{mm("sub-2", domain.FindingChargeMissing, 1), mm("sub-3", domain.FindingPendingOverdue, 0)}, page)
	require.NotNil(t, next)
	page, next, err = f.st.ReconciliationFindings(f.ctx, r.ID, next, 2)
	require.NoError(t, err)
	assert.Equal(t, []domain.Finding{mm("sub-4", domain.FindingVersionMismatch, 0)}, page)
	assert.Nil(t, next)

	require.ErrorIs(t, f.st.FinishReconciliation(f.ctx, "no-such-run", finished, 0, nil), store.ErrNotFound)
}
