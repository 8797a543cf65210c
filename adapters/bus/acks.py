"""JetStream publishes with their acks on one inbox of ours.

nats-py's `publish_async` awaits `asyncio.wait_for` on a semaphore for every message: each part of
a request yields to the event loop, so the flusher writes each part alone (one socket write per
part, ~14% of an API process's CPU for 500-fix requests of ~16 parts) and a task is made per
part. Here a request's parts are queued with the core `publish`, which does not yield: they
leave in one write, and their acks come back on one subscription, decoded with msgspec.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

MSG_ID = "Nats-Msg-Id"


class AckError(Exception):
    """The stream refused a message, or nothing stores its subject (no responders)."""


class _ApiError(msgspec.Struct):
    code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    duplicate: bool = False
    error: _ApiError | None = None


_ack = msgspec.json.Decoder(_PubAck)


class _Request:
    """The acks one `publish` waits for: one future for all its parts (a future per part and
    `gather` cost ~2 µs a part, a request having ~16)."""

    __slots__ = ("done", "duplicates", "left")

    def __init__(self, done: asyncio.Future[list[bool]], parts: int) -> None:
        self.done = done
        self.duplicates = [False] * parts
        self.left = parts

    def acked(self, index: int, duplicate: bool) -> None:
        self.duplicates[index] = duplicate
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(self.duplicates)

    def failed(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class AckedPublisher:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = f"_INBOX.geo.ack.{uuid.uuid4().hex}."
        self._waiting: dict[str, tuple[_Request, int]] = {}
        self._tokens = itertools.count()

    async def start(self) -> None:
        await self._nc.subscribe(self._prefix + "*", cb=self._on_ack)

    async def publish(
        self, messages: Sequence[tuple[str, bytes, dict[str, str]]], timeout_s: float
    ) -> list[bool]:
        """Publish (subject, payload, headers) each and wait for every ack: True where the
        stream already held the message's Nats-Msg-Id. Raises TimeoutError, AckError or
        nats-py's errors (the caller says 503)."""
        if not messages:
            return []
        request = _Request(asyncio.get_running_loop().create_future(), len(messages))
        tokens: list[str] = []
        try:
            for index, (subject, payload, headers) in enumerate(messages):
                token = f"{next(self._tokens):x}"
                self._waiting[token] = (request, index)
                tokens.append(token)
                await self._nc.publish(subject, payload, self._prefix + token, headers)
            async with asyncio.timeout(timeout_s):
                return await request.done
        finally:
            for token in tokens:
                self._waiting.pop(token, None)
            request.done.cancel()  # a no-op once done; else no "exception never retrieved"

    async def _on_ack(self, msg: Msg) -> None:
        waiting = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if waiting is None:
            return  # its request timed out or failed: nobody waits for it
        request, index = waiting
        try:
            ack = _ack.decode(msg.data)
        except msgspec.DecodeError:  # a status message (503: no stream stores the subject)
            status = (msg.headers or {}).get("Status", "?")
            request.failed(AckError(f"no ack from the stream (status {status})"))
            return
        if ack.error is not None:
            request.failed(AckError(f"{ack.error.code}: {ack.error.description}"))
        else:
            request.acked(index, ack.duplicate)
