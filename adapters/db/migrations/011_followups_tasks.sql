-- Issue 5: follow-ups (escalation) and call-center tasks.
--
-- decisions.trigger_kind has no CHECK (presence | velocity | event | followup): nothing to widen.
-- A follow-up is decided at most once per offer sent, even with several escalation runners: the
-- decision row is unique per (customer, esc:<outbox id>) (its outbox row is unique anyway).
CREATE UNIQUE INDEX decisions_followup_once ON decisions (customer_id, trigger_instance)
    WHERE trigger_kind = 'followup';

-- A campaign whose action is call_center_task: its winning decision (channel 'call_center')
-- writes a task instead of an outbox row, in the same transaction.
CREATE TABLE call_center_tasks (
    id               bigserial PRIMARY KEY,
    customer_id      text NOT NULL,
    campaign_id      text NOT NULL,
    offer_id         text,                          -- what the agent may propose
    decision_id      bigint NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
    trigger_instance text NOT NULL,
    reason           text NOT NULL,                 -- why to call: the trigger, segment, RFM
    priority         integer NOT NULL DEFAULT 0,    -- the campaign's priority
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'done', 'cancelled')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    due_at           timestamptz NOT NULL,
    done_at          timestamptz,
    outcome          text,                          -- reached | no_answer | declined | ...
    note             text,
    done_by          text,                          -- the API key id that closed it
    UNIQUE (customer_id, campaign_id, trigger_instance),  -- one task per trigger, as the outbox
    CHECK ((status = 'open') = (done_at IS NULL))
);
CREATE INDEX call_center_tasks_queue ON call_center_tasks (status, priority DESC, due_at);
-- marketing pressure counts a customer's calls of the last week
CREATE INDEX call_center_tasks_by_customer ON call_center_tasks (customer_id, created_at);
