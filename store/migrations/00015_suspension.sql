-- +goose Up
-- How long a subscription suspended for non-payment waits for the payment
-- before it ends (ISO 8601).
ALTER TABLE plans ADD COLUMN payment_grace_period text NOT NULL DEFAULT 'P30D';

-- +goose Down
ALTER TABLE plans DROP COLUMN payment_grace_period;
