package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/partnerhub/fulfillment/domain"
)

// ReconciliationReport is the summary of one reconciliation run.
type ReconciliationReport struct {
	ID               string         `json:"id" db:"id"`
	WorkflowID       string         `json:"workflow_id" db:"workflow_id"`
	StartedAt        time.Time      `json:"started_at" db:"started_at"`
	FinishedAt       *time.Time     `json:"finished_at" db:"finished_at"`
	Status           string         `json:"status" db:"status"`
	PendingThreshold string         `json:"pending_threshold" db:"pending_threshold"`
	Checked          int            `json:"checked" db:"checked"`
	Counts           map[string]int `json:"counts" db:"-"`
}

// Report statuses.
const (
	ReportRunning   = "running"
	ReportCompleted = "completed"
)

// reportRetention is how long completed reports are kept.
const reportRetention = 90 * 24 * time.Hour

// OpenSubscriptions pages the read model's subscriptions that are not in a
// terminal status, by id (a stable order however rows change meanwhile).
func (s *Store) OpenSubscriptions(ctx context.Context, afterID string, limit int) ([]domain.Subscription, error) {
	terminal := pq.StringArray{}
	for _, st := range domain.TabStatuses(domain.TabInactive) {
		terminal = append(terminal, string(st))
	}
	var rows []subscriptionRow
	// The primary key's order (the database's collation), so cursor and index agree.
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT seq, `+subscriptionColumns+` FROM subscriptions
		WHERE id > $1 AND status <> ALL($2)
		ORDER BY id LIMIT $3`, afterID, terminal, limit); err != nil {
		return nil, fmt.Errorf("list open subscriptions: %w", err)
	}
	subs := make([]domain.Subscription, 0, len(rows))
	for _, r := range rows {
		subs = append(subs, r.subscription())
	}
	return subs, nil
}

// SubscriptionStatuses reads the read model's status of each id it holds.
func (s *Store) SubscriptionStatuses(ctx context.Context, ids []string) (map[string]domain.Status, error) {
	var rows []struct {
		ID     string        `db:"id"`
		Status domain.Status `db:"status"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, status FROM subscriptions WHERE id = ANY($1)`, pq.StringArray(ids)); err != nil {
		return nil, fmt.Errorf("read statuses of %d subscriptions: %w", len(ids), err)
	}
	out := make(map[string]domain.Status, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Status
	}
	return out, nil
}

// LedgerOf reads the ledger rows of several subscriptions, by subscription.
func (s *Store) LedgerOf(ctx context.Context, subscriptionIDs []string) (map[string][]domain.LedgerEntry, error) {
	var rows []domain.LedgerEntry
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT id, subscription_id, term_number, kind, amount_minor, currency, period_start, period_end, created_at
		FROM ledger WHERE subscription_id = ANY($1) ORDER BY subscription_id, created_at, id`,
		pq.StringArray(subscriptionIDs)); err != nil {
		return nil, fmt.Errorf("read ledger of %d subscriptions: %w", len(subscriptionIDs), err)
	}
	out := make(map[string][]domain.LedgerEntry, len(subscriptionIDs))
	for _, r := range rows {
		out[r.SubscriptionID] = append(out[r.SubscriptionID], r)
	}
	return out, nil
}

