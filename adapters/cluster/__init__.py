"""Partitioned ingest: commands on the log (NATS JetStream), partition owners, the API side."""
