"""Delivery: the outbox relay and the gateways it sends through (issue 6)."""
