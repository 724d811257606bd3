-- Row outcomes addusers import could not write back to the sheet yet
-- (quota, outage): the next run writes them first, without touching the
-- cloud again for those rows. Keyed by the sheet and the row's identity.

-- +goose Up
CREATE TABLE pending_writebacks (
    source     text        NOT NULL,
    row_ts     text        NOT NULL,
    row_email  text        NOT NULL, -- lower-cased
    row_number integer     NOT NULL,
    email      text        NOT NULL,
    cells      jsonb       NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    PRIMARY KEY (source, row_ts, row_email)
);

-- +goose Down
DROP TABLE pending_writebacks;
