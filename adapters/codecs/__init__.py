"""Ingestion: decoding client payloads into fix batches, and the presence runtime."""
