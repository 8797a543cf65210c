-- Closing the loop (issue 6): what happened after an offer was sent. One redemption code per
-- delivered offer (written with its outbox row), push opens and clicks reported by the app.
-- Escalation (issue 5) reads both: an offer with no interaction nor redemption may get a
-- follow-up on the next channel.

CREATE TABLE redemption_codes (
    code              text PRIMARY KEY,              -- the code printed in the offer
    outbox_id         bigint NOT NULL UNIQUE REFERENCES outbox (id) ON DELETE CASCADE,
    decision_id       bigint NOT NULL,
    customer_id       text NOT NULL,
    campaign_id       text NOT NULL,
    offer_id          text NOT NULL,
    store_ids         text[] NOT NULL DEFAULT '{}', -- the offer's store scope; empty = any store
    issued_at         timestamptz NOT NULL DEFAULT now(), -- the decision's trigger time
    -- no redemption after this: send time + redemption_valid_days, capped by the offer's end
    expires_at        timestamptz NOT NULL,
    redeemed_at       timestamptz,
    redeemed_store_id text,
    amount            numeric(12, 2),                -- basket value at the till (revenue)
    redeemed_by       text                           -- the API key id that redeemed it
);
CREATE INDEX redemption_codes_by_campaign ON redemption_codes (campaign_id, redeemed_at);
CREATE INDEX redemption_codes_by_customer ON redemption_codes (customer_id);

CREATE TABLE interactions (
    id          bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    customer_id text NOT NULL,
    campaign_id text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('opened', 'clicked')),
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (outbox_id, kind)                         -- an app retrying its report counts once
);
CREATE INDEX interactions_by_campaign ON interactions (campaign_id, kind);
CREATE INDEX interactions_by_customer ON interactions (customer_id);
