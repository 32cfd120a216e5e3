-- +goose Up
-- How long the publisher may refuse a change away from this plan (ISO 8601).
ALTER TABLE plans ADD COLUMN plan_change_veto_window text NOT NULL DEFAULT 'PT1H';
-- The plan change requested and not yet in effect (JSON of domain.PlanChange), NULL when none.
ALTER TABLE subscriptions ADD COLUMN pending_plan_change jsonb;
-- What a notification says beside the subscription's snapshot (a plan change's from and to plans).
ALTER TABLE outbox ADD COLUMN data jsonb;

-- +goose Down
ALTER TABLE outbox DROP COLUMN data;
ALTER TABLE subscriptions DROP COLUMN pending_plan_change;
ALTER TABLE plans DROP COLUMN plan_change_veto_window;
