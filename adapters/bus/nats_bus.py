"""The bus seam: NATS JetStream through nats-py, and nothing else speaks to NATS.

- the log: one stream, subject `<prefix>.in.<partition>`; a partition's messages keep their
  order; `Nats-Msg-Id` makes a resent part a no-op inside the duplicate window;
- feeds: an owner reads one partition from a stream sequence on (an ephemeral pull consumer,
  pulled on an inbox of ours: pull.py; the position that counts is the one committed in
  PostgreSQL, not the consumer's);
- replies: a worker answers `?wait=true` requests on the API process's inbox;
- control: fire-and-forget broadcasts (fences, campaigns or links changed) to every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from adapters.bus.acks import MSG_ID, AckedPublisher, AckError
from adapters.bus.pull import REPLY_HEADER, PartitionFeed

log = logging.getLogger(__name__)

ControlHandler = Callable[[str, bytes], Awaitable[None]]


class BusUnavailable(Exception):
    """The bus did not confirm in time: nothing may be promised to the client (503)."""


class NatsBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        partitions: int,
        name: str,
        on_control: ControlHandler | None = None,
        max_age_s: float = 7 * 86_400.0,
        duplicate_window_s: float = 900.0,
        publish_timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.partitions = partitions
        self.stream = f"{prefix.upper().replace('.', '_')}_INGEST"
        self._name = name
        self._on_control = on_control
        self._max_age_s = max_age_s
        self._dup_window_s = duplicate_window_s
        self._timeout_s = publish_timeout_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._inbox = ""
        self._acks: AckedPublisher | None = None
        self._waiting: dict[str, tuple[asyncio.Future[list[bytes]], list[bytes], int]] = {}

    # -- connection ----------------------------------------------------------------------
    async def connect(self, *, attempts: int | None = None) -> None:
        """Connect (retrying while the server is not up yet), create or update the stream."""
        tried = 0
        while True:
            try:
                self._nc = await nats.connect(
                    self.url,
                    name=self._name,
                    max_reconnect_attempts=-1,  # a restarted bus is waited for, never given up
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=self._error,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                )
                break
            except (OSError, nats.errors.Error) as exc:
                tried += 1
                if attempts is not None and tried >= attempts:
                    raise BusUnavailable(f"NATS at {self.url}: {exc}") from exc
                log.warning("NATS at %s not reachable (%s); retrying", self.url, exc)
                await asyncio.sleep(min(2.0, 0.2 * tried))
        self._js = self._nc.jetstream(timeout=self._timeout_s)
        await self._ensure_stream()
        self._acks = AckedPublisher(self._nc)
        await self._acks.start()
        self._inbox = f"_INBOX.geo.{uuid.uuid4().hex}"
        await self._nc.subscribe(self._inbox + ".*", cb=self._on_reply)
        if self._on_control is not None:
            await self._nc.subscribe(f"{self.prefix}.control.*", cb=self._control)

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        cfg = StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.in.*"],
            storage=StorageType.FILE,
            max_age=self._max_age_s,
            duplicate_window=self._dup_window_s,
        )
        try:
            await self._js.add_stream(cfg)
        except nats.js.errors.BadRequestError:  # exists with another config: bring it up to date
            await self._js.update_stream(cfg)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def close(self) -> None:
        for fut, _, _ in self._waiting.values():
            if not fut.done():
                fut.cancel()
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _error(self, exc: Exception) -> None:
        log.warning("NATS: %s", exc)

    async def _disconnected(self) -> None:
        log.warning("NATS disconnected from %s", self.url)

    async def _reconnected(self) -> None:
        log.info("NATS reconnected to %s", self.url)
        if self._on_control is not None:  # broadcasts may have been missed meanwhile
            try:
                await self._on_control("reconnected", b"")
            except Exception:
                log.exception("resync after reconnect failed")

    # -- the log -------------------------------------------------------------------------
    def subject(self, partition: int) -> str:
        return f"{self.prefix}.in.{partition}"

    async def publish(
        self, parts: Sequence[tuple[int, bytes, str]], reply_to: str | None
    ) -> list[bool]:
        """Publish (partition, payload, msg_id) each; durable once this returns. True where the
        stream already held that `msg_id` (a resend). All are sent before any ack is awaited,
        in one socket write (bus/acks.py): one round trip for a request's parts."""
        if self._acks is None or not self.connected:
            raise BusUnavailable("the bus is not connected")
        messages = []
        for partition, payload, msg_id in parts:
            headers = {MSG_ID: msg_id}
            if reply_to is not None:
                headers[REPLY_HEADER] = reply_to
            messages.append((self.subject(partition), payload, headers))
        try:
            return await self._acks.publish(messages, self._timeout_s)
        except (TimeoutError, AckError, nats.errors.Error, OSError) as exc:
            raise BusUnavailable(f"the stream did not confirm: {type(exc).__name__}") from exc

    async def feed(self, partition: int, start_seq: int) -> PartitionFeed:
        assert self._js is not None
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start_seq),
            ack_policy=AckPolicy.ALL,
            ack_wait=60.0,
            inactive_threshold=30.0,  # a dead owner's consumer goes away by itself
            max_ack_pending=100_000,
        )
        assert self._nc is not None
        return await PartitionFeed.open(
            self._nc, self._js, self.stream, self.subject(partition), cfg
        )

    async def pending(self) -> int:
        """Messages held by the stream (for /v1/cluster)."""
        assert self._js is not None
        info = await self._js.stream_info(self.stream)
        return int(info.state.messages)

    async def head_seqs(self, partitions: int) -> list[int]:
        """Each partition's last sequence in the stream (0: none yet): an owner whose applied
        sequence reached it is caught up, whatever its last report said."""
        assert self._js is not None
        js = self._js

        async def head(p: int) -> int:
            try:
                return int((await js.get_last_msg(self.stream, self.subject(p))).seq or 0)
            except nats.js.errors.NotFoundError:
                return 0

        return list(await asyncio.gather(*(head(p) for p in range(partitions))))

    # -- replies -------------------------------------------------------------------------
    def expect(self, parts: int) -> tuple[str, asyncio.Future[list[bytes]]]:
        """A reply subject and the future of its `parts` replies."""
        token = uuid.uuid4().hex
        fut: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._waiting[token] = (fut, [], parts)
        return f"{self._inbox}.{token}", fut

    def forget(self, subject: str) -> None:
        self._waiting.pop(subject.rsplit(".", 1)[-1], None)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject.rsplit(".", 1)[-1]
        entry = self._waiting.get(token)
        if entry is None:
            return  # the request timed out, or a replay answers a request long gone
        fut, got, parts = entry
        got.append(msg.data)
        if len(got) >= parts:
            self._waiting.pop(token, None)
            if not fut.done():
                fut.set_result(got)

    async def reply(self, subject: str, payload: bytes) -> None:
        if self._nc is None:
            return
        with contextlib.suppress(Exception):  # the requester may be gone: the effect stands
            await self._nc.publish(subject, payload)

    # -- reads from owners -----------------------------------------------------------------
    async def serve_reads(
        self, partition: int, handler: Callable[[bytes], Awaitable[bytes]]
    ) -> Callable[[], Awaitable[None]]:
        """Answer reads of one partition's customers (its owner's memory); returns the stop."""
        assert self._nc is not None

        async def answer(msg: Msg) -> None:
            try:
                await msg.respond(await handler(msg.data))
            except Exception:
                log.exception("read on partition %d failed", partition)

        sub = await self._nc.subscribe(f"{self.prefix}.read.{partition}", cb=answer)

        async def stop() -> None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

        return stop

    async def read(self, partition: int, payload: bytes) -> bytes:
        """A read answered by the partition's owner; BusUnavailable when none answers in time
        (the bus is away, or the partition is changing owner)."""
        if self._nc is None or not self.connected:
            raise BusUnavailable("the bus is not connected")
        try:
            msg = await self._nc.request(
                f"{self.prefix}.read.{partition}", payload, timeout=self._timeout_s
            )
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusUnavailable(f"no owner answered: {type(exc).__name__}") from exc
        data: bytes = msg.data
        return data

    # -- control -------------------------------------------------------------------------
    async def broadcast(self, kind: str, payload: bytes = b"") -> None:
        if self._nc is None:
            return
        with contextlib.suppress(Exception):  # receivers also re-read on (re)connect
            await self._nc.publish(f"{self.prefix}.control.{kind}", payload)

    async def _control(self, msg: Msg) -> None:
        assert self._on_control is not None
        kind = msg.subject.rsplit(".", 1)[-1]
        try:
            await self._on_control(kind, msg.data)
        except Exception:
            log.exception("control message %s failed", kind)
