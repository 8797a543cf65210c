"""What every customer-keyed route shares: the idempotency key, publishing to the log, waiting
for the owners when asked, and their refusals as the API's errors."""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Mapping
from typing import Annotated, TypeVar

from fastapi import Header, Query, Request

from adapters.api.errors import ApiError, Pending, field_error
from adapters.auth import Principal
from adapters.cluster import commands as c
from adapters.cluster.submit import Submitted
from adapters.codecs.fix_columns import Fixes, fixes_by_part
from adapters.codecs.pings import DecodedPings
from adapters.composition import Services
from adapters.services.presence import IngestResult

T = TypeVar("T")

IDEMPOTENCY_HEADER = "Idempotency-Key"
_PROCESS = uuid.uuid4().hex[:16] + "-"  # never a client's key: those carry the API key's id
_COUNT = itertools.count()


def _new_process() -> None:
    # a forked child must not reuse its parent's prefix: the log would drop its requests as
    # resends of the parent's
    global _PROCESS
    _PROCESS = uuid.uuid4().hex[:16] + "-"


os.register_at_fork(after_in_child=_new_process)
_INDEX = re.compile(r"\[(\d+)\]$")  # a refusal naming a row: identifiers[2]
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII: it becomes part of Nats-Msg-Id

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        description="Resending a request with the same key (e.g. after a timeout or a 503)"
        " adds nothing the log already holds",
    ),
]
Wait = Annotated[
    bool,
    Query(
        description="Answer after the partition owners applied the request (events, decisions)"
        " rather than once it is durable; on timeout the answer is 202 and it still applies"
    ),
]


def log_key(given: str | None, principal: Principal) -> str:
    """The request's key in the log: the client's Idempotency-Key (`given`), per API key, or a
    new one (this process's random prefix and a count: unique, and cheaper than a uuid4)."""
    if given is None:
        return f"{_PROCESS}{next(_COUNT):x}"
    if not _KEY.match(given):
        raise field_error(422, IDEMPOTENCY_HEADER, "1 to 200 visible ASCII characters")
    return f"{principal.key_id}.{given}"


async def submit(
    svc: Services,
    request: Request,
    principal: Principal,
    parts: Mapping[int, c.Command],
    *,
    wait: bool,
) -> Submitted:
    """Raises BusUnavailable (503 + Retry-After) when the log did not confirm every part."""
    key = log_key(request.headers.get(IDEMPOTENCY_HEADER), principal)
    return await svc.ingest.submit(parts, key=key, wait=wait)


async def submit_one(
    svc: Services, request: Request, principal: Principal, customer_id: str, cmd: c.Command
) -> c.Reply | None:
    """A single-customer command, waited for: its owner's reply, or None when it did not come
    in time (or the request was a resend): the command is durable and will apply."""
    part = {svc.ingest.partition(customer_id): cmd}
    done = await submit(svc, request, principal, part, wait=True)
    if done.resent:
        raise Pending(duplicate=True)
    return None if not done.replies else done.replies[0]


async def applied(
    svc: Services,
    request: Request,
    principal: Principal,
    customer_id: str,
    cmd: c.Command,
    type_: type[T],
) -> T:
    """A single-customer command's result once its owner applied it; its refusal raised as
    the API's error; Pending (202) when it took longer than the wait."""
    reply = await submit_one(svc, request, principal, customer_id, cmd)
    if reply is None:
        raise Pending()
    return result(reply, type_)


def result(reply: c.Reply, type_: type[T]) -> T:
    """The owner's result, or its refusal raised as the API's error."""
    if reply.status == 202:  # applied, its result unknown: say what is sure
        raise Pending()
    if reply.status >= 400:
        if reply.field:
            at = _INDEX.search(reply.field)
            index = None if at is None else int(at.group(1))
            raise field_error(reply.status, reply.field, reply.reason, index)
        raise ApiError(reply.status, reply.reason)
    return c.result_of(reply, type_)


def ping_parts(svc: Services, decoded: DecodedPings) -> dict[int, Fixes]:
    """The good rows, each with its customer resolved, split by partition (order kept)."""
    rows = decoded.rows
    customer_for = svc.runtime.customer_for
    cids = [
        r.customer_id if r.customer_id is not None else customer_for(r.device_id or "")
        for r in rows
    ]
    return fixes_by_part(decoded, cids, svc.ingest.partitions_of(cids))


def merged_ingest(replies: list[c.Reply]) -> IngestResult:
    """The owners' results of one request's parts, as one (rows by their request index)."""
    accepted = 0
    flags: list[tuple[int, object]] = []
    events = []
    dropped: list[tuple[int, str]] = []
    for reply in replies:
        r = result(reply, IngestResult)
        accepted += r.accepted
        flags += r.flags
        events += r.events
        dropped += r.dropped
    flags.sort(key=lambda x: x[0])
    events.sort(key=lambda x: (x[1].ts, x[0]))  # parts commit in any order: by time
    return IngestResult(accepted, flags, events, dropped)  # type: ignore[arg-type]
