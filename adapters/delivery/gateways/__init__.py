"""Gateways: one interface (base.Gateway), one httpx client each, transport injectable."""
