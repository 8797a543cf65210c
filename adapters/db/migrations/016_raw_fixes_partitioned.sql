-- Raw fixes in daily partitions (issue 14): retention drops a day whole instead of deleting
-- its rows in batches (adapters/privacy/retention.py, adapters/db/raw_fixes.py).
--
-- The partition key is the fix time `ts`, the column retention's rule uses: raw fixes are kept
-- for how long ago the person was there, not for how long ago we heard of it. A day partition
-- on `ts` then holds exactly the rows a cutoff past its upper bound removes, and is dropped
-- without reading them. `received_at` would be monotone (the server's clock), but a day of it
-- can hold fixes of any age (a phone uploading a backlog), so no cutoff on `ts` could drop it
-- whole. The price of `ts`: a fix whose time is before the oldest partition (late) or past the
-- days created ahead (a skewed clock) lands in the DEFAULT partition; it is stored all the
-- same, purged by DELETE, and moved into its day's partition when that day is created.
--
-- Partitions live in the `partitions` schema (partitions.raw_fixes_YYYYMMDD, UTC days, and
-- partitions.raw_fixes_default): erasure, export and the retention rules discover personal
-- tables in `public` (adapters/db/personal_tables.py, adapters/db/retention.py) and must see
-- the parent only, or they would read every fix twice.
--
-- No primary key: raw_fixes never had one (nothing reads a fix by id); the places refresher's
-- cursor is received_at, BRIN-indexed on every partition as before. Days are created ahead
-- (today and the next 3) here and by the retention job (raw_fixes.ensure_days), so a COPY does
-- not land in DEFAULT in normal operation.
--
-- Applied in one transaction (adapters/db/migrate.py): rows are moved, never lost.

CREATE SCHEMA IF NOT EXISTS partitions;

ALTER TABLE raw_fixes RENAME TO raw_fixes_unpartitioned;
DROP INDEX raw_fixes_received, raw_fixes_customer, raw_fixes_ts;

CREATE TABLE raw_fixes (
    customer_id text NOT NULL,
    device_id   text,
    ts          timestamptz NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    accuracy_m  double precision,
    speed_mps   double precision,
    heading     double precision,
    mock        boolean NOT NULL DEFAULT false,
    flag        text,
    received_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);
CREATE INDEX raw_fixes_received ON raw_fixes USING brin (received_at);
CREATE INDEX raw_fixes_customer ON raw_fixes (customer_id);
CREATE INDEX raw_fixes_ts ON raw_fixes USING brin (ts);

CREATE TABLE partitions.raw_fixes_default PARTITION OF raw_fixes DEFAULT;

-- the days the existing rows need (the last 400: older ones, if any, go to DEFAULT and the
-- next purge deletes them), today and the 3 days ahead
DO $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    d date;
BEGIN
    FOR d IN
        SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day FROM raw_fixes_unpartitioned
        WHERE ts >= (today - 400)::timestamp AT TIME ZONE 'UTC'
          AND ts < (today + 4)::timestamp AT TIME ZONE 'UTC'
        UNION
        SELECT today + i FROM generate_series(0, 3) AS i
        ORDER BY 1
    LOOP
        EXECUTE format(
            'CREATE TABLE partitions.%I PARTITION OF raw_fixes FOR VALUES FROM (%L) TO (%L)',
            'raw_fixes_' || to_char(d, 'YYYYMMDD'),
            d::timestamp AT TIME ZONE 'UTC',
            (d + 1)::timestamp AT TIME ZONE 'UTC'
        );
    END LOOP;
END
$$;

INSERT INTO raw_fixes (customer_id, device_id, ts, lat, lon, accuracy_m, speed_mps, heading,
                       mock, flag, received_at)
SELECT customer_id, device_id, ts, lat, lon, accuracy_m, speed_mps, heading, mock, flag,
       received_at
FROM raw_fixes_unpartitioned;

DROP TABLE raw_fixes_unpartitioned;
