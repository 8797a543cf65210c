-- Proximity signals: BLE beacons and NFC tags registered per store/zone fence, recorded taps,
-- and the presence state fields proximity evidence needs (geo_engine/presence.py).

-- A beacon placed in a zone. `identity` is the canonical key sightings are matched on:
-- "ibeacon:<uuid>:<major>:<minor>" or "eddystone_uid:<namespace>:<instance>" (lower-case hex).
CREATE TABLE beacons (
    id             text PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('ibeacon', 'eddystone_uid')),
    identity       text NOT NULL UNIQUE,
    uuid           uuid,
    major          integer CHECK (major BETWEEN 0 AND 65535),
    minor          integer CHECK (minor BETWEEN 0 AND 65535),
    namespace      text CHECK (namespace ~ '^[0-9a-f]{20}$'),
    instance       text CHECK (instance ~ '^[0-9a-f]{12}$'),
    measured_power integer,                 -- RSSI at 1 m, dBm (NULL: from the sighting)
    placement      text,
    metadata       jsonb NOT NULL DEFAULT '{}',
    -- deleting the fence removes its beacons: they would place customers nowhere
    geofence_id    text NOT NULL REFERENCES geofences (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'ibeacon') = (uuid IS NOT NULL AND major IS NOT NULL AND minor IS NOT NULL)),
    CHECK ((kind = 'eddystone_uid') = (namespace IS NOT NULL AND instance IS NOT NULL))
);
CREATE INDEX beacons_fence ON beacons (geofence_id);

-- An NFC tag fixed in a store (its store fence) or a zone (the zone fence: the store is implied).
-- SUN keys (NTAG 424 DNA) are secrets: never returned by the API.
CREATE TABLE nfc_tags (
    id              text PRIMARY KEY,        -- the tag id the app reports
    geofence_id     text NOT NULL REFERENCES geofences (id) ON DELETE CASCADE,
    uid             text CHECK (uid ~ '^[0-9a-f]{14}$'),  -- 7-byte UID a SUN message must carry
    sun_file_key    bytea CHECK (octet_length(sun_file_key) = 16),  -- K_SDMFileRead (MAC)
    sun_meta_key    bytea CHECK (octet_length(sun_meta_key) = 16),  -- K_SDMMetaRead (PICCData)
    last_counter    integer,                 -- highest SDMReadCtr accepted: replays are refused
    placement       text,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (sun_meta_key IS NULL OR sun_file_key IS NOT NULL)
);
CREATE INDEX nfc_tags_fence ON nfc_tags (geofence_id);

-- Every accepted tap (a verified SUN counter included), whether or not it changed presence.
CREATE TABLE nfc_taps (
    id          bigserial PRIMARY KEY,
    tag_id      text NOT NULL REFERENCES nfc_tags (id) ON DELETE CASCADE,
    customer_id text NOT NULL,
    device_id   text,
    ts          timestamptz NOT NULL,
    counter     integer,                     -- SDMReadCtr, when the tap carried a SUN message
    verified    boolean NOT NULL DEFAULT false,
    flag        text,                        -- e.g. late: recorded, no presence transition
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nfc_taps_customer ON nfc_taps (customer_id, id);
CREATE INDEX nfc_taps_tag ON nfc_taps (tag_id, id);

-- Presence state: the visit's source and its proximity hold (see FenceState).
ALTER TABLE presence_state
    ADD COLUMN source        text NOT NULL DEFAULT 'gps',
    ADD COLUMN gps_confirmed boolean NOT NULL DEFAULT true,
    ADD COLUMN held_until    timestamptz,
    ADD COLUMN held_by       text;
