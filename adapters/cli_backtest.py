"""`geo-engine backtest`: replay stored events through one campaign, with a progress bar and
tables (registered on the `geo-engine` app by adapters/cli.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from adapters.settings import Settings

console = Console()


def _when(value: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=name) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # naive: UTC


def backtest(
    campaign_id: Annotated[str, typer.Argument(help="The campaign to replay (any status)")],
    since: Annotated[str, typer.Option(help="ISO 8601 start (naive times are UTC)")],
    until: Annotated[str, typer.Option(help="ISO 8601 end, exclusive")],
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL (default: GEO_ENGINE_DATABASE_URL)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Replay the database `geo-engine demo` left")
    ] = False,
) -> None:
    """Replay stored presence and behavioural events through one campaign exactly as live
    (what `POST /v1/campaigns/{id}/backtest` does): nothing is sent or written."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from adapters.composition import build_services
    from adapters.services.backtest import BacktestRun, NoCampaign, count_events, run_backtest

    start, end = _when(since, "--since"), _when(until, "--until")
    if end <= start:
        raise typer.BadParameter("must be after --since", param_hint="--until")

    async def main() -> BacktestRun:
        s = Settings()
        if database_url is not None:
            s = s.model_copy(update={"database_url": database_url})
        if demo:
            from adapters.db.connect import resolve_url, with_database
            from adapters.demo.run import DEMO_DATABASE

            server = await asyncio.to_thread(resolve_url, s.database_url, s.data_dir)
            s = s.model_copy(update={"database_url": with_database(server, DEMO_DATABASE)})
        svc = await build_services(s, background=False, bus=False)
        try:
            assert svc.decisions is not None
            dec = svc.decisions
            total = await count_events(dec, svc.campaigns, campaign_id, start, end)
            cols = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn())
            with Progress(*cols, console=console, disable=as_json) as bar:
                task = bar.add_task("replay", total=total)
                return await run_backtest(
                    dec,
                    svc.campaigns,
                    campaign_id,
                    start,
                    end,
                    on_chunk=lambda n: bar.advance(task, n),
                )
        finally:
            await svc.close()

    try:
        run = asyncio.run(main())
    except NoCampaign:
        console.print(f"[red]no campaign {campaign_id!r}[/]")
        raise typer.Exit(1) from None
    doc = run.as_dict()
    if as_json:
        print(json.dumps(doc))
        return
    console.print(
        f"{campaign_id}: {doc['events_read']:,} events read, {doc['events']:,} fire the campaign,"
        f" {doc['offers']:,} would-be offers ({doc['events_per_s']:,.0f} events/s)"
    )
    for title, key in (
        ("Would-be offers by store", "by_store"),
        ("by day (local)", "by_day"),
        ("by channel", "by_channel"),
        ("by offer", "by_offer"),
        ("Outcome per event", "by_outcome"),
        ("The campaign's result (suppression reasons)", "by_reason"),
    ):
        console.print(f"[bold]{title}[/]")
        table = Table()
        table.add_column(key.removeprefix("by_"))
        table.add_column("count", justify="right")
        rows = (
            doc[key].items() if key == "by_day" else sorted(doc[key].items(), key=lambda kv: -kv[1])
        )
        for k, n in rows:
            table.add_row(str(k), f"{n:,}")
        console.print(table)
