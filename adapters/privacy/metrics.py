"""Privacy counters, in a module of their own so the hot path can import them without cycles."""

from __future__ import annotations

from prometheus_client import Counter

DROPPED = Counter(
    "geo_location_dropped_total",
    "Location signals neither processed nor stored for lack of location consent",
    ["signal", "reason"],  # signal: ping, beacon, nfc
)
PURGED = Counter(
    "geo_retention_purged_rows_total", "Rows deleted by the retention purge", ["table"]
)
ERASURES = Counter("geo_customer_erasures_total", "Customers erased (GDPR art. 17)")
