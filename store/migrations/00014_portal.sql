-- +goose Up
-- The portal (issue 10): agents sign in by email; one-time sign-in links and
-- sessions are kept only as hashes of their tokens.
ALTER TABLE agents ADD COLUMN email text;
CREATE UNIQUE INDEX agents_email ON agents (lower(email)) WHERE email IS NOT NULL;

-- A link names one person: a customer contact or a partner agent. Its token
-- is derived from the id under SECRET_KEY (so the email outbox stores only
-- the id) and looked up by its SHA-256.
CREATE TABLE portal_sign_in_links (
    id          text PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    email       text NOT NULL,
    partner_id  text NOT NULL,
    customer_id text,
    contact_id  text,
    agent_id    text,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((contact_id IS NULL) <> (agent_id IS NULL))
);
CREATE INDEX portal_sign_in_links_email ON portal_sign_in_links (lower(email), created_at);

CREATE TABLE portal_sessions (
    id_hash     bytea PRIMARY KEY,
    partner_id  text NOT NULL,
    customer_id text,
    contact_id  text,
    agent_id    text,
    email       text NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((contact_id IS NULL) <> (agent_id IS NULL))
);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);

-- +goose Down
DROP TABLE portal_sessions, portal_sign_in_links;
DROP INDEX agents_email;
ALTER TABLE agents DROP COLUMN email;
