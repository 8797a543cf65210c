-- Wake relays when offers are committed (adapters/delivery/relay.py LISTENs on geo_outbox):
-- without it a new offer waits for the next poll. One NOTIFY per inserting statement (not per
-- row), delivered at commit, so a rolled-back decision wakes nobody.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('geo_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
