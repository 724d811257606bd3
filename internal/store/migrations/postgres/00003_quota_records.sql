-- What each project's quotas should be, as kaizen last set them (import,
-- approved quota requests, reverts), for addusers validate; and, for a
-- temporary quota, its last day and the quotas to return to after it.

-- +goose Up
CREATE TABLE quota_records (
    project_id text        PRIMARY KEY,
    quotas     jsonb       NOT NULL,
    preset     text        NOT NULL DEFAULT '',
    ends_on    timestamptz,
    previous   jsonb,
    changed_at timestamptz NOT NULL,
    change_key text        NOT NULL DEFAULT '',
    before_quotas jsonb
);
CREATE INDEX quota_records_ends ON quota_records (ends_on) WHERE ends_on IS NOT NULL;

-- +goose Down
DROP TABLE quota_records;
