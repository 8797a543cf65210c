"""The engine core. Pure: no asyncio, asyncpg, httpx or fastapi (tests/unit/test_purity.py)."""
