-- Row outcomes addusers import could not write back to the sheet yet
-- (quota, outage): the next run writes them first, without touching the
-- cloud again for those rows. Keyed by the sheet and the row's identity.

-- +goose Up
CREATE TABLE pending_writebacks (
    source     TEXT    NOT NULL, -- the sheet, as onboard.Options.Source
    row_ts     TEXT    NOT NULL, -- the row's identity: timestamp
    row_email  TEXT    NOT NULL, -- and email, lower-cased
    row_number INTEGER NOT NULL, -- where the row was last seen
    email      TEXT    NOT NULL, -- the email as the sheet has it
    cells      TEXT    NOT NULL, -- JSON object: header -> value (no secrets)
    reason     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (source, row_ts, row_email)
) STRICT;

-- +goose Down
DROP TABLE pending_writebacks;
