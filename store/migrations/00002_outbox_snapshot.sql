-- +goose Up
-- The subscription as it was when the event happened, so a notification
-- retried later still describes its own moment (no secrets: the snapshot is
-- the public subscription; the purchase link is derived at delivery).
ALTER TABLE outbox ADD COLUMN subscription jsonb;

-- +goose Down
ALTER TABLE outbox DROP COLUMN subscription;
