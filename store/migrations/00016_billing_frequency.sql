-- +goose Up
-- Billing frequency (issue 13, item 3): a plan's term billed in installments,
-- one per period (ISO 8601). '' bills once per term; billing_frequencies are
-- the further frequencies a purchase may choose.
ALTER TABLE plans ADD COLUMN billing_frequency text NOT NULL DEFAULT '';
ALTER TABLE plans ADD COLUMN billing_frequencies text[] NOT NULL DEFAULT '{}';

-- The subscription's frequency of its current term, the one PATCHed for the
-- next term, and how many periods of the current term are charged.
ALTER TABLE subscriptions ADD COLUMN billing_frequency text NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN pending_billing_frequency text;
ALTER TABLE subscriptions ADD COLUMN periods_billed integer NOT NULL DEFAULT 0;

-- Subscriptions bought before billing periods bill once per term: their
-- frequency is their plan's term, and a billed one charged its one period.
UPDATE subscriptions s SET billing_frequency = p.term
FROM plans p WHERE p.offer_id = s.offer_id AND p.id = s.plan_id AND s.billing_frequency = '';
UPDATE subscriptions SET periods_billed = 1 WHERE term_number > 0 AND periods_billed = 0;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN periods_billed;
ALTER TABLE subscriptions DROP COLUMN pending_billing_frequency;
ALTER TABLE subscriptions DROP COLUMN billing_frequency;
ALTER TABLE plans DROP COLUMN billing_frequencies;
ALTER TABLE plans DROP COLUMN billing_frequency;
