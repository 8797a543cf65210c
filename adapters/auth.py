"""API keys: random, shown once, stored as a SHA-256 hash; roles and store scopes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg


class Role(StrEnum):
    ADMIN = "admin"
    INGEST = "ingest"
    STAFF = "staff"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    store_ids: frozenset[str] = field(default_factory=frozenset)

    def may_manage_store(self, store_id: str | None) -> bool:
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.STAFF and store_id is not None and store_id in self.store_ids


def hash_key(key: str) -> str:
    # keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "ge_" + secrets.token_urlsafe(32)


class KeyRing:
    """Resolves a presented key to a principal; caches hits briefly so revocation lands fast."""

    def __init__(self, pool: asyncpg.Pool, admin_key: str | None, ttl_s: float = 5.0) -> None:
        self._pool = pool
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def principal(self, key: str) -> Principal | None:
        digest = hash_key(key)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal("bootstrap-admin", Role.ADMIN)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, role, store_ids FROM api_keys WHERE key_hash = $1"
                " AND revoked_at IS NULL",
                digest,
            )
        if row is None:
            self._cache.pop(digest, None)
            return None
        p = Principal(row["id"], Role(row["role"]), frozenset(row["store_ids"]))
        self._cache[digest] = (now + self._ttl, p)
        return p

    async def create(self, name: str, role: Role, store_ids: list[str]) -> tuple[str, str]:
        """Return (id, key); the key itself is never stored nor shown again."""
        key = new_key()
        key_id = "key_" + uuid.uuid4().hex[:16]
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO api_keys (id, name, role, store_ids, key_hash, key_prefix)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                key_id,
                name,
                str(role),
                sorted(set(store_ids)),
                hash_key(key),
                key[:7],
            )
        return key_id, key

    async def list(self) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT id, name, role, store_ids, key_prefix, created_at, revoked_at"
                " FROM api_keys ORDER BY created_at"
            )
        return rows

    async def revoke(self, key_id: str) -> bool:
        async with self._pool.acquire() as conn:
            status: str = await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                key_id,
            )
        self._cache.clear()
        return status.endswith(" 1")
