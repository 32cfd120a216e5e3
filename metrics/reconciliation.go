package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reconciliation metric names.
const (
	ReconciliationFindings = "fulfillment_reconciliation_findings"
	ReconciliationLastRun  = "fulfillment_reconciliation_last_run_timestamp_seconds"
	ReconciliationChecked  = "fulfillment_reconciliation_checked_subscriptions"
)

// ReconciliationSummary is the latest completed reconciliation report.
type ReconciliationSummary struct {
	FinishedAt time.Time
	Checked    int
	Counts     map[string]int
}

// LatestReconciliation reads the latest completed report; ok is false when
// there is none yet.
type LatestReconciliation func(ctx context.Context) (s ReconciliationSummary, ok bool, err error)

// WatchReconciliation exports the latest completed reconciliation report,
// read from PostgreSQL at each scrape: every process (api, any worker) shows
// the same numbers, whichever worker ran the reconciliation and however
// often processes restart. Before the first report, or while PostgreSQL
// does not answer, the metrics are absent (alert on absent() as on values).
func (r *Registry) WatchReconciliation(kinds []string, latest LatestReconciliation) {
	r.reg.MustRegister(&reconciliationCollector{kinds: kinds, latest: latest,
		findings: prometheus.NewDesc(ReconciliationFindings,
			"Findings of the latest completed reconciliation, by kind (workflow vs read model vs ledger; pending too long).", []string{"kind"}, nil),
		lastRun: prometheus.NewDesc(ReconciliationLastRun,
			"When the latest completed reconciliation finished (Unix seconds).", nil, nil),
		checked: prometheus.NewDesc(ReconciliationChecked,
			"Open subscriptions the latest completed reconciliation checked.", nil, nil),
	})
}

type reconciliationCollector struct {
	kinds                      []string
	latest                     LatestReconciliation
	findings, lastRun, checked *prometheus.Desc
}

func (c *reconciliationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.findings
	ch <- c.lastRun
	ch <- c.checked
}

func (c *reconciliationCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, ok, err := c.latest(ctx)
	if err != nil || !ok {
		return
	}
	for _, kind := range c.kinds {
		ch <- prometheus.MustNewConstMetric(c.findings, prometheus.GaugeValue, float64(s.Counts[kind]), kind)
	}
	ch <- prometheus.MustNewConstMetric(c.lastRun, prometheus.GaugeValue, float64(s.FinishedAt.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(c.checked, prometheus.GaugeValue, float64(s.Checked))
}
