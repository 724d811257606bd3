-- The PIN on file: after a user's first password is set through setpass,
-- the PIN of that link is kept (as the same keyed HMAC the tokens hold), so
-- later password resets are PIN-gated without the sign-up sheet.

-- +goose Up
CREATE TABLE pins (
    user_id    text        PRIMARY KEY,
    pin_hmac   bytea       NOT NULL,
    updated_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE pins;
