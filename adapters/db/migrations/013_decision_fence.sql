-- The fence a decision's trigger happened at: the presence event's fence, or for a behavioural
-- trigger (a search in store, a cart abandoned near one) the store it was located at. A
-- follow-up of the offer (adapters/delivery/escalation.py) reads its store, time zone and
-- name from it; before, only presence-triggered offers had one (through presence_event_id).
ALTER TABLE decisions ADD COLUMN fence_id text;
UPDATE decisions d SET fence_id = p.geofence_id
  FROM presence_events p WHERE p.id = d.presence_event_id AND d.fence_id IS NULL;
