-- Closing the loop, Twilio (issue 6): what the provider said happened to a sent SMS (status
-- callbacks), and the SMS customers sent us (STOP / START). Routes: adapters/api/routes/callbacks.py.

-- the latest delivery status per outbox row; it only moves forward (queued < sending < sent <
-- delivered/undelivered/failed < read): a late 'sent' after 'delivered' is logged, not applied
ALTER TABLE outbox
    ADD COLUMN delivery_status     text,
    ADD COLUMN delivery_status_at  timestamptz,
    ADD COLUMN delivered_at        timestamptz,
    ADD COLUMN delivery_error_code integer;
-- callbacks find their row by the provider's id (the Twilio MessageSid)
CREATE INDEX outbox_by_provider_id ON outbox (provider_id) WHERE provider_id IS NOT NULL;

-- every status callback received, applied or not (audit; regressions show as applied = false).
-- No phone number: To/From stay out.
CREATE TABLE delivery_status_log (
    id          bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    customer_id text NOT NULL,
    provider_id text NOT NULL,
    status      text NOT NULL,
    error_code  integer,
    applied     boolean NOT NULL,
    ts          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_status_log_by_outbox ON delivery_status_log (outbox_id, id);

-- every inbound SMS, without its text nor the raw number: the keyword matched and what it did.
-- A known sender is named by customer id (erased with the customer); an unknown one only by a
-- pseudonymous hash of the number. Unique message sid: a replayed request changes nothing.
CREATE TABLE inbound_messages (
    id          bigserial PRIMARY KEY,
    message_sid text NOT NULL UNIQUE,
    customer_id text,
    phone_hash  text,
    keyword     text,
    action      text NOT NULL CHECK (action IN ('opt_out', 'opt_in', 'help', 'none')),
    ts          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbound_messages_by_customer ON inbound_messages (customer_id)
    WHERE customer_id IS NOT NULL;
