package wire

import "time"

// ReconciliationReport is GET /v1/ops/reconciliation/latest.
type ReconciliationReport struct {
	ID               string         `json:"id"`
	WorkflowID       string         `json:"workflow_id"`
	Status           string         `json:"status"`
	StartedAt        time.Time      `json:"started_at"`
	FinishedAt       *time.Time     `json:"finished_at"`
	PendingThreshold string         `json:"pending_threshold"`
	Checked          int            `json:"checked"`
	FindingsTotal    int            `json:"findings_total"`
	Counts           map[string]int `json:"counts"`
	Findings         []Finding      `json:"findings"`
	NextCursor       *string        `json:"next_cursor"`
}

// Finding is one disagreement of a report.
type Finding struct {
	SubscriptionID string  `json:"subscription_id"`
	Kind           string  `json:"kind"`
	TermNumber     *int    `json:"term_number"`
	Detail         string  `json:"detail"`
	WorkflowValue  *string `json:"workflow_value"`
	ReadModelValue *string `json:"read_model_value"`
}
