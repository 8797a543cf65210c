-- Mobile clients (OwnTracks HTTP mode): the non-location messages worth keeping.
-- Location messages go through the ping pipeline (raw_fixes, presence) like POST /v1/pings.
-- The apps resend anything not acknowledged, so every table has its resend key as a unique
-- constraint: a resend is an INSERT ... ON CONFLICT DO NOTHING.

-- The app's own view of its regions (enter/leave of waypoints defined on the phone). Recorded
-- for comparison and support, never trusted over the engine's fences: no presence event comes
-- from here.
CREATE TABLE owntracks_transitions (
    id           bigserial PRIMARY KEY,
    device_id    text NOT NULL,              -- user/device
    customer_id  text NOT NULL,              -- as resolved on receipt
    event        text NOT NULL CHECK (event IN ('enter', 'leave')),
    region_key   text NOT NULL,              -- rid, else desc, else '': part of the resend key
    region_id    text,                       -- rid
    region_desc  text,                       -- desc
    trigger      text,                       -- t: c circle, b beacon, l location
    lat          double precision,
    lon          double precision,
    accuracy_m   double precision,
    ts           timestamptz NOT NULL,       -- tst: when it happened
    waypoint_ts  timestamptz,                -- wtst: when the region was created on the phone
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, event, region_key, ts)
);
CREATE INDEX owntracks_transitions_customer ON owntracks_transitions (customer_id, ts);

-- iOS beacon ranging messages, kept until the beacon engine turns them into sightings
-- (handle_owntracks_beacon in adapters/api/routes/clients.py).
CREATE TABLE owntracks_beacons (
    device_id    text NOT NULL,
    customer_id  text NOT NULL,
    uuid         text NOT NULL,              -- iBeacon proximity UUID, upper case
    major        integer NOT NULL,
    minor        integer NOT NULL,
    rssi         integer,                    -- dBm; null when iOS could not measure (0)
    accuracy_m   double precision,           -- iOS's distance estimate
    proximity    smallint,                   -- 0 unknown, 1 immediate, 2 near, 3 far
    region_desc  text,
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, uuid, major, minor, ts)
);
CREATE INDEX owntracks_beacons_customer ON owntracks_beacons (customer_id, ts);
