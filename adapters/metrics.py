"""Prometheus metrics of the engine (exposed at GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PINGS = Counter("geo_pings_total", "Pings received, by outcome", ["outcome"])
PING_FLAGS = Counter("geo_ping_flags_total", "Accepted pings ignored for transitions", ["flag"])
EVENTS = Counter("geo_presence_events_total", "Presence events produced", ["type", "source"])
BATCH_SECONDS = Histogram(
    "geo_ping_batch_seconds",
    "Time to process and commit one ping batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GC_FULL_SECONDS = Histogram(
    "geo_gc_full_seconds",
    "Scheduled full garbage collections (adapters/gc_policy.py): the event loop waits this long",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
FENCES = Gauge("geo_fences", "Geofences in the live index")
INDEX_BUILD_SECONDS = Histogram("geo_index_build_seconds", "Time to build the fence index")
CUSTOMERS_INSIDE = Gauge("geo_customers_inside", "Customers inside at least one fence")
# read when scraped (no cost per fix): what the process's memory grows with, customer by customer
CUSTOMERS_HELD = Gauge(
    "geo_customers_in_memory",
    "Customers whose state this process holds: presence (a last fix) or profile (a first visit)",
    ["state"],
)
