-- Times are INTEGER microseconds since the Unix epoch (UTC): exact, and they
-- compare correctly, unlike the driver's variable-width text format.

-- +goose Up
CREATE TABLE tokens (
    hash            BLOB    PRIMARY KEY,
    user_id         TEXT    NOT NULL UNIQUE,
    pin_hmac        BLOB    NOT NULL,
    sealed_password BLOB    NOT NULL,
    purpose         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    locked_at       INTEGER,
    used_at         INTEGER
) STRICT;
CREATE INDEX tokens_created ON tokens (created_at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reuse an ID
    msg_key         TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    sender          TEXT    NOT NULL,
    recipients      TEXT    NOT NULL, -- JSON array
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'abandoned')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    claim           TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_sending ON outbox (lease_until) WHERE status = 'sending';
-- No index on created_at: every status change would update it too, and only
-- the admin listing orders by it.

-- Bodies apart from the outbox rows, so that status changes (claim, sent,
-- failed) rewrite a small row rather than the whole message.
CREATE TABLE outbox_body (
    id   INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    body BLOB   NOT NULL
) STRICT;

CREATE TABLE ledger (
    name        TEXT    PRIMARY KEY,
    recorded_at INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    details     TEXT    NOT NULL -- JSON object
) STRICT;
CREATE INDEX audit_events_at ON audit_events (occurred_at, id);
CREATE INDEX audit_events_target ON audit_events (target, occurred_at, id);

CREATE TABLE locks (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE locks;
DROP TABLE audit_events;
DROP TABLE ledger;
DROP TABLE outbox_body;
DROP TABLE outbox;
DROP TABLE tokens;
