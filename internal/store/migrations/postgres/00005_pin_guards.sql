-- PIN guessing bounded per person: every wrong PIN a user's links receive
-- (welcome, reminder and reset links alike) is counted here, and past the
-- limit in the window the user's PIN is locked until the helpdesk sets a
-- new one.

-- +goose Up
CREATE TABLE pin_guards (
    user_id   text        PRIMARY KEY, -- also the row writers of one user queue on
    locked_at timestamptz             -- NULL: not locked
);
CREATE TABLE pin_failures (
    user_id text        NOT NULL,
    at      timestamptz NOT NULL
);
CREATE INDEX pin_failures_user_at ON pin_failures (user_id, at);

-- +goose Down
DROP TABLE pin_failures;
DROP TABLE pin_guards;
