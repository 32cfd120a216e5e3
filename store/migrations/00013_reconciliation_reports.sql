-- +goose Up
-- Reconciliation (issue 13, item 6): one report per run of the
-- ReconciliationWorkflow, keyed by its first run id so every retried or
-- continued write lands on the same report. Findings are what disagreed;
-- nothing here is ever repaired automatically.
CREATE TABLE reconciliation_reports (
    id                text PRIMARY KEY,
    workflow_id       text NOT NULL,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    status            text NOT NULL CHECK (status IN ('running', 'completed')),
    pending_threshold text NOT NULL,
    checked           integer NOT NULL DEFAULT 0,
    counts            jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX reconciliation_reports_finished ON reconciliation_reports (finished_at DESC) WHERE status = 'completed';

CREATE TABLE reconciliation_findings (
    report_id       text NOT NULL REFERENCES reconciliation_reports(id) ON DELETE CASCADE,
    subscription_id text NOT NULL,
    kind            text NOT NULL,
    term_number     integer NOT NULL DEFAULT 0,
    detail          text NOT NULL,
    workflow_value  text,
    read_model_value text,
    PRIMARY KEY (report_id, subscription_id, kind, term_number)
);

-- Statements (issue 13, item 7) read a month of ledger rows by created_at.
CREATE INDEX ledger_created_at ON ledger (created_at);

-- +goose Down
DROP INDEX ledger_created_at;
DROP TABLE reconciliation_findings, reconciliation_reports;
