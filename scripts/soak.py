"""Soak (issue 14): a steady open-loop load on `geo-engine serve` for --minutes, bounded, loopback.

One `serve` (role all), or with --workers N `serve --role api` + N `serve --role worker`, on
embedded PostgreSQL and NATS of the script's own, or the machine's (--database-url, --nats-url);
a fresh database and bus prefix, removed at the end. --customers walk around 300 Paris stores,
swept in order (all seen after customers/rate s). 500-fix batches at --rate fixes/s on a fixed
schedule over --connections connections, without ?wait (202 once durable); latency from each
batch's *scheduled* send time (no coordinated omission). Sampled: engine RSS per process every
second, GET /v1/cluster every 5 s, PostgreSQL/NATS memory and the customers held (presence,
profile) every 10 s, CPU every minute. Verdicts (scripts/soak_report.py): p99 ≤ 3 × p50, no
error, RSS flat once every customer is applied and the customers' state no longer grows, the
owners keep up. Writes bench/soak.json and bench/soak.md.

    python scripts/soak.py                              # 10 min, 5,000 fixes/s, 200,000 customers
    python scripts/soak.py --minutes 2 --customers 20000
    python scripts/soak.py --database-url postgresql://postgres@127.0.0.1:5432/test \\
        --nats-url nats://127.0.0.1:4222
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_cluster import (
    BATCH,
    ROOT,
    Cluster,
    Infra,
    Proc,
    Walkers,
    cmdline,
    cpu_between,
    machine,
    make_fences,
    no_nan,
    snapshot,
)
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from soak_report import render, summarise, to_json

console = Console()
WINDOW_S = 10.0
AUX = r"writer|checkpointer|launcher|logger|autovacuum worker"  # PostgreSQL's own processes


class SoakCluster(Cluster):
    """bench_cluster's cluster (fresh database and stream, ingest key, fences), each process in
    its own process group (stopped as a group, whatever happens); no workers: one `serve`."""

    def __init__(self, infra: Infra, all_in_one: bool) -> None:
        super().__init__(infra, 16, "soak")
        self.all_in_one = all_in_one

    def _spawn(self, name: str, role: str, log_level: str = "warning") -> Proc:
        role, name = ("all", "serve") if role == "api" and self.all_in_one else (role, name)
        with open(self.dir / f"{name}.out", "wb") as fo, open(self.dir / f"{name}.err", "wb") as fe:
            argv = [sys.executable, "-m", "adapters.cli", "serve", "--role", role]
            popen = subprocess.Popen(
                [*argv, "--port", str(self.port), "--log-level", log_level],
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                start_new_session=True,
            )
        p = Proc(name, popen, self.dir / f"{name}.out", started=time.monotonic())
        self.procs.append(p)
        return p

    def signal_groups(self, sig: int) -> None:
        for p in self.procs:
            if p.alive():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, sig)

    def stop_groups(self, within_s: float = 20.0) -> None:
        self.signal_groups(signal.SIGTERM)
        deadline = time.monotonic() + within_s
        while any(p.alive() for p in self.procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.signal_groups(signal.SIGKILL)
        for p in self.procs:
            p.popen.wait(10)

    def log_errors(self) -> list[str]:
        lines = []
        for p in self.procs:
            err = (self.dir / f"{p.name}.err").read_text(errors="replace")
            lines += [f"{p.name}: {x}" for x in err.splitlines() if re.search(r"ERROR|Trace", x)]
        return lines


# -- memory from /proc --------------------------------------------------------------------
def status_kb(pid: int, field: str = "VmRSS") -> int:
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(x for x in lines if x.startswith(field + ":")).split()[1])
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared memory (PostgreSQL's buffers) counted once in a sum."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        return int(next(x for x in lines if x.startswith("Pss:")).split()[1])
    return 0


def kids(pid: int) -> list[int]:
    """Direct children (every thread's), without scanning /proc."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                out += [int(x) for x in (task / "children").read_text().split()]
    return out


def engine_rss(c: SoakCluster) -> dict[str, int]:
    """kB per engine process: each `serve` and its children (not a PostgreSQL or NATS)."""
    out = {}
    for p in c.procs:
        todo = [p.pid] if p.alive() else []
        while todo:
            pid = todo.pop()
            if re.match(r"postgres|\S*nats-server", cmdline(pid)):
                continue
            out[p.name if pid == p.pid else f"{p.name}/{pid}"] = status_kb(pid)
            todo += kids(pid)
    return out


def infra_mem(infra: Infra, db: str) -> dict[str, int]:
    """kB: nats-server's RSS; PostgreSQL's PSS (the server's processes, this database's)."""
    pg, mine = pss_kb(infra.postmaster or -1), rf" {db} |{AUX}"
    for pid in kids(infra.postmaster or -1):
        if infra.embedded or re.search(mine, cmdline(pid)):
            pg += pss_kb(pid)
    return {"postgresql (PSS)": pg, "nats-server": status_kb(infra.nats_pid or -1)}


# -- the load and the samplers ------------------------------------------------------------
async def send(
    client: httpx.AsyncClient, body: bytes, i: int, at: float, t0: float, rec: list[Any]
) -> None:
    status: int | str
    accepted = rejected = 0
    late = round((time.monotonic() - at) * 1000, 2)  # the loader's own delay, included below
    try:
        r = await client.post("/v1/pings", content=body)
        status = r.status_code
        if status == 202:
            doc = r.json()
            accepted, rejected = doc["accepted"], len(doc["rejected"])
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    done = time.monotonic()
    lat = round((done - at) * 1000, 2)
    rec.append([i, round(at - t0, 3), lat, status, accepted, rejected, late])


async def load(
    c: SoakCluster, walkers: Walkers, a: argparse.Namespace, t0: float, rec: list[Any]
) -> None:
    """Batch i sent at t0 + i × 500/rate whatever is still outstanding (open loop)."""
    n, every = int(a.minutes * 60 * a.rate / BATCH), BATCH / a.rate
    limits = httpx.Limits(max_connections=a.connections, max_keepalive_connections=a.connections)
    timeout = httpx.Timeout(30.0, pool=None)  # waiting for a connection counts in the latency
    async with httpx.AsyncClient(
        base_url=c.base, headers=c.ingest, limits=limits, timeout=timeout
    ) as client:
        pending: set[asyncio.Task[None]] = set()
        body = walkers.batch(0)
        for i in range(n):
            at = t0 + i * every
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            task = asyncio.create_task(send(client, body, i, at, t0, rec))
            pending.add(task)
            task.add_done_callback(pending.discard)
            body = walkers.batch((i + 1) % walkers.lanes)  # the next one, made while waiting
        await asyncio.gather(*pending)


async def sample(
    c: SoakCluster, t0: float, raw: dict[str, Any], stop: asyncio.Event, bar: Any
) -> None:
    """Every second RSS; every 5 s /v1/cluster; every 10 s PostgreSQL and NATS; every minute
    CPU. Until `stop`."""
    comps = {p.pid: f"engine: {p.name}" for p in c.procs}
    cpu0 = await asyncio.to_thread(snapshot, comps, c.infra, c.db)
    tick, cpu_tick, polls = 0, 0, set[asyncio.Task[None]]()
    while not stop.is_set():
        t = round(time.monotonic() - t0, 2)
        rss = await asyncio.to_thread(engine_rss, c)  # off the loop: the load's schedule
        raw["rss"].append([t, rss])
        if tick % 5 == 0:  # apart: a slow answer must not delay the memory samples
            polls.add(task := asyncio.create_task(poll(c, t, raw["polls"])))
            task.add_done_callback(polls.discard)
        if tick % 10 == 0:
            raw["infra_mem"].append([t, await asyncio.to_thread(infra_mem, c.infra, c.db)])
            polls.add(task := asyncio.create_task(held(c, t, raw["customers"])))
            task.add_done_callback(polls.discard)
        if tick - cpu_tick >= 60:
            cpu1 = await asyncio.to_thread(snapshot, comps, c.infra, c.db)
            raw["cpu"].append([cpu_tick // 60, cpu_between(cpu0, cpu1)])
            cpu0, cpu_tick = cpu1, tick
        done = raw["batches"][-50:]
        lat = sorted(b[2] for b in done) or [0.0]
        lag = raw["polls"][-1][2] if raw["polls"] else 0
        errors = sum(b[3] != 202 for b in raw["batches"])
        bar.update(
            bar.task_ids[0],
            completed=len(raw["batches"]),
            description=f"last 50: p50 {lat[len(lat) // 2]:.0f} ms, max {lat[-1]:.0f} ms"
            f" | engine {sum(rss.values()) / 1024:.0f} MB | lag {lag:,} | errors {errors}",
        )
        tick += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, t0 + tick - time.monotonic()))
    if tick - cpu_tick >= 5:  # the last minute
        cpu1 = await asyncio.to_thread(snapshot, comps, c.infra, c.db)
        raw["cpu"].append([cpu_tick // 60, cpu_between(cpu0, cpu1)])
    await asyncio.gather(*polls)


async def poll(c: SoakCluster, t: float, out: list[Any]) -> None:
    """[t, messages in the stream, Σ lag, max lag, partitions owned, ms to answer, mean and min
    of the partitions' applied sequences] (soak_report.py: what they say)."""
    started = time.monotonic()
    with contextlib.suppress(httpx.HTTPError):
        leases = (doc := await c.cluster())["leases"]
        lags = [x["lag"] or 0 for x in leases]
        seqs = [x["applied_seq"] for x in leases]
        owned = sum(x["owner"] is not None for x in leases)
        ms = round((time.monotonic() - started) * 1000, 1)
        row = [t, doc["messages_in_stream"] or 0, sum(lags), max(lags), owned, ms]
        out.append([*row, sum(seqs) / len(seqs), min(seqs)])


async def run(a: argparse.Namespace, c: SoakCluster, raw: dict[str, Any]) -> None:
    rng = np.random.default_rng(14)
    fences, centres = make_fences(rng, a.fences)
    sweeps = a.minutes * 60 * a.rate / a.customers  # fixes per customer: +20..40 s each
    lanes = a.customers // BATCH  # lane i = customers i, i + lanes, ...: one batch each
    walkers = Walkers(rng, centres, a.customers, lanes, time.time() - 6 * 3600 - 40 * sweeps)
    console.print(f"starting the engine ({raw['setup']}) …")
    await c.start(fences)
    for _ in range(a.workers):
        await c.add_worker()
    if a.workers:
        await c.wait_balanced(c.workers)
    stop = asyncio.Event()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console) as bar:
        bar.add_task("load", total=int(a.minutes * 60 * a.rate / BATCH))
        t0 = time.monotonic() + 0.5
        sampler = asyncio.create_task(sample(c, t0, raw, stop, bar))
        try:
            await load(c, walkers, a, t0, raw["batches"])
        finally:
            raw["load_end_s"] = round(time.monotonic() - t0, 2)
            stop.set()
            await sampler
    console.print("load done; waiting for the owners to apply the whole log …")
    started, ends = time.monotonic(), await c.log_ends()  # each partition's last message
    with contextlib.suppress(RuntimeError):  # not within --drain: None
        raw["drain_s"] = round(await c.wait_applied(ends, a.drain) - started, 2)
    await poll(c, round(time.monotonic() - t0, 2), raw["polls"])  # the totals
    raw["gc_full"] = await full_collections(c)


async def held(c: SoakCluster, t: float, out: list[Any]) -> None:
    """[t, customers with presence state, customers with a profile] in the serving process
    (`geo_customers_in_memory` in its /metrics): what its memory may grow with, customer by
    customer. A profile starts at a customer's first visit, which comes long after its first fix.
    With --workers, the API process's only (the workers serve no HTTP)."""
    try:
        text = (await c.http.get("/metrics")).text
    except httpx.HTTPError:
        return
    n = {"presence": 0.0, "profile": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name == "geo_customers_in_memory":
            n.update({s.labels["state"]: s.value for s in family.samples})
    out.append([t, int(n["presence"]), int(n["profile"])])


async def full_collections(c: SoakCluster) -> dict[str, Any] | None:
    """The serving process's scheduled full garbage collections (`geo_gc_full_seconds` in its
    /metrics): the event loop waits through each, so they are a suspect for any window's tail.
    With --workers, the API process's only (the workers serve no HTTP)."""
    try:
        text = (await c.http.get("/metrics")).text
    except httpx.HTTPError:
        return None
    found: dict[str, Any] = {"count": 0, "sum_s": 0.0, "at_most_s": None}
    for family in text_string_to_metric_families(text):
        if family.name != "geo_gc_full_seconds":
            continue
        for s in family.samples:
            if s.name.endswith("_count"):
                found["count"] = int(s.value)
            elif s.name.endswith("_sum"):
                found["sum_s"] = round(s.value, 3)
        buckets = sorted(
            (float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")
        )
        found["at_most_s"] = next((le for le, n in buckets if n >= found["count"]), None)
    return found


async def amain(a: argparse.Namespace) -> dict[str, Any]:
    embedded = not a.database_url
    infra = Infra(a.database_url or "", a.nats_url or "", embedded)
    c: SoakCluster | None = None
    raw: dict[str, Any] = {
        "batches": [],
        "rss": [],
        "polls": [],
        "infra_mem": [],
        "cpu": [],
        "customers": [],
    }
    raw["setup"] = f"{'serve' if not a.workers else f'api + {a.workers} workers'}" + (
        ", embedded PostgreSQL and NATS" if embedded else ", the machine's PostgreSQL and NATS"
    )
    try:
        async with asyncio.timeout(a.timeout):
            pg_version, nats_version = await infra.start()
            where = "embedded" if embedded else "machine's"
            raw["machine"] = machine(pg_version, nats_version, where)
            c = SoakCluster(infra, all_in_one=not a.workers)
            atexit.register(c.signal_groups, signal.SIGKILL)  # a last resort
            await run(a, c, raw)
    except TimeoutError:
        if not raw["batches"]:
            raise
        console.print(f"[red]hard timeout ({a.timeout:.0f} s): the report covers what ran")
        raw["timed_out"] = True
    finally:
        if c is not None:
            raw["engine_alive_at_end"] = {p.name: p.alive() for p in c.procs}
            with contextlib.suppress(OSError):
                raw["engine_log_errors"] = c.log_errors()[:50]
            await asyncio.to_thread(c.stop_groups)
            with contextlib.suppress(Exception):
                await c.close()
        await infra.close()
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=5000.0, help="fixes/s (500-fix batches)")
    ap.add_argument("--customers", type=int, default=200_000, help="rounded to a multiple of 500")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--workers", type=int, default=0, help="0: one `serve` (role all)")
    ap.add_argument("--fences", type=int, default=300)
    ap.add_argument("--database-url", help="the machine's PostgreSQL (default: embedded)")
    ap.add_argument("--nats-url", help="the machine's NATS (with --database-url)")
    ap.add_argument("--drain", type=float, default=120.0, help="wait at most this for lag 0 (s)")
    ap.add_argument("--flat", type=float, default=2.0, help="RSS slope deemed flat (MB/min)")
    ap.add_argument("--timeout", type=float, help="hard limit (s; default minutes + 6 min)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    ap.add_argument("--render", action="store_true", help="re-render <out>/soak.md only")
    a = ap.parse_args()
    if a.render:  # the same figures, the Markdown again (after a change of its layout)
        (a.out / "soak.md").write_text(render(json.loads((a.out / "soak.json").read_text())))
        return
    if bool(a.database_url) != bool(a.nats_url):
        ap.error("--database-url and --nats-url go together (default: both embedded)")
    a.customers = max(1, round(a.customers / BATCH)) * BATCH
    a.timeout = a.timeout or a.minutes * 60 + a.drain + 240

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    git = ["git", "status", "--porcelain", "--untracked-files=no"]
    dirty = subprocess.run(git, cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
    try:
        raw = asyncio.run(amain(a))
    except KeyboardInterrupt:
        sys.exit("interrupted: what it started is stopped, its database and stream removed")
    # (bench_cluster's strips the first line's status column: that path loses a letter)
    raw["machine"]["uncommitted_files"] = [x[3:] for x in dirty]  # others' work in this tree
    raw["command"] = "python scripts/soak.py" + "".join(f" {shlex.quote(x)}" for x in sys.argv[1:])
    raw["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    doc = summarise(raw, WINDOW_S)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "soak.json").write_text(to_json(no_nan(doc)))
    md = render(doc)
    (a.out / "soak.md").write_text(md)
    print(md)
    if doc["timed_out"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
