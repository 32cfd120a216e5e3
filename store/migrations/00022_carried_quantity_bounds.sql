-- +goose Up
-- The quantity bounds of the plan the subscription's workflow carries, written
-- with its price and term by every transition's snapshot: the portal offers the
-- range the workflow enforces on a quantity change, whatever the catalog's
-- plan row says today. NULL in rows written before these columns: readers then
-- fall back to the catalog.
ALTER TABLE subscriptions ADD COLUMN min_quantity integer, ADD COLUMN max_quantity integer;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN min_quantity, DROP COLUMN max_quantity;
