-- A store's events since its local midnight (GET /v1/stores/{id}/presence, the console's live
-- counts, re-read at each change): by fence and time, with the type in the index so the count
-- is an index-only scan, not a walk through every event the fence ever had.
CREATE INDEX presence_events_fence_ts ON presence_events (geofence_id, ts) INCLUDE (type);
