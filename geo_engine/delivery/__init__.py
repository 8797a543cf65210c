"""Delivery rules, pure: when the relay may send a row again and what a gateway's answer makes
of it (retry.py, config.py), the order of the statuses a provider reports (status.py), and what
an SMS a customer sent us asks for (keywords.py). The adapters (adapters/delivery) do the I/O."""
