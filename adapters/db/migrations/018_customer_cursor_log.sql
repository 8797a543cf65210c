-- Cursors change with nearly every fix, so upserting them per batch cost more than anything else
-- an owner's commit wrote (an index probe, a new row version and its WAL per customer, and
-- asyncpg encoding eleven arrays element by element). A batch now appends its changed cursors
-- here by binary COPY, in the same transaction as its events (no index to maintain: about a
-- fifth of the database's CPU of the upsert), and compaction folds the log into
-- customer_cursors in the background. A customer's cursor is its newest log row, else its
-- customer_cursors row (adapters/db/presence_store.py reads both in one snapshot).
-- no CACHE: a backend's cached range would number a later batch below an earlier one's
CREATE SEQUENCE customer_cursor_log_id;
-- customer_cursors' columns and NOT NULLs (no key, no index, no default), by an id
CREATE TABLE customer_cursor_log (
    id bigint NOT NULL DEFAULT nextval('customer_cursor_log_id'), -- newest wins
    LIKE customer_cursors
);
ALTER TABLE customer_cursor_log DROP COLUMN updated_at; -- compaction sets the table's
ALTER SEQUENCE customer_cursor_log_id OWNED BY customer_cursor_log.id;
