-- +goose NO TRANSACTION
-- +goose Up
-- GET /v1/subscriptions?customer_id=… pages a partner's list by seq for one
-- customer. Without this index the plan walks subscriptions_partner_seq and
-- filters every other customer's rows out: with 100,000 rows in one partner a
-- customer of 100 took 40 ms a page (see BENCHMARKS.md). With a tab too, the
-- customer's own rows are few enough to filter by status.
-- CONCURRENTLY: a large live table keeps taking writes while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriptions_partner_customer_seq
    ON subscriptions (partner_id, customer_id, seq DESC);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS subscriptions_partner_customer_seq;