// BeginReconciliation records a running report; a second call with the same
// id (a retried activity) changes nothing.
func (s *Store) BeginReconciliation(ctx context.Context, r ReconciliationReport) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO reconciliation_reports (id, workflow_id, started_at, status, pending_threshold)
		VALUES ($1, $2, $3, 'running', $4) ON CONFLICT (id) DO NOTHING`,
		r.ID, r.WorkflowID, r.StartedAt, r.PendingThreshold)
	if err != nil {
		return fmt.Errorf("begin reconciliation report %s: %w", r.ID, err)
	}
	return nil
}

// SaveFindings replaces the findings of a batch of subscriptions in a report:
// a retried batch leaves exactly what its last attempt found.
func (s *Store) SaveFindings(ctx context.Context, reportID string, subscriptionIDs []string, findings []domain.Finding) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM reconciliation_findings WHERE report_id = $1 AND subscription_id = ANY($2)`,
			reportID, pq.StringArray(subscriptionIDs)); err != nil {
			return fmt.Errorf("clear findings of report %s: %w", reportID, err)
		}
		for _, f := range findings {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO reconciliation_findings (report_id, subscription_id, kind, term_number, detail, workflow_value, read_model_value)
				VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING`,
				reportID, f.SubscriptionID, f.Kind, f.TermNumber, f.Detail, f.WorkflowValue, f.ReadModelValue); err != nil {
				return fmt.Errorf("save finding %s of %s: %w", f.Kind, f.SubscriptionID, err)
			}
		}
		return nil
	})
}

// FinishReconciliation completes a report with its totals and forgets
// reports completed more than 90 days earlier.
func (s *Store) FinishReconciliation(ctx context.Context, reportID string, finishedAt time.Time, checked int, counts map[string]int) error {
	raw, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE reconciliation_reports SET status = 'completed', finished_at = $2, checked = $3, counts = $4
			WHERE id = $1`, reportID, finishedAt, checked, string(raw)) // JSON as text: see jsonObject
		if err != nil {
			return fmt.Errorf("finish reconciliation report %s: %w", reportID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("finish reconciliation report %s: %w", reportID, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM reconciliation_reports WHERE status = 'completed' AND finished_at < $1`,
			finishedAt.Add(-reportRetention))
		return err
	})
}

// LatestReconciliation is the most recently completed report.
func (s *Store) LatestReconciliation(ctx context.Context) (ReconciliationReport, error) {
	var row struct {
		ReconciliationReport
		CountsJSON []byte `db:"counts"`
	}
	err := s.db.GetContext(ctx, &row, `
		SELECT id, workflow_id, started_at, finished_at, status, pending_threshold, checked, counts
		FROM reconciliation_reports WHERE status = 'completed'
		ORDER BY finished_at DESC, id DESC LIMIT 1`)
	if err != nil {
		return ReconciliationReport{}, notFound(err)
	}
	r := row.ReconciliationReport
	r.StartedAt = r.StartedAt.UTC()
	if r.FinishedAt != nil {
		t := r.FinishedAt.UTC()
		r.FinishedAt = &t
	}
	if err := json.Unmarshal(row.CountsJSON, &r.Counts); err != nil {
		return r, fmt.Errorf("counts of report %s: %w", r.ID, err)
	}
	return r, nil
}

// FindingCursor continues a page of findings after (subscription, kind, term).
type FindingCursor struct {
	SubscriptionID string
	Kind           string
	TermNumber     int
}

// ReconciliationFindings pages a report's findings by subscription, kind and term.
func (s *Store) ReconciliationFindings(ctx context.Context, reportID string, after *FindingCursor, limit int) ([]domain.Finding, *FindingCursor, error) {
	if after == nil {
		after = &FindingCursor{}
	}
	findings := []domain.Finding{}
	err := s.db.SelectContext(ctx, &findings, `
		SELECT subscription_id, kind, term_number, detail, workflow_value, read_model_value
		FROM reconciliation_findings
		WHERE report_id = $1 AND (subscription_id COLLATE "C", kind COLLATE "C", term_number) > ($2, $3, $4)
		ORDER BY subscription_id COLLATE "C", kind COLLATE "C", term_number LIMIT $5`,
		reportID, after.SubscriptionID, after.Kind, after.TermNumber, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("list findings of report %s: %w", reportID, err)
	}
	var next *FindingCursor
	if len(findings) > limit {
		findings = findings[:limit]
		last := findings[limit-1]
		next = &FindingCursor{SubscriptionID: last.SubscriptionID, Kind: last.Kind, TermNumber: last.TermNumber}
	}
	return findings, next, nil
}
