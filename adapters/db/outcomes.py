"""What happened after an offer was sent (issue 6), on PostgreSQL: redemption codes issued with
their outbox row, redeemed once at the till, and the app's opens and clicks.

Codes are 8 characters of Crockford base32 (40 random bits: ~1e12 codes, so a collision is
rare even with millions issued, and one is retried with a new code anyway). The alphabet has no
I, L, O nor U, so what a cashier types is normalised: case ignored, spaces and dashes dropped,
I/L read as 1 and O as 0."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from geo_engine.decision.codes import ALPHABET as ALPHABET
from geo_engine.decision.codes import CODE_LENGTH as CODE_LENGTH
from geo_engine.decision.codes import new_code

_ISSUE_TRIES = 5
_TYPED = str.maketrans({"I": "1", "L": "1", "O": "0"})
_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_code(typed: str) -> str | None:
    """The canonical code for what was typed, or None when it cannot be one."""
    code = _SEPARATORS.sub("", typed).upper().translate(_TYPED)
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def _recode(v: Any, old: str, new: str) -> Any:
    """`v` with every occurrence of `old` replaced: the code is rendered into the texts."""
    if isinstance(v, str):
        return v.replace(old, new)
    if isinstance(v, dict):
        return {k: _recode(x, old, new) for k, x in v.items()}
    if isinstance(v, list):
        return [_recode(x, old, new) for x in v]
    return v


async def issue_code(
    conn: asyncpg.Connection,
    *,
    outbox_id: int,
    decision_id: int,
    customer_id: str,
    campaign_id: str,
    offer_id: str,
    payload: Mapping[str, Any],
    issued_at: datetime,
    send_after: datetime,
    valid_days: float,
) -> str:
    """Insert the code of `payload` for this outbox row, in the caller's transaction, scoped to
    the offer's stores. A code already taken (by another delivery) is replaced by a new one, in
    the outbox payload too, rather than failing the decision; each try is a savepoint."""
    code = str(payload.get("code") or new_code())
    offer = await conn.fetchval("SELECT doc FROM offers WHERE id = $1", offer_id)
    doc: Mapping[str, Any] = offer or {}
    store_ids = sorted(doc.get("store_ids") or ())
    valid_until = doc.get("valid_until")
    expires_at = code_expiry(
        send_after, None if valid_until is None else float(valid_until), valid_days
    )
    for _ in range(_ISSUE_TRIES):
        try:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO redemption_codes (code, outbox_id, decision_id, customer_id,"
                    " campaign_id, offer_id, store_ids, issued_at, expires_at)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                    code,
                    outbox_id,
                    decision_id,
                    customer_id,
                    campaign_id,
                    offer_id,
                    store_ids,
                    issued_at,
                    expires_at,
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "redemption_codes_pkey":
                raise
            old, code = code, new_code()
            payload = _recode(dict(payload), old, code)
            await conn.execute("UPDATE outbox SET payload = $2 WHERE id = $1", outbox_id, payload)
            continue
        return code
    raise RuntimeError("no free redemption code after retries")  # 40 bits: never in practice


def code_expiry(send_after: datetime, valid_until: float | None, valid_days: float) -> datetime:
    """Redeemable for `valid_days` after the send time, never past the offer's validity."""
    end = send_after + timedelta(days=valid_days)
    if valid_until is not None:
        end = min(end, datetime.fromtimestamp(valid_until, UTC))
    return end


# --- redemptions ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    field: str
    reason: str


