"""`geo-engine demo --serve`: once the day is simulated and the report written, the engine keeps
serving its API and the console on the demo's database, so a newcomer sees the city in a
browser after the first command; Ctrl-C stops it all.

The demo itself called the app in process (run.py); this is a real server on a TCP port, built
like `serve` (background jobs on: sweeps, relay), with a fresh admin key and one staff key of a
store, printed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import signal
import socket

from pydantic import SecretStr
from rich.console import Console

from adapters.settings import Settings


def check_port_free(host: str, port: int) -> None:
    """Fail before the demo's minutes of work rather than after, if the port is taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise OSError(exc.errno, f"{host}:{port} cannot serve: {reason}") from None


async def serve_demo(settings: Settings, host: str, port: int, console: Console) -> None:
    """Serve the engine on `settings`' (the demo's) database until SIGINT or SIGTERM."""
    import uvicorn

    from adapters.api.app import create_app
    from adapters.api.serving import EngineServer
    from adapters.auth import Role
    from adapters.composition import build_services
    from geofences.stores import store_sites

    admin = "demo-admin-" + secrets.token_urlsafe(16)
    svc = await build_services(settings.model_copy(update={"admin_key": SecretStr(admin)}))
    try:
        shops = [s for s in store_sites(svc.runtime.index.fences).values() if s.store_fence_ids]
        staff = None
        if shops:
            staff = await svc.keys.create("demo store staff", Role.STAFF, [shops[0].store_id])
        config = uvicorn.Config(
            create_app(services=svc), host=host, port=port, log_level="warning", access_log=False
        )
        # our signals, not uvicorn's: it would re-raise Ctrl-C after its shutdown and cancel
        # the clean-up below (the services, then the embedded servers at exit)
        server = EngineServer(config, own_signals=False)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        try:
            serving = asyncio.create_task(server.serve())
            listening = asyncio.create_task(server.listening.wait())
            await asyncio.wait((serving, listening), return_when=asyncio.FIRST_COMPLETED)
            listening.cancel()
            if server.started:
                _announce(console, host, port, admin, staff, shops[0].store_id if shops else None)
            await serving
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    finally:
        await svc.close()
    console.print("Stopped.")


def _announce(
    console: Console,
    host: str,
    port: int,
    admin: str,
    staff: tuple[str, str] | None,
    store_id: str | None,
) -> None:
    base = f"http://{host}:{port}"
    # one line each, no wrapping: scripts (and the test) read them
    lines = [
        f"Console: {base}/console",
        f"API: {base}/docs",
        f"Admin key: {admin}",
    ]
    if staff is not None:
        lines.append(f"Staff key (store {store_id}): {staff[1]}")
    lines.append("Ctrl-C stops the engine, and the PostgreSQL and NATS it started.")
    with contextlib.suppress(Exception):
        console.rule("The demo city is live")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    console.file.flush()
