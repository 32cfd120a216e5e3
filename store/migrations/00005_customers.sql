-- +goose Up
-- Customers in the loop: contacts, their timeline, sites, billing accounts,
-- and the email outbox that transitions and contact changes fill.

-- A customer's contacts. Exactly one live contact per customer is primary
-- (enforced by the store under a lock on the customer row, and here by a
-- partial unique index). Removed contacts are kept for the timeline.
CREATE TABLE customer_contacts (
    id          text PRIMARY KEY,
    partner_id  text NOT NULL,
    customer_id text NOT NULL,
    email       text NOT NULL,
    roles       text[] NOT NULL,
    is_primary  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz,
    seq         bigserial UNIQUE,
    FOREIGN KEY (partner_id, customer_id) REFERENCES customers(partner_id, id),
    CHECK (roles <@ ARRAY['technical', 'billing']::text[] AND cardinality(roles) > 0)
);
CREATE UNIQUE INDEX customer_contacts_email ON customer_contacts (partner_id, customer_id, lower(email)) WHERE removed_at IS NULL;
CREATE UNIQUE INDEX customer_contacts_primary ON customer_contacts (partner_id, customer_id) WHERE is_primary AND removed_at IS NULL;

-- Every change to a customer's contacts, sites and billing accounts, with who made it.
CREATE TABLE customer_events (
    id          bigserial PRIMARY KEY,
    partner_id  text NOT NULL,
    customer_id text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    type        text NOT NULL,
    actor       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX customer_events_customer ON customer_events (partner_id, customer_id, id);

CREATE TABLE customer_sites (
    id          text PRIMARY KEY,
    partner_id  text NOT NULL,
    customer_id text NOT NULL,
    name        text NOT NULL,
    url         text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    seq         bigserial UNIQUE,
    FOREIGN KEY (partner_id, customer_id) REFERENCES customers(partner_id, id)
);
CREATE UNIQUE INDEX customer_sites_url ON customer_sites (partner_id, customer_id, url);

CREATE TABLE billing_accounts (
    id          text PRIMARY KEY,
    partner_id  text NOT NULL,
    customer_id text NOT NULL,
    name        text NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    seq         bigserial UNIQUE,
    FOREIGN KEY (partner_id, customer_id) REFERENCES customers(partner_id, id)
);
CREATE UNIQUE INDEX billing_accounts_default ON billing_accounts (partner_id, customer_id) WHERE is_default;

-- Idempotency-Key records of the POSTs that create sites and billing accounts.
CREATE TABLE creation_keys (
    partner_id   text NOT NULL,
    key          text NOT NULL,
    kind         text NOT NULL,
    request_hash bytea NOT NULL,
    resource_id  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, kind, key)
);

-- Where a subscription lives and which billing account it is billed to.
-- Kept beside the workflow's snapshot (SaveChange's upsert does not touch them).
ALTER TABLE subscriptions ADD COLUMN site_id text REFERENCES customer_sites(id);
ALTER TABLE subscriptions ADD COLUMN billing_account_id text REFERENCES billing_accounts(id);
-- The billing account a ledger line landed on.
ALTER TABLE ledger ADD COLUMN billing_account_id text;

-- How long before a renewal technical contacts are reminded (ISO 8601).
ALTER TABLE plans ADD COLUMN renewal_reminder_lead text NOT NULL DEFAULT 'P7D';

-- Emails to customer contacts (transactional outbox). id is derived from
-- what caused the email and its recipient, so a retried transition adds no
-- second row; the Message-ID is derived from id, the same on every retry.
CREATE TABLE email_outbox (
    id              text PRIMARY KEY,
    kind            text NOT NULL,
    partner_id      text NOT NULL,
    customer_id     text NOT NULL,
    subscription_id text,
    recipient       text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    send_after      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    skipped_at      timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE sent_at IS NULL AND skipped_at IS NULL;
CREATE INDEX email_outbox_customer ON email_outbox (partner_id, customer_id, created_at);

-- +goose Down
DROP TABLE email_outbox, creation_keys;
ALTER TABLE plans DROP COLUMN renewal_reminder_lead;
ALTER TABLE ledger DROP COLUMN billing_account_id;
ALTER TABLE subscriptions DROP COLUMN billing_account_id, DROP COLUMN site_id;
DROP TABLE billing_accounts, customer_sites, customer_events, customer_contacts;
