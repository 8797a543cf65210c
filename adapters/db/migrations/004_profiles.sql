-- Customer profiles: declared attributes and consents, behavioural events, orders (RFM),
-- velocity trends and their crossings (signals), home/work evidence. See geo_engine/profile.
-- PostgreSQL is the truth; the in-memory profile state is rebuilt from these tables at start.

-- Socio-demographics (PUT /v1/customers/{id}); each column nullable: not every CRM knows all.
CREATE TABLE customer_profiles (
    customer_id    text PRIMARY KEY,
    first_name     text,
    age_band       text CHECK (age_band IN ('18-24', '25-34', '35-44', '45-54', '55-64', '65+')),
    sex            text CHECK (sex IN ('female', 'male', 'unspecified')),
    csp            text CHECK (csp IN ('1', '2', '3', '4', '5', '6', '7', '8')),  -- INSEE groups
    household_size integer CHECK (household_size BETWEEN 1 AND 20),
    home_postcode  text CHECK (home_postcode ~ '^(0[1-9]|[1-8][0-9]|9[0-8])[0-9]{3}$'),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The customer's current statement per purpose, and every statement ever received.
CREATE TABLE customer_consents (
    customer_id text NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('location', 'sms', 'push', 'email',
                                                  'profiling', 'direct_marketing')),
    status      text NOT NULL CHECK (status IN ('granted', 'denied', 'revoked')),
    at          timestamptz NOT NULL,           -- when the customer said it
    source      text NOT NULL,                  -- where (app, web, store, call_center, ...)
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, purpose)
);
CREATE TABLE consent_log (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL,
    purpose     text NOT NULL,
    status      text NOT NULL,
    at          timestamptz NOT NULL,
    source      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_log_customer ON consent_log (customer_id, id);

-- Behavioural events: posted ones (event_id = the sender's idempotency key, optional) and the
-- store/competitor visits presence produces (presence_event_id: one per visit's dwell).
-- kpis and categories are what the event counted for when received, so the state rebuilds
-- exactly as it was computed.
CREATE TABLE behaviour_events (
    id                bigserial PRIMARY KEY,
    event_id          text UNIQUE,
    presence_event_id bigint UNIQUE,
    customer_id       text NOT NULL,
    type              text NOT NULL CHECK (type IN ('page_view', 'search', 'product_view',
        'click', 'cart_add', 'cart_abandon', 'purchase', 'purchase_cancel', 'info_request',
        'email_open', 'email_click', 'app_open', 'call_center_contact', 'store_visit',
        'competitor_visit')),
    channel           text NOT NULL CHECK (channel IN ('web', 'app', 'email', 'sms', 'store',
        'social', 'call_center')),
    ts                timestamptz NOT NULL,
    properties        jsonb NOT NULL DEFAULT '{}',
    kpis              smallint[] NOT NULL DEFAULT '{}',   -- geo_engine.profile.events.Kpi
    categories        jsonb,                              -- {category: weight}, undecayed
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX behaviour_events_customer ON behaviour_events (customer_id, ts);
CREATE INDEX behaviour_events_ts ON behaviour_events USING brin (ts);

-- One row per order: a resent purchase (same customer and order id) is counted once; a
-- purchase_cancel sets cancelled_at and the order leaves RFM.
CREATE TABLE orders (
    customer_id  text NOT NULL,
    order_id     text NOT NULL,
    ts           timestamptz NOT NULL,
    amount       double precision NOT NULL CHECK (amount >= 0),
    currency     char(3) NOT NULL,
    amount_base  double precision,     -- in the base currency at receipt; NULL: no rate known
    cancelled_at timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, order_id)
);

-- Each customer's current trend per velocity figure (-1 falling, 0 stable, 1 rising), in
-- geo_engine.profile.events.VELOCITY_NAMES order: crossings are judged against it, restarts
-- included. Only customers who ever left "stable" have a row.
CREATE TABLE customer_trends (
    customer_id text PRIMARY KEY,
    trends      smallint[] NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Crossings into rising/falling: the triggers campaigns fire on.
CREATE TABLE velocity_signals (
    id             bigserial PRIMARY KEY,
    customer_id    text NOT NULL,
    figure         text NOT NULL,
    previous_trend text NOT NULL,
    trend          text NOT NULL CHECK (trend IN ('rising', 'falling')),
    latest         double precision NOT NULL,
    previous       double precision NOT NULL,
    pct_change     double precision,            -- NULL: zero baseline
    window_days    integer NOT NULL,
    as_of          timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX velocity_signals_customer ON velocity_signals (customer_id, id);

-- Home/work evidence per H3 cell (geo_engine/profile/places.py), from raw_fixes.
CREATE TABLE customer_place_cells (
    customer_id text NOT NULL,
    kind        smallint NOT NULL CHECK (kind IN (1, 2)),   -- 1 home (night), 2 work
    cell        bigint NOT NULL,
    score       double precision NOT NULL,                  -- decayed hours, fixed reference
    hours       integer NOT NULL,
    days        integer NOT NULL,
    last_hour   bigint NOT NULL,
    last_day    integer NOT NULL,
    PRIMARY KEY (customer_id, kind, cell)
);

-- Progress of background readers (e.g. the raw_fixes position of the places refresher).
CREATE TABLE profile_cursors (
    name  text PRIMARY KEY,
    value timestamptz NOT NULL
);
