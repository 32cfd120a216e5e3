-- +goose Up
-- offers.setup_instructions (shown by GET /v1/offers) comes with 00006.

-- GET /v1/publisher/subscriptions pages a publisher's subscriptions newest
-- first, optionally by status, like the partner list does per partner.
CREATE INDEX subscriptions_publisher_seq ON subscriptions (publisher_id, seq DESC);
CREATE INDEX subscriptions_publisher_status_seq ON subscriptions (publisher_id, status, seq DESC);

-- +goose Down
DROP INDEX subscriptions_publisher_status_seq;
DROP INDEX subscriptions_publisher_seq;
