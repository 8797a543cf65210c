"""Third-party services faked as real HTTP servers on loopback (h11 over asyncio sockets)."""
