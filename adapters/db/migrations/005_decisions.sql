-- The decision module (geo_engine/decision): offers and campaigns as JSON documents (validated
-- by the core at save; a few columns pulled out for queries), suppression lists, every decision
-- with its explanation, and the outbox the delivery relay sends from.

CREATE TABLE offers (
    id          text PRIMARY KEY,
    doc         jsonb NOT NULL,                  -- the document as accepted (API shape)
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaigns (
    id          text PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('draft', 'live', 'paused', 'disabled')),
    doc         jsonb NOT NULL,
    -- why the engine disabled it (an evaluation error), for the marketer to read
    disabled_reason text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- campaign -> offer: an offer a campaign may give cannot be deleted under it
CREATE TABLE campaign_offers (
    campaign_id text NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    offer_id    text NOT NULL REFERENCES offers (id),
    PRIMARY KEY (campaign_id, offer_id)
);

-- Suppression lists (bad payers, partners' opt-outs...): imported by admins, honoured by every
-- campaign that names the list, and by all when configured (GEO_ENGINE_DECISION_SUPPRESSION_LISTS)
CREATE TABLE suppression_entries (
    list_name   text NOT NULL,
    customer_id text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_name, customer_id)
);
CREATE INDEX suppression_by_customer ON suppression_entries (customer_id);

-- Every decision, with the reason for each campaign considered (traces).
CREATE TABLE decisions (
    id               bigserial PRIMARY KEY,
    customer_id      text NOT NULL,
    trigger_kind     text NOT NULL,              -- presence | velocity | event
    trigger_name     text NOT NULL,              -- enter/dwell/exit, rising/falling, event type
    trigger_instance text NOT NULL,              -- pe:<presence event id>, vel:..., ...
    presence_event_id bigint,
    ts               timestamptz NOT NULL,       -- the trigger's time
    outcome          text NOT NULL CHECK (outcome IN ('send', 'held', 'holdout', 'control',
                                                      'none')),
    campaign_id      text,
    offer_id         text,
    channel          text,
    send_after       timestamptz,
    expires_at       timestamptz,
    traces           jsonb NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_by_customer ON decisions (customer_id, ts);
CREATE INDEX decisions_by_campaign ON decisions (campaign_id, ts);

-- The outbox: one row per offer to send. The idempotency key is unique per (customer,
-- campaign, trigger instance) and is the key the gateway de-duplicates on.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    decision_id      bigint NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
    idempotency_key  text NOT NULL UNIQUE,
    customer_id      text NOT NULL,
    campaign_id      text NOT NULL,
    trigger_instance text NOT NULL,
    offer_id         text NOT NULL,
    channel          text NOT NULL,
    payload          jsonb NOT NULL,             -- rendered content, per channel
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'expired')),
    send_after       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, campaign_id, trigger_instance),
    CHECK (expires_at > send_after)
);
CREATE INDEX outbox_pending ON outbox (send_after) WHERE status = 'pending';
-- marketing pressure reads a customer's offers of the last week
CREATE INDEX outbox_by_customer ON outbox (customer_id, send_after);
