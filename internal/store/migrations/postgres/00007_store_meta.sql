-- Facts about the store itself: its ID, which a run records in the sheets
-- it imports so that a second store meeting the same sheet is noticed.

-- +goose Up
CREATE TABLE store_meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- +goose Down
DROP TABLE store_meta;
