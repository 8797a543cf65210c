"""One poller per process behind every open live-presence stream.

Presence changes are committed by whichever process owns the customer, so a stream cannot wait
on this process's memory: it reads PostgreSQL. There is no NOTIFY on presence events (the
owners' commit path stays as it is), so one task polls the newest event id every
`interval_s` (an index lookup) while at least one stream is open, and when it moved re-reads
the aggregate of each store being watched, once per store however many watch it; so it does
when `version` changes (the live fence index: a fence added, renamed, deleted). A stream is
woken only when its store's aggregate differs from what it last sent. Changes that write
neither (an erasure, midnight resetting "today") show within `refresh_s`.

`end_streams()` ends every stream of the process: uvicorn waits for responses in flight before
it stops, and a stream never finishes on its own (adapters/api/serving.py calls it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class FeedClosed(Exception):
    """The process is stopping: every stream ends."""


class Subscription(Generic[T]):
    """What one stream is told: the latest differing aggregate of its store, or an error."""

    def __init__(self, store_id: str, fingerprint: Callable[[T], Hashable]) -> None:
        self.store_id = store_id
        self._fingerprint = fingerprint
        self._wake = asyncio.Event()
        self._value: T | None = None
        self._seen: Hashable = None
        self._error: BaseException | None = None

    def offer(self, value: T) -> None:
        seen = self._fingerprint(value)
        if seen != self._seen:
            self._value, self._seen = value, seen
            self._wake.set()

    def sent(self, value: T) -> None:
        """`value` went out without the feed (the first snapshot): not news any more, nor is
        the same aggregate the feed may have offered while the snapshot was read."""
        self._seen = self._fingerprint(value)
        pending = self._value
        if pending is not None and self._fingerprint(pending) == self._seen:
            self._value = None
            if self._error is None:
                self._wake.clear()

    def fail(self, error: BaseException) -> None:
        self._error = self._error or error
        self._wake.set()

    async def next(self, timeout_s: float) -> T | None:
        """The next changed aggregate, None after `timeout_s` without one; raises the error
        the feed met (database unreachable, store gone, FeedClosed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(timeout_s, 0.0))
        if self._error is not None:
            raise self._error
        if not self._wake.is_set():
            return None
        self._wake.clear()
        value, self._value = self._value, None
        return value


_FEEDS: weakref.WeakSet[PresenceFeed[object]] = weakref.WeakSet()


def end_streams() -> None:
    """End every open stream of this process; safe from a signal handler."""
    for feed in list(_FEEDS):
        feed.close_soon()


class PresenceFeed(Generic[T]):
    def __init__(
        self,
        read: Callable[[str], Awaitable[T]],
        head: Callable[[], Awaitable[int]],
        fingerprint: Callable[[T], Hashable],
        *,
        version: Callable[[], object] = lambda: None,
        interval_s: float = 0.5,
        refresh_s: float = 30.0,
    ) -> None:
        self._read = read
        self._head = head
        self._fingerprint = fingerprint
        self._version = version  # another cause to re-read at once (the live fence index)
        self.interval_s = interval_s
        self.refresh_s = refresh_s
        self._subs: set[Subscription[T]] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._tick = asyncio.Event()  # set to cut the poller's sleep short (closing)
        _FEEDS.add(self)  # type: ignore[arg-type]

    @property
    def watching(self) -> int:
        return len(self._subs)

    @contextlib.asynccontextmanager
    async def watch(self, store_id: str) -> AsyncIterator[Subscription[T]]:
        sub = Subscription(store_id, self._fingerprint)
        if self._closed:
            sub.fail(FeedClosed())
        self._subs.add(sub)
        self._loop = asyncio.get_running_loop()
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="presence-feed")
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    def close(self) -> None:
        self._closed = True
        for sub in list(self._subs):
            sub.fail(FeedClosed())
        self._tick.set()

    def close_soon(self) -> None:
        """close() from outside the loop's own callbacks (a signal handler, another thread)."""
        self._closed = True  # at once: a stream opening meanwhile ends at its first check
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop stopped in between: nothing open
            loop.call_soon_threadsafe(self.close)

    async def _run(self) -> None:
        last_head: int | None = None
        last_version = self._version()
        read_at = time.monotonic()
        while self._subs and not self._closed:
            try:
                head = await self._head()
            except Exception as exc:  # the database is away: every stream says so and ends
                for sub in list(self._subs):
                    sub.fail(exc)
                head = None
            version = self._version()
            stale = time.monotonic() - read_at >= self.refresh_s or version is not last_version
            if head is not None and (head != last_head or stale):
                await self._read_watched()
                last_head, last_version, read_at = head, version, time.monotonic()
            self._tick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tick.wait(), self.interval_s)

    async def _read_watched(self) -> None:
        for store_id in sorted({s.store_id for s in self._subs}):
            subs = [s for s in self._subs if s.store_id == store_id]
            try:
                value = await self._read(store_id)
            except Exception as exc:  # that store's streams end, with the reason
                for sub in subs:
                    sub.fail(exc)
                continue
            for sub in subs:
                sub.offer(value)
