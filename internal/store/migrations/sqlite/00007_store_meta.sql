-- Facts about the store itself: its ID, which a run records in the sheets
-- it imports so that a second store meeting the same sheet is noticed.

-- +goose Up
CREATE TABLE store_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE store_meta;
