package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The reconciliation metrics show the latest report as the source has it at
// scrape time, every kind included; without a report (or a source that
// fails) they are absent rather than zero.
func TestReconciliationMetricsFollowTheLatestReport(t *testing.T) {
	r := New(nil)
	defer r.Close()
	var (
		summary ReconciliationSummary
		ok      bool
		err     error
	)
	r.WatchReconciliation([]string{"charge_missing", "status_mismatch"}, func(context.Context) (ReconciliationSummary, bool, error) {
		return summary, ok, err
	})

	assert.NotContains(t, scrape(t, r), ReconciliationFindings, "no report yet")

	finished := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	summary, ok = ReconciliationSummary{FinishedAt: finished, Checked: 12, Counts: map[string]int{"charge_missing": 2}}, true
	body := scrape(t, r)
	assert.Contains(t, body, `fulfillment_reconciliation_findings{kind="charge_missing"} 2`+"\n")
	assert.Contains(t, body, `fulfillment_reconciliation_findings{kind="status_mismatch"} 0`+"\n")
	assert.Contains(t, body, "fulfillment_reconciliation_checked_subscriptions 12\n")
	assert.Contains(t, body, "fulfillment_reconciliation_last_run_timestamp_seconds 1.893456e+09\n")

	summary.Counts = map[string]int{}
	assert.Contains(t, scrape(t, r), `fulfillment_reconciliation_findings{kind="charge_missing"} 0`+"\n", "a newer report")

	err = errors.New("database down")
	assert.NotContains(t, scrape(t, r), ReconciliationFindings, "an unreadable report is absent, not zero")
}
