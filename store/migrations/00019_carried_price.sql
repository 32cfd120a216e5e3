-- +goose Up
-- The unit price and currency of the plan the subscription's workflow carries
-- (taken at purchase, replaced only by a plan change that took effect), written
-- by every transition's snapshot: what the workflow will charge, whatever the
-- catalog's plan row says today. NULL in rows written before this column (and
-- by a worker that does not know it): readers then fall back to the catalog.
ALTER TABLE subscriptions ADD COLUMN unit_price_minor bigint CHECK (unit_price_minor >= 0);
ALTER TABLE subscriptions ADD COLUMN currency text;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN currency;
ALTER TABLE subscriptions DROP COLUMN unit_price_minor;
