"""API keys: random, shown once, stored as a SHA-256 hash; roles and store scopes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from adapters.db import api_keys
from adapters.db.errors import UNAVAILABLE
from adapters.db.types import Pool, Record


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

    def __init__(self, pool: Pool, admin_key: str | None, ttl_s: float = 5.0) -> None:
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
        try:
            grant = await api_keys.live_key(self._pool, digest)
        except UNAVAILABLE:
            if hit is None:
                raise
            # the database is away: a key seen recently stays good meanwhile, so ingest keeps
            # accepting into the log (nobody can revoke a key while the database is down)
            return hit[1]
        if grant is None:
            self._cache.pop(digest, None)
            return None
        p = Principal(grant.key_id, Role(grant.role), frozenset(grant.store_ids))
        self._cache[digest] = (now + self._ttl, p)
        return p

    async def create(self, name: str, role: Role, store_ids: list[str]) -> tuple[str, str]:
        """Return (id, key); the key itself is never stored nor shown again."""
        key = new_key()
        key_id = "key_" + uuid.uuid4().hex[:16]
        await api_keys.insert_key(
            self._pool, key_id, name, str(role), sorted(set(store_ids)), hash_key(key), key[:7]
        )
        return key_id, key

    async def list(self) -> list[Record]:
        return await api_keys.all_keys(self._pool)

    async def revoke(self, key_id: str) -> bool:
        revoked = await api_keys.revoke_key(self._pool, key_id)
        self._cache.clear()
        return revoked
