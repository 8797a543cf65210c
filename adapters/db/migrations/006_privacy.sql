-- Privacy (issue 8): the audit log of changes made by staff and admin keys, and the anonymous
-- counts that survive a customer's erasure. Neither table has a customer_id column on purpose:
-- erasure discovers personal tables by that column, and these must hold nothing personal.

-- One row per state-changing request (POST, PUT, PATCH, DELETE) of an admin or staff key.
-- `path` is the route with its parameters filled in, except a customer id (kept as
-- "{customer_id}"): an erased customer must not survive in the audit trail. Bodies are never
-- stored (they may carry keys, SUN secrets or personal data).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    key_id      text NOT NULL,
    role        text NOT NULL,
    method      text NOT NULL,
    route       text NOT NULL,              -- the route template, e.g. /v1/geofences/{fence_id}
    path        text NOT NULL,
    status      integer NOT NULL
);
CREATE INDEX audit_log_at ON audit_log USING brin (at);

-- Aggregates kept after erasures: how many customers were erased and how many rows of each
-- table went with them (day granularity: a finer time could single a customer out).
CREATE TABLE erasure_counts (
    day        date NOT NULL,
    table_name text NOT NULL,               -- '_customers' counts the erasures themselves
    rows       bigint NOT NULL,
    PRIMARY KEY (day, table_name)
);

-- The retention purge selects raw fixes by fix time (adapters/privacy/retention.py): a BRIN
-- index costs almost nothing on insert (fixes arrive roughly in time order) and lets it skip
-- recent blocks. presence_events already has a btree on ts (001).
CREATE INDEX raw_fixes_ts ON raw_fixes USING brin (ts);
