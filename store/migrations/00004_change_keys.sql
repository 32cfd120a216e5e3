-- +goose Up
-- Idempotency-Keys of partner changes (PATCH, cancel, deactivate): the hash
-- of the first request under a key, so the key reused for another request is
-- refused (422) instead of silently answered with the first result. The
-- answer itself is replayed by Temporal (the key is the Update id).
CREATE TABLE change_keys (
    partner_id      text NOT NULL,
    key             text NOT NULL,
    request_hash    bytea NOT NULL,
    response_status integer,
    response_body   bytea,
    locked_at       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, key)
);

-- +goose Down
DROP TABLE change_keys;
