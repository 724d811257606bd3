-- A delivered or abandoned message keeps no body: the body may carry a
-- set-password link. The trigger deletes it in the same transaction as the
-- status change, whichever statement makes it, so no code path can forget.
-- The metadata (key, kind, recipients, times, attempts, status, last error)
-- stays for the idempotency check and the audit until PurgeMessages.

-- +goose Up
DELETE FROM outbox_body WHERE id IN (SELECT id FROM outbox WHERE status IN ('sent', 'abandoned'));

-- +goose StatementBegin
CREATE FUNCTION outbox_drop_body() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM outbox_body WHERE id = NEW.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER outbox_drop_body AFTER UPDATE OF status ON outbox
    FOR EACH ROW WHEN (NEW.status IN ('sent', 'abandoned'))
    EXECUTE FUNCTION outbox_drop_body();

-- PurgeMessages: finished messages by age.
CREATE INDEX outbox_done ON outbox (updated_at) WHERE status IN ('sent', 'abandoned');

-- +goose Down
DROP INDEX outbox_done;
DROP TRIGGER outbox_drop_body ON outbox;
DROP FUNCTION outbox_drop_body();
