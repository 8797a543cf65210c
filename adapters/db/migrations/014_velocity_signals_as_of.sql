-- A backtest of a velocity campaign reads the crossings of its time range (adapters/ingest/
-- backtest.py): without an index on as_of it scans every crossing ever stored. BRIN, as on
-- behaviour_events.ts: rows arrive roughly in as_of order, and the index stays tiny.
CREATE INDEX velocity_signals_as_of ON velocity_signals USING brin (as_of);
