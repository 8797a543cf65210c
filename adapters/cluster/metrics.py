"""Prometheus metrics of partitioned ingest."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OWNED = Gauge("geo_cluster_partitions_owned", "Partitions this process owns")
LAG = Gauge("geo_cluster_partition_lag", "Messages after the last applied one", ["partition"])
APPLIED = Counter("geo_cluster_commands_applied_total", "Commands applied by this owner")
FAILED = Counter("geo_cluster_commands_failed_total", "Commands that failed", ["reason"])
PUBLISHED = Counter(
    "geo_cluster_parts_published_total", "Command parts published to the log", ["outcome"]
)
