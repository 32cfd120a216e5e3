-- +goose Up
-- Signing secrets of each partner's billing system (POST /v1/billing/events),
-- sealed (AES-GCM) with the key from SECRET_KEY like publisher secrets;
-- several may be active at once so a partner can rotate without downtime.
CREATE TABLE partner_billing_secrets (
    partner_id  text NOT NULL REFERENCES partners(id),
    fingerprint text NOT NULL,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    PRIMARY KEY (partner_id, fingerprint)
);

-- The billing events taken, by the partner's event_id: the same event again
-- gets the first answer (purged with the other message records).
CREATE TABLE billing_events (
    partner_id      text NOT NULL,
    event_id        text NOT NULL,
    request_hash    bytea NOT NULL,
    response_status integer,
    response_body   bytea,
    locked_at       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, event_id)
);

-- +goose Down
DROP TABLE billing_events, partner_billing_secrets;
