-- Delivery (issue 6): the relay's bookkeeping on the outbox, every attempt made, and phone
-- numbers a gateway reported unusable.

-- 'dead' = dead letter: the last attempt failed or the gateway said never to retry; visible
-- (GET /v1/outbox?status=dead) and re-drivable (POST /v1/outbox/{id}/retry)
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'expired', 'dead'));
ALTER TABLE outbox
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,   -- claims so far (a claim = an attempt)
    ADD COLUMN next_attempt_at timestamptz,                  -- after a failure; else send_after
    ADD COLUMN lease_until     timestamptz,                  -- 'sending': the claimer's lease
    ADD COLUMN last_error      text,
    ADD COLUMN provider_id     text,                         -- the gateway's id (Twilio sid...)
    ADD COLUMN sent_at         timestamptz,
    ADD COLUMN finished_at     timestamptz;                  -- sent, expired or dead
CREATE INDEX outbox_due ON outbox ((coalesce(next_attempt_at, send_after)))
    WHERE status = 'pending';
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
CREATE INDEX outbox_by_status ON outbox (status, id);

-- one row per gateway call (or per refusal before calling), for audit and the attempt counts
CREATE TABLE delivery_attempts (
    id          bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    customer_id text NOT NULL,
    attempt     integer NOT NULL,
    gateway     text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('sent', 'retry', 'dead', 'expired')),
    http_status integer,
    error       text,
    ts          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_attempts_by_outbox ON delivery_attempts (outbox_id, id);

-- a phone identity the SMS gateway rejected (21211 invalid, 21614 not SMS-capable): not used
-- again until re-linked
ALTER TABLE identities
    ADD COLUMN invalid_at     timestamptz,
    ADD COLUMN invalid_reason text;

-- app push registration tokens (FCM), newest first per customer; a token the provider reports
-- unregistered is deleted
CREATE TABLE push_tokens (
    token       text PRIMARY KEY,
    customer_id text NOT NULL,
    provider    text NOT NULL DEFAULT 'fcm' CHECK (provider IN ('fcm', 'apns')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_tokens_by_customer ON push_tokens (customer_id, created_at);
