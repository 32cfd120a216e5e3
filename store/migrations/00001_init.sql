-- +goose Up
CREATE TABLE publishers (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    landing_url text NOT NULL,
    webhook_url text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Signing secrets, encrypted (AES-GCM) with the key from SECRET_KEY. Several
-- may be active at once so a publisher can rotate without downtime.
CREATE TABLE publisher_secrets (
    publisher_id text NOT NULL REFERENCES publishers(id),
    fingerprint  text NOT NULL,
    ciphertext   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    PRIMARY KEY (publisher_id, fingerprint)
);

CREATE TABLE offers (
    id               text PRIMARY KEY,
    publisher_id     text NOT NULL REFERENCES publishers(id),
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('saas', 'app')),
    parent_offer_ids text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE plans (
    offer_id            text NOT NULL REFERENCES offers(id),
    id                  text NOT NULL,
    name                text NOT NULL,
    term                text NOT NULL,
    unit_price_minor    bigint NOT NULL CHECK (unit_price_minor >= 0),
    currency            text NOT NULL,
    min_quantity        integer NOT NULL,
    max_quantity        integer NOT NULL,
    cancellation_window text NOT NULL,
    activation_deadline text NOT NULL,
    PRIMARY KEY (offer_id, id)
);

CREATE TABLE partners (
    id   text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE agents (
    partner_id text NOT NULL REFERENCES partners(id),
    id         text NOT NULL,
    role       text NOT NULL CHECK (role IN ('admin_agent', 'sales_agent')),
    PRIMARY KEY (partner_id, id)
);

-- API keys are kept only as SHA-256 hashes.
CREATE TABLE api_keys (
    key_hash   bytea PRIMARY KEY,
    partner_id text NOT NULL,
    agent_id   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    FOREIGN KEY (partner_id, agent_id) REFERENCES agents(partner_id, id)
);

CREATE TABLE customers (
    partner_id text NOT NULL REFERENCES partners(id),
    id         text NOT NULL,
    name       text NOT NULL,
    domain     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    seq        bigserial,
    PRIMARY KEY (partner_id, id)
);

-- The read model, written only by the workflow's activity. seq orders lists
-- newest first and keeps cursors stable under concurrent inserts.
CREATE TABLE subscriptions (
    id                          text PRIMARY KEY,
    seq                         bigserial UNIQUE,
    partner_id                  text NOT NULL,
    customer_id                 text NOT NULL,
    publisher_id                text NOT NULL,
    offer_id                    text NOT NULL,
    plan_id                     text NOT NULL,
    quantity                    integer NOT NULL,
    nickname                    text,
    auto_renew                  boolean NOT NULL,
    reseller_partner_id         text,
    parent_subscription_id      text,
    linked_subscription_ids     text[] NOT NULL DEFAULT '{}',
    entitlement_number          text NOT NULL,
    site_url                    text,
    licenses_assigned           integer NOT NULL DEFAULT 0,
    fulfillment_confirmed       boolean NOT NULL DEFAULT false,
    status                      text NOT NULL,
    term_number                 integer NOT NULL DEFAULT 0,
    activation_deadline         timestamptz NOT NULL,
    billing_started_at          timestamptz,
    term_start                  timestamptz,
    term_end                    timestamptz,
    cancellation_window_ends_at timestamptz,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    version                     bigint NOT NULL,
    FOREIGN KEY (partner_id, customer_id) REFERENCES customers(partner_id, id)
);
CREATE INDEX subscriptions_partner_seq ON subscriptions (partner_id, seq DESC);
CREATE INDEX subscriptions_partner_status_seq ON subscriptions (partner_id, status, seq DESC);
CREATE INDEX subscriptions_publisher ON subscriptions (publisher_id);

-- Authorization codes are kept only as SHA-256 hashes.
CREATE TABLE authorization_codes (
    code_hash       bytea PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES subscriptions(id),
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    subscription_id text NOT NULL,
    dedup_key       text NOT NULL UNIQUE,
    at              timestamptz NOT NULL,
    type            text NOT NULL,
    actor           text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_subscription ON events (subscription_id, id);

-- The billing ledger. The id is derived from subscription id and term number
-- (charge:<id>:<term>), never from a run id, so a term is charged once.
CREATE TABLE ledger (
    id              text PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES subscriptions(id),
    term_number     integer NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('charge', 'refund', 'proration')),
    amount_minor    bigint NOT NULL,
    currency        text NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX ledger_subscription ON ledger (subscription_id, created_at, id);

-- Notifications to publishers (transactional outbox). id is the webhook-id.
CREATE TABLE outbox (
    id              text PRIMARY KEY,
    publisher_id    text NOT NULL,
    subscription_id text NOT NULL,
    type            text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Idempotency-Key records of partner purchases, kept at least 24 h.
CREATE TABLE idempotency_keys (
    partner_id      text NOT NULL,
    key             text NOT NULL,
    request_hash    bytea NOT NULL,
    subscription_id text NOT NULL,
    response_status integer,
    response_body   bytea,
    locked_at       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, key)
);

-- Publisher messages by webhook-id: a redelivery gets the stored answer.
CREATE TABLE publisher_messages (
    publisher_id    text NOT NULL,
    webhook_id      text NOT NULL,
    request_hash    bytea NOT NULL,
    response_status integer,
    response_body   bytea,
    locked_at       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (publisher_id, webhook_id)
);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    tenant  text NOT NULL,
    action  text NOT NULL,
    outcome text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'
);

-- +goose Down
DROP TABLE audit_log, publisher_messages, idempotency_keys, outbox, ledger, events,
    authorization_codes, subscriptions, customers, api_keys, agents, partners, plans, offers,
    publisher_secrets, publishers;
