"""A partition owner's consuming side: the commands of each owned partition applied in order,
each run committed with its log position, then acked and answered.

Fetched commands are decoded once; consecutive fix batches that no client waits for form one run
applied as one batch in one transaction (group commit). A command that keeps failing for no
outage becomes a dead letter in the transaction that moves the partition past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec

from adapters.assembly import Engine
from adapters.bus.nats_bus import NatsBus
from adapters.bus.pull import Delivered
from adapters.cluster import commands as c
from adapters.cluster.checkpoint import Position, applying
from adapters.cluster.handlers import CommandHandlers, Handled
from adapters.cluster.metrics import APPLIED, FAILED, LAG
from adapters.codecs.fix_columns import Fixes, concat
from adapters.db.errors import UNAVAILABLE
from geo_engine.cluster_ports import Fenced, PartitionLeases
from geo_engine.ports import Transactions

log = logging.getLogger(__name__)

_RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_POISON_TRIES = 5  # a command failing this often for no outage becomes a dead letter


@dataclass
class Owned:
    """A partition this worker owns: its lease's epoch, the last applied sequence, its
    consumer."""

    epoch: int
    applied: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    stop_reads: Callable[[], Awaitable[None]] | None = None


class _GaveUp(Exception):
    """A merged run failed for no outage: its commands are applied one by one."""


_Item = tuple[Delivered, c.Command | msgspec.DecodeError]  # not decodable: parked when applied


RUN_FIXES = 2048  # a run's fixes at most: what one transaction holds the event loop for


def _runs(batch: list[Delivered], max_fixes: int = RUN_FIXES) -> list[list[_Item]]:
    """The fetched commands in order, decoded once; consecutive fix batches without a waiting
    client grouped, up to `max_fixes` a run (a waited-for command, or any other kind, stays
    alone: its reply is its own). The bound keeps an owner that catches up on a backlog from
    holding its process's event loop, which the API answers on in role all, for a whole fetch:
    256 commands of 500 fixes took seconds as one run."""
    out: list[list[_Item]] = []
    merging = False
    size = 0
    for d in batch:
        try:
            cmd: c.Command | msgspec.DecodeError = c.decode_command(d.data)
        except msgspec.DecodeError as exc:
            cmd = exc
        mergeable = d.reply_to is None and isinstance(cmd, Fixes)
        n = len(cmd) if isinstance(cmd, Fixes) else 0
        if mergeable and merging and size + n <= max_fixes:
            out[-1].append((d, cmd))
            size += n
        else:
            out.append([(d, cmd)])
            size = n
        merging = mergeable
    return out


class PartitionConsumer:
    def __init__(
        self,
        *,
        bus: NatsBus,
        leases: PartitionLeases,
        engine: Engine,
        handlers: CommandHandlers,
        transactions: Transactions,  # the checkpointed ones the services use
        batch: int,
        linger_s: float,  # WorkerConfig.linger_s
        lags: dict[int, int],  # shared with the worker, which reports them
    ) -> None:
        self.bus = bus
        self.leases = leases
        self.engine = engine
        self.handlers = handlers
        self.transactions = transactions
        self.batch = batch
        self.linger_s = linger_s
        self.lags = lags

    async def run(self, p: int, o: Owned) -> None:
        """Apply the partition's commands until stopped or fenced. Whatever else fails, the
        loop starts again from the committed position: a partition never stalls silently."""
        while not o.stop.is_set():
            try:
                await self._consume_once(p, o)
                return
            except Exception:
                log.exception("partition %d: consumer failed; resuming", p)
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):  # what storage says was applied, if it can
                    o.applied = max(o.applied, await self.leases.applied_seq(p))

    async def _consume_once(self, p: int, o: Owned) -> None:
        feed = None
        try:
            while not o.stop.is_set():
                try:
                    if feed is None:
                        feed = await self.bus.feed(p, o.applied + 1)
                    batch = await feed.fetch(self.batch, 0.5)
                except Exception as exc:  # the bus restarted: a new consumer from applied + 1
                    log.warning("partition %d: feed lost (%s)", p, type(exc).__name__)
                    if feed is not None:
                        await feed.close()
                    feed = None
                    await asyncio.sleep(0.5)
                    continue
                if not batch:
                    self.lags[p] = 0
                    LAG.labels(str(p)).set(0)
                    continue
                last = None
                for run in _runs([d for d in batch if d.seq > o.applied]):  # else: redelivered
                    handled = await self._apply_run(p, o, run)
                    d = run[-1][0]
                    o.applied = d.seq
                    self.lags[p] = d.lag
                    LAG.labels(str(p)).set(d.lag)
                    APPLIED.inc(len(run))
                    last = d
                    if handled.links:  # before the reply: the client's next fix is routed anew
                        await self.bus.broadcast("links", c.encode(list(handled.links)))
                    if d.reply_to:
                        await self.bus.reply(d.reply_to, handled.reply)
                    if o.stop.is_set():
                        break
                if last is not None:
                    await feed.ack(last)
                if self._trickle(batch):
                    await asyncio.sleep(self.linger_s)
        except Fenced:
            log.warning("partition %d: fenced (another owner took it)", p)
        finally:
            if feed is not None:
                await feed.close()

    def _trickle(self, batch: list[Delivered]) -> bool:
        """A caught-up partition got fewer commands than a fetch holds, none waited for: the next
        ones may gather for `linger_s` and share a commit (at 1 k single fixes/s, a commit per
        fix was the owner's largest cost, on the event loop the API answers on). A batch with
        a waited-for command, or a backlog (lag), never starts a linger: catching up pays
        nothing, and a `?wait=true` caller at most one `linger_s` if it lands during one."""
        return (
            self.linger_s > 0
            and len(batch) < self.batch
            and batch[-1].lag == 0
            and all(d.reply_to is None for d in batch)
        )

    async def _apply_run(self, p: int, o: Owned, run: list[_Item]) -> Handled:
        """A run of fix batches nobody waits for is applied as one batch, in one transaction
        that moves the position past all of them: the cost of a commit is paid per fetch, not
        per request (group commit). A run that fails for no outage is applied one by one, so
        only a bad command is parked."""
        if len(run) == 1:
            return await self._apply(p, o, *run[0])
        merged = concat([cmd for _, cmd in run if isinstance(cmd, Fixes)])  # all: _runs
        try:
            return await self._apply(p, o, run[-1][0], merged, retries=1)
        except _GaveUp:
            log.warning("partition %d: a run of %d failed; applying one by one", p, len(run))
        for d, cmd in run:
            handled = await self._apply(p, o, d, cmd)
            o.applied = d.seq
        return handled

    async def _apply(
        self,
        p: int,
        o: Owned,
        d: Delivered,
        cmd: c.Command | msgspec.DecodeError,
        *,
        retries: int | None = None,
    ) -> Handled:
        if isinstance(cmd, msgspec.DecodeError):  # not ours to fix here: kept, and said
            return await self._park(p, o, d, cmd)
        tries = 0
        while True:
            pos = Position(p, o.epoch, d.seq)
            try:
                with applying(pos):
                    handled = await self.handlers.handle(cmd)
                    if not pos.recorded:  # nothing committed: the position moves alone
                        async with self.transactions.transaction():
                            pass
                return handled
            except Fenced:
                raise
            except UNAVAILABLE as exc:
                wait = _RETRY_S[min(tries, len(_RETRY_S) - 1)]
                log.warning(
                    "partition %d: database unavailable (%s), retry in %.1f s", p, exc, wait
                )
                if await self._landed(p, d.seq, wait):
                    return Handled(c.reply_applied())
            except Exception as exc:
                FAILED.labels("error").inc()
                log.exception("partition %d seq %d: command failed", p, d.seq)
                if retries is not None and tries + 1 >= retries:
                    raise _GaveUp from exc
                if tries + 1 >= _POISON_TRIES:
                    return await self._park(p, o, d, exc)
                wait = _RETRY_S[min(tries, len(_RETRY_S) - 1)]
            tries += 1
            if o.stop.is_set():
                raise Fenced(p, o.epoch)  # handing over: the next owner retries it
            await asyncio.sleep(wait)

    async def _landed(self, p: int, seq: int, wait: float) -> bool:
        """Whether the failed attempt's COMMIT reached the database before the connection died
        (the position commits with the effects, so the position says). Then memory follows
        storage: presence re-read its touched customers already; profiles reload."""
        while True:
            try:
                landed = await self.leases.applied_seq(p) >= seq
                break
            except UNAVAILABLE:
                await asyncio.sleep(wait)
        if landed:
            log.warning("partition %d seq %d: committed before the connection died", p, seq)
            while True:  # memory must follow what was committed before going on
                try:
                    await self.engine.profiles.reload()
                    break
                except UNAVAILABLE:
                    await asyncio.sleep(wait)
        return landed

    async def _park(self, p: int, o: Owned, d: Delivered, exc: Exception) -> Handled:
        """A command that fails for no outage would stall its partition forever: it is kept
        as a dead letter, in the transaction that moves the partition past it."""
        FAILED.labels("dead_letter").inc()
        log.error("partition %d seq %d: dead-lettered after %d failures", p, d.seq, _POISON_TRIES)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        with applying(Position(p, o.epoch, d.seq)):
            async with self.transactions.transaction() as tx:
                await self.leases.park(tx, p, d.seq, d.data, error)
        reason = "the command could not be applied; it is kept as a dead letter"
        return Handled(c.reply_refused(500, "", reason))