async def redeem(
    pool: asyncpg.Pool,
    code: str,
    store_id: str,
    amount: float | None,
    ts: datetime,
    key_id: str,
) -> asyncpg.Record | Refusal:
    """Redeem `code` (canonical) at `store_id`: the redeemed row, or why not. The single
    conditional UPDATE is the lock: of two tills redeeming one code at once exactly one row
    comes back, the other sees it redeemed."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "UPDATE redemption_codes SET redeemed_at = $2, redeemed_store_id = $3, amount = $4,"
            " redeemed_by = $5 WHERE code = $1 AND redeemed_at IS NULL AND expires_at > $2"
            " AND issued_at <= $2 + interval '5 minutes'"
            " AND (cardinality(store_ids) = 0 OR $3 = ANY(store_ids)) RETURNING *",
            code,
            ts,
            store_id,
            None if amount is None else Decimal(str(round(amount, 2))),
            key_id,
        )
        if row is not None:
            return row
        r = await conn.fetchrow("SELECT * FROM redemption_codes WHERE code = $1", code)
    if r is None:
        return Refusal(404, "code", "no such code")
    if r["redeemed_at"] is not None:
        when = r["redeemed_at"].isoformat()
        where = " in this store" if r["redeemed_store_id"] == store_id else ""
        return Refusal(409, "code", f"already redeemed{where} at {when}")
    if r["store_ids"] and store_id not in r["store_ids"]:
        return Refusal(422, "store_id", f"the offer is not valid in store {store_id!r}")
    if r["expires_at"] <= ts:
        return Refusal(410, "code", f"expired at {r['expires_at'].isoformat()}")
    return Refusal(422, "ts", f"before the code was issued ({r['issued_at'].isoformat()})")


# --- interactions -----------------------------------------------------------------------------
async def message_owners(pool: asyncpg.Pool, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """outbox id -> (customer id, campaign id), for the ids that exist."""
    rows = await pool.fetch(
        "SELECT id, customer_id, campaign_id FROM outbox WHERE id = ANY($1::bigint[])",
        sorted(set(ids)),
    )
    return {r["id"]: (r["customer_id"], r["campaign_id"]) for r in rows}


async def add_interactions(
    pool: asyncpg.Pool, rows: Sequence[tuple[int, str, str, str, datetime]]
) -> set[tuple[int, str]]:
    """Insert (outbox id, customer, campaign, kind, ts) rows at once; a (message, kind) already
    recorded is left as it was. Returns the (outbox id, kind) pairs newly stored."""
    if not rows:
        return set()
    async with pool.acquire() as conn:
        got = await conn.fetch(
            "INSERT INTO interactions (outbox_id, customer_id, campaign_id, kind, ts)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
            " $5::timestamptz[]) ON CONFLICT (outbox_id, kind) DO NOTHING"
            " RETURNING outbox_id, kind",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
        )
    return {(r["outbox_id"], r["kind"]) for r in got}


# --- the redemptions list ---------------------------------------------------------------------
_REDEEMED = """
SELECT code, customer_id, campaign_id, offer_id, redeemed_store_id, amount, redeemed_at,
       outbox_id, redeemed_by
FROM redemption_codes r
WHERE redeemed_at IS NOT NULL
  AND ($1::text IS NULL OR campaign_id = $1)
  AND ($2::text[] IS NULL OR redeemed_store_id = ANY($2))
  AND ($3::timestamptz IS NULL OR redeemed_at >= $3)
"""


class UnknownCursor(Exception):
    """`after` names no redemption this caller can see."""


async def list_redemptions(
    pool: asyncpg.Pool,
    *,
    campaign_id: str | None,
    store_ids: Sequence[str] | None,  # None: every store
    since: datetime | None,
    limit: int,
    after: str | None,  # the code of the previous page's last row
) -> list[asyncpg.Record]:
    """Redeemed codes, oldest redemption first (keyset on (redeemed_at, code)). The cursor is
    looked up under the same filters: a staff key cannot probe another store's codes."""
    args: list[Any] = [campaign_id, None if store_ids is None else list(store_ids), since]
    async with pool.acquire() as conn:
        key: tuple[datetime, str] | None = None
        if after is not None:
            got = await conn.fetchrow(_REDEEMED + " AND code = $4", *args, after)
            if got is None:
                raise UnknownCursor(after)
            key = (got["redeemed_at"], got["code"])
        rows: list[asyncpg.Record] = await conn.fetch(
            _REDEEMED + " AND ($4::timestamptz IS NULL OR (redeemed_at, code) > ($4, $5))"
            " ORDER BY redeemed_at, code LIMIT $6",
            *args,
            None if key is None else key[0],
            None if key is None else key[1],
            limit,
        )
    return rows
