-- Partitioned ingest (adapters/cluster): the workers alive, and one lease per partition of the
-- customer-keyed log. `epoch` grows at every change of owner: a commit carries its owner's epoch
-- and is refused once another worker took the partition (a paused "zombie" can never write).
-- `applied_seq` is the stream sequence of the last message whose effects are committed: it moves
-- in the same transaction as those effects, so a new owner resumes right after it.
CREATE TABLE cluster_config (
    key text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE cluster_workers (
    worker_id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE partition_leases (
    partition integer PRIMARY KEY,
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    applied_seq bigint NOT NULL DEFAULT 0,
    lag bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A command its owner could not apply after retries (a bug, not an outage): kept here, in the
-- transaction that moves the partition past it, so nothing acknowledged is ever dropped
-- silently; an operator reads it, fixes the cause and replays the payload.
CREATE TABLE ingest_dead_letters (
    id bigserial PRIMARY KEY,
    partition integer NOT NULL,
    seq bigint NOT NULL,
    payload bytea NOT NULL,
    error text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (partition, seq)
);
