"""The `geo-engine` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapters.cli_backtest import backtest
from adapters.settings import Settings

app = typer.Typer(help="Geolocation-aware in-store trigger engine.", no_args_is_help=True)
console = Console()


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
    role: Annotated[
        str | None,
        typer.Option(
            help="all: API and partition owner in one process; api: stateless HTTP (many may"
            " run); worker: partition owner, no HTTP (default: GEO_ENGINE_ROLE, else all)"
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes sharing the port (all, api): one per core uses every core; with"
            " role all each also owns its share of the partitions",
        ),
    ] = 1,
    loop: Annotated[str, typer.Option(help="uvloop or asyncio (for comparison)")] = "uvloop",
    http: Annotated[str, typer.Option(help="httptools or h11 (for comparison)")] = "httptools",
) -> None:
    """Run the engine (migrations are applied at start). README: "Run a cluster"."""
    import uvicorn
    import uvloop

    from adapters.api.app import create_app

    _logging(log_level)
    settings = Settings()
    if role is not None:
        if role not in ("all", "api", "worker"):
            raise typer.BadParameter("one of all, api, worker", param_hint="--role")
        settings = settings.model_copy(update={"role": role})
    # uvloop and httptools, not uvicorn's pure-Python fallbacks: measured in
    # scripts/bench_e2e.py (README "Benchmarks"), they cut the serving stack's share of a request
    if loop not in ("uvloop", "asyncio") or http not in ("httptools", "h11"):
        raise typer.BadParameter("--loop uvloop|asyncio, --http httptools|h11")
    if settings.role == "worker":
        # the owner's loop is uvloop as the API's is: its socket writes and wake-ups are most
        # of what asyncio's own loop cost it (bench_e2e.py --split, py-spy)
        factory = uvloop.new_event_loop if loop == "uvloop" else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_worker(settings))
        return
    if settings.admin_key is None:
        console.print(
            "[yellow]GEO_ENGINE_ADMIN_KEY is not set: no admin can create keys or fences.[/]"
        )
    served = dict(host=host, port=port, log_level=log_level, access_log=False, loop=loop)
    if workers == 1:
        # uvicorn.run's server, which also ends the open live-presence streams on Ctrl-C
        from adapters.api.serving import EngineServer

        server = EngineServer(uvicorn.Config(create_app(settings), http=http, **served))  # type: ignore[arg-type]
        # uvicorn re-raises the signal that stopped it once it has shut down: SIGTERM's default
        # action then killed the process before atexit stopped the embedded NATS it started
        # (left running after `kill`, systemd, docker stop); an exit, as Ctrl-C's is
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once stopped
            server.run()
        if not server.started:
            raise typer.Exit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits
        return
    # each process builds its own services from the environment: the role goes there
    os.environ["GEO_ENGINE_ROLE"] = settings.role
    # uvicorn's worker processes end by re-raising SIGTERM, whose default action skips atexit,
    # so none of them would stop the embedded servers: the parent, which joins them all before
    # it returns, uses them too (started here once, not raced by the workers) and stops them
    _use_embedded(settings)
    uvicorn.run(
        "adapters.api.app:create_app",
        factory=True,
        workers=workers,
        http=http,
        # uvicorn's own workers cannot be handed EngineServer: an open live-presence stream
        # is cut after the longest ordinary response (a ?wait=true ingest) plus a margin
        timeout_graceful_shutdown=int(settings.ingest_wait_timeout_s) + 5,
        **served,  # type: ignore[arg-type]
    )


def _use_embedded(settings: Settings) -> None:
    """Register this process as a user of the embedded PostgreSQL and NATS the settings name
    (started if none runs); the last user to exit stops them."""
    from adapters.bus.server import resolve_nats_url
    from adapters.db.connect import resolve_url

    resolve_url(settings.database_url, settings.data_dir)
    resolve_nats_url(settings.nats_url, settings.data_dir)


def _exit_on_sigterm(sig: int, frame: object) -> None:
    raise SystemExit(128 + sig)


async def _worker(settings: Settings) -> None:
    """A partition owner until SIGTERM or Ctrl-C; its leases are handed over as it stops."""
    import signal

    from adapters.composition import build_services

    svc = await build_services(settings)
    assert svc.worker is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # one line on stdout once it owns its share (what scripts and tests wait for)
    print(f"worker {svc.worker.worker_id} up: partitions {sorted(svc.worker.owned)}", flush=True)
    try:
        await stop.wait()
    finally:
        await svc.close()


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="Synthetic customers to simulate")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same city and same day")] = 7,
    out: Annotated[Path, typer.Option(help="Where to write the HTML report")] = Path("report.html"),
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Embedded PostgreSQL's directory (default: GEO_ENGINE_DATA_DIR)"),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar")] = True,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Then keep the API and the console running on the demo's database"
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: TCP port")] = 8000,
) -> None:
    """Simulate a day of Paris shoppers through the real API; print a summary, write a report.

    Uses a fresh `geo_demo` database on the configured PostgreSQL: repeatable, and the engine's
    own database is never touched. With --serve, the engine then serves that database and
    prints the console's URL and keys, until Ctrl-C.
    """
    from adapters.demo.run import run_demo

    if serve:
        from adapters.demo.serve import check_port_free

        try:
            check_port_free(host, port)
        except OSError as exc:
            raise typer.BadParameter(str(exc.strerror), param_hint="--port") from None
    s = run_demo(
        customers,
        seed,
        out,
        progress,
        data_dir=data_dir,
        console=console,
        serve=(host, port) if serve else None,
    )
    if s.walkpast_triggers or s.spoof_triggers or s.sequence_errors:
        raise typer.Exit(1)  # the engine broke a promise: say so to scripts and CI


@app.command()
def migrate() -> None:
    """Apply pending database migrations (a no-op when up to date)."""
    from adapters.db.connect import create_pool, resolve_url
    from adapters.db.migrate import migrate as run

    async def main() -> None:
        s = Settings()
        pool = await create_pool(resolve_url(s.database_url, s.data_dir), 1, 2)
        try:
            applied = await run(pool)
        finally:
            await pool.close()
        if applied:
            for m in applied:
                console.print(f"applied {m.version:03d}_{m.name}")
        else:
            console.print("database is up to date")

    asyncio.run(main())


@app.command()
def purge(
    batch: Annotated[
        int | None,
        typer.Option(min=1, help="Rows per DELETE (default GEO_ENGINE_PURGE_BATCH_ROWS)"),
    ] = None,
) -> None:
    """Delete what is past its retention (raw fixes, then derived data); print rows/s."""
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn

    from adapters.db.connect import create_pool, resolve_url
    from adapters.db.migrate import migrate as run
    from adapters.privacy.retention import Retention
    from adapters.privacy.retention import purge as run_purge

    async def main() -> None:
        s = Settings()
        if batch is not None:
            s = s.model_copy(update={"purge_batch_rows": batch})
        retention = Retention.from_settings(s)
        pool = await create_pool(resolve_url(s.database_url, s.data_dir), 1, 2)
        try:
            await run(pool)
            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), console=console
            ) as bar:
                task = bar.add_task("purging", total=None)
                counts: dict[str, int] = {}

                def step(table: str, n: int) -> None:
                    counts[table] = counts.get(table, 0) + n
                    bar.update(task, description=f"{table}: {counts[table]:,} rows deleted")

                started = time.perf_counter()
                done = await run_purge(pool, retention, on_batch=step)
                elapsed = time.perf_counter() - started
        finally:
            await pool.close()
        total = sum(done.values())
        for table, n in done.items():
            if n:
                console.print(f"{table}: {n:,} rows")
        rate = total / elapsed if elapsed > 0 else 0.0
        console.print(f"purged {total:,} rows in {elapsed:.2f} s ({rate:,.0f} rows/s)")

    asyncio.run(main())


@app.command()
def relay(
    once: Annotated[
        bool, typer.Option(help="One escalation round, then send what is due, then exit")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run the outbox relay and the follow-up (escalation) job on their own (both also run
    inside `serve` unless GEO_ENGINE_RELAY_ENABLED is false); several may run at once."""
    from adapters.composition import build_services
    from adapters.delivery.escalation import Escalator

    _logging(log_level)

    async def main() -> None:
        # the whole engine's state, without its background jobs: the follow-ups decide with
        # the campaigns, profiles and fences; on the bus (no partitions: role api) an SMS
        # opt-out reaches the customer's owner
        s = Settings().model_copy(update={"role": "api"})
        svc = await build_services(s, background=False)
        try:
            assert svc.relay is not None and svc.decisions is not None
            esc = Escalator(
                svc.decisions,
                svc.transactions,
                interval_s=s.escalation_interval_s,
                reload_book=True,
            )
            if once:
                # follow-ups first: one that is due now goes out in the same run
                follow = await esc.run_once()
                st = await svc.relay.drain()
                console.print(
                    f"claimed {st.claimed}, sent {st.sent}, retried {st.retried},"
                    f" dead {st.dead}, expired {st.expired};"
                    f" follow-ups {sum(follow.values())} {dict(sorted(follow.items()))}"
                )
                return
            async with asyncio.TaskGroup() as jobs:
                jobs.create_task(svc.relay.run_forever())
                jobs.create_task(esc.run_forever())
        finally:
            await svc.close()

    asyncio.run(main())


app.command()(backtest)  # in a module of its own: adapters/cli_backtest.py


@app.command("create-key")
def create_key(
    role: Annotated[str, typer.Option(help="admin, ingest, staff or gateway")],
    name: Annotated[str, typer.Option(help="Who the key is for")] = "cli",
    store: Annotated[
        list[str] | None, typer.Option(help="Store id (staff keys); repeatable")
    ] = None,
) -> None:
    """Create an API key directly in the database and print it once."""
    from adapters.auth import KeyRing, Role
    from adapters.db.connect import create_pool, resolve_url
    from adapters.db.migrate import migrate as run

    try:
        parsed = Role(role)
    except ValueError:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role") from None
    if parsed is Role.STAFF and not store:
        raise typer.BadParameter("a staff key needs at least one --store", param_hint="--store")

    async def main() -> None:
        s = Settings()
        pool = await create_pool(resolve_url(s.database_url, s.data_dir), 1, 2)
        try:
            await run(pool)
            key_id, key = await KeyRing(pool, None).create(name, parsed, store or [])
        finally:
            await pool.close()
        console.print(f"id: {key_id}\nkey (shown once): {key}")

    asyncio.run(main())


if __name__ == "__main__":
    app()
