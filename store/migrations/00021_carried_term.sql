-- +goose Up
-- The term (ISO 8601) of the plan the subscription's workflow carries, written
-- with the carried price by every transition's snapshot: the read model's
-- billing periods and upcoming charges follow it, whatever the catalog's plan
-- row says today. NULL in rows written before this column: readers then fall
-- back to the catalog.
ALTER TABLE subscriptions ADD COLUMN plan_term text;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN plan_term;
