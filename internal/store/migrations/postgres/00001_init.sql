-- +goose Up
CREATE TABLE tokens (
    hash            bytea       PRIMARY KEY,
    user_id         text        NOT NULL UNIQUE,
    pin_hmac        bytea       NOT NULL,
    sealed_password bytea       NOT NULL,
    purpose         text        NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    locked_at       timestamptz,
    used_at         timestamptz
);
CREATE INDEX tokens_created ON tokens (created_at);

CREATE TABLE outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_key         text        NOT NULL UNIQUE,
    kind            text        NOT NULL,
    sender          text        NOT NULL,
    recipients      jsonb       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'abandoned')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    claim           text        NOT NULL DEFAULT '',
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_sending ON outbox (lease_until) WHERE status = 'sending';
-- No index on created_at: every status change would update it too, and only
-- the admin listing orders by it.

-- Bodies apart from the outbox rows, so that status changes (claim, sent,
-- failed) rewrite a small row rather than the whole message.
CREATE TABLE outbox_body (
    id   bigint PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    body bytea   NOT NULL
);

CREATE TABLE ledger (
    name        text        PRIMARY KEY,
    recorded_at timestamptz NOT NULL
);

CREATE TABLE audit_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    target      text        NOT NULL,
    source      text        NOT NULL,
    details     jsonb       NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (occurred_at, id);
CREATE INDEX audit_events_target ON audit_events (target, occurred_at, id);

CREATE TABLE locks (
    name       text        PRIMARY KEY,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE locks;
DROP TABLE audit_events;
DROP TABLE ledger;
DROP TABLE outbox_body;
DROP TABLE outbox;
DROP TABLE tokens;
