-- What each project's quotas should be, as kaizen last set them (import,
-- approved quota requests, reverts), for addusers validate; and, for a
-- temporary quota, its last day and the quotas to return to after it.

-- +goose Up
CREATE TABLE quota_records (
    project_id TEXT    PRIMARY KEY,
    quotas     TEXT    NOT NULL, -- JSON object: quota key -> value
    preset     TEXT    NOT NULL DEFAULT '',
    ends_on    INTEGER,          -- the temporary quota's last day; NULL: permanent
    previous   TEXT,             -- JSON object: the quotas after ends_on
    changed_at INTEGER NOT NULL,
    change_key TEXT    NOT NULL DEFAULT '', -- key of the change that set quotas
    before_quotas TEXT              -- JSON object: the quotas before that change
) STRICT;
CREATE INDEX quota_records_ends ON quota_records (ends_on) WHERE ends_on IS NOT NULL;

-- +goose Down
DROP TABLE quota_records;
