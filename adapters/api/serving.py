"""uvicorn's server, able to stop while live-presence streams are open.

uvicorn stops by waiting for every response in flight; an event stream is one that never ends
by itself, so a Ctrl-C would hang for as long as a console tab stays open. This server also ends
the process's streams (adapters/api/presence_feed.py) when it is asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import FrameType

import uvicorn

from adapters.api.presence_feed import end_streams


class EngineServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, own_signals: bool = True) -> None:
        """`own_signals` False: the caller wires its signals to `stop()` (an embedding
        program, a test); uvicorn then neither installs its handlers nor re-raises the signal
        after its shutdown, which would cancel the caller's clean-up."""
        super().__init__(config)
        self._own_signals = own_signals
        self.listening = asyncio.Event()  # set once the sockets accept connections

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        end_streams()

    def stop(self) -> None:
        """Stop gracefully; a second call stops at once (as a second Ctrl-C does)."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        end_streams()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self._own_signals:
            with super().capture_signals():
                yield
        else:
            yield
