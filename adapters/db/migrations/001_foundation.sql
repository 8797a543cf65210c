-- Foundation: API keys, geofences, identities, presence state and events, raw fixes.

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'ingest', 'staff', 'gateway')),
    store_ids   text[] NOT NULL DEFAULT '{}',
    key_hash    text NOT NULL UNIQUE,       -- sha256 of the key: keys are random, 256 bits
    key_prefix  text NOT NULL,              -- first characters, to recognise a key in a list
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE geofences (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('store', 'zone', 'competitor')),
    store_id      text,
    geometry      jsonb NOT NULL,
    radius_m      double precision,
    timezone      text,
    opening_hours jsonb,
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX geofences_store_kind ON geofences (store_id, kind);

-- Any identifier (device id, app install, cookie, phone, e-mail hash) owned by one customer.
CREATE TABLE identities (
    type        text NOT NULL,
    value       text NOT NULL,
    customer_id text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, value)
);
CREATE INDEX identities_customer ON identities (customer_id);

-- The latest fix applied per customer: what late, duplicate and speed checks compare to.
-- Times are epoch seconds as float8, exactly as the client sent them: a resent fix must compare
-- equal after a restart, which a microsecond timestamptz would not guarantee.
CREATE TABLE customer_cursors (
    customer_id     text PRIMARY KEY,
    last_ts         double precision NOT NULL,
    last_lat        double precision NOT NULL,
    last_lon        double precision NOT NULL,
    last_accuracy_m double precision,
    suspect_ts      double precision,
    suspect_lat     double precision,
    suspect_lon     double precision,
    suspect_accuracy_m double precision,
    suspect_count   integer NOT NULL DEFAULT 0,
    last_event_ts   double precision,           -- latest event a sweep dated: older fixes are late
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per customer currently inside a fence.
CREATE TABLE presence_state (
    customer_id    text NOT NULL,
    geofence_id    text NOT NULL,
    entered_at     timestamptz NOT NULL,
    last_inside_at timestamptz NOT NULL,
    outside_since  timestamptz,
    dwell_fired    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, geofence_id)
);
CREATE INDEX presence_state_fence ON presence_state (geofence_id);

CREATE TABLE presence_events (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL,
    geofence_id text NOT NULL,
    type        text NOT NULL CHECK (type IN ('enter', 'dwell', 'exit')),
    ts          timestamptz NOT NULL,
    source      text NOT NULL DEFAULT 'gps',
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX presence_events_customer ON presence_events (customer_id, id);
CREATE INDEX presence_events_fence ON presence_events (geofence_id, id);
CREATE INDEX presence_events_ts ON presence_events (ts);

-- Raw fixes, kept only for GEO_ENGINE_RAW_FIX_RETENTION_S (minimisation).
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
);
CREATE INDEX raw_fixes_received ON raw_fixes USING brin (received_at);
CREATE INDEX raw_fixes_customer ON raw_fixes (customer_id);
