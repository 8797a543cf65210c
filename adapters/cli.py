"""The `geo-engine` command."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
) -> None:
    """Run the API server (migrations are applied at start)."""
    import uvicorn

    from adapters.api.app import create_app

    _logging(log_level)
    settings = Settings()
    if settings.admin_key is None:
        console.print(
            "[yellow]GEO_ENGINE_ADMIN_KEY is not set: no admin can create keys or fences.[/]"
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False)


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
) -> None:
    """Simulate a day of Paris shoppers through the real API; print a summary, write a report.

    Uses a fresh `geo_demo` database on the configured PostgreSQL: repeatable, and the engine's
    own database is never touched.
    """
    from adapters.demo.run import run_demo

    s = run_demo(customers, seed, out, progress, data_dir=data_dir, console=console)
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
    once: Annotated[bool, typer.Option(help="Send what is due now, then exit")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run the outbox relay on its own (also runs inside `serve` unless GEO_ENGINE_RELAY_ENABLED
    is false); several may run at once."""
    from adapters.composition import build_relay
    from adapters.db.connect import create_pool, resolve_url
    from adapters.db.migrate import migrate as run

    _logging(log_level)

    async def main() -> None:
        s = Settings()
        pool = await create_pool(resolve_url(s.database_url, s.data_dir), 1, 4)
        try:
            await run(pool)
            # no profile service here: an SMS opt-out is written to the database, and a running
            # `serve` reads it at its next start (serve's own relay updates its memory at once)
            r = build_relay(s, pool, None)
            try:
                if once:
                    st = await r.drain()
                    console.print(
                        f"claimed {st.claimed}, sent {st.sent}, retried {st.retried},"
                        f" dead {st.dead}, expired {st.expired}"
                    )
                else:
                    await r.run_forever()
            finally:
                await r.aclose()
        finally:
            await pool.close()

    asyncio.run(main())


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
