"""The cluster on one machine: a separate API process (`serve --role api`) and partition owners
(`serve --role worker`) on real PostgreSQL and NATS JetStream. Measures
  1. throughput with 1 and with 2 workers: 500-fix batches for --customers customers moving
     around --fences stores, posted without wait (202) by --concurrency uploaders for --seconds;
     accepted/s (while loading) and applied/s (fixes applied, counted in raw_fixes, / time from
     the load's start until every partition's applied sequence reached the end of its log);
     median of --runs runs, each on a fresh database and stream; the ratio 2 workers / 1 worker,
     and the CPU each process used (from /proc) to say what caps it;
  2. takeover: 2 workers under a light load, kill -9 one: seconds until the survivor owns every
     partition, has applied what the log held by then, and /v1/cluster shows every lag 0
     (polled every 100 ms); median of 3;
  3. lag under load: the lag each owner reported per partition during the runs of 1;
Other jobs on the machine move these figures: before each run it waits (--quiet-wait, at most)
for the machine to be nearly idle, and it reports the CPU that other processes took meanwhile.
  4. a simulation of --sim-workers workers on --sim-partitions partitions: joined one by one,
     then one stopped (SIGTERM) and one killed (-9): the spread after each step (/v1/cluster),
     how many partitions moved and the time to full ownership.
When 2 workers apply less than 1.5x what 1 applies (or with --profile always), one more 2-worker
run is profiled with py-spy (a worker and the API; `pip install py-spy` in the venv) and the
folded stacks are kept in bench/cluster-{worker,api}.txt.

Writes bench/cluster.json and bench/cluster.md. Every process, database and stream it creates
is removed at the end.

    python scripts/bench_cluster.py              # ~9 min on 2 cores
    python scripts/bench_cluster.py --quick      # 1 run each, shorter loads: ~3 min
    python scripts/bench_cluster.py --embedded   # its own nats-server and pgserver
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import nats
import nats.js.errors
import numpy as np
from bench_cluster_report import (
    HEARTBEAT_S,
    LEASE_TTL_S,
    reading,
    rel,
    render,
    summarise,
    summarise_profile,
)
from machine_info import cpu_name
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.db.connect import with_database  # noqa: E402
from tests.helpers import LAT0, LON0, offset, square_feature  # noqa: E402
from tests.server import free_port  # noqa: E402

ADMIN = "bench-cluster-admin-key-0000000"
JSON = {"content-type": "application/json"}
AUTH = {"Authorization": f"Bearer {ADMIN}", **JSON}
BATCH = 500
M_PER_DEG = 111_320.0
console = Console()


# -- the machine and where things run -----------------------------------------------------
def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip("\n")  # not strip(): porcelain lines start with a status column


def machine(pg_version: str, nats_version: str, database: str) -> dict[str, Any]:
    mem_gb = None
    with contextlib.suppress(OSError, StopIteration, ValueError):
        kb = next(
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )
        mem_gb = round(kb / 1024**2, 1)
    dirty = [ln[3:] for ln in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "nats_server": nats_version,
        "database": database,
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_files": dirty,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class Infra:
    """PostgreSQL and NATS: the machine's (URLs), or with --embedded a pgserver and a
    nats-server of the script's own in a temporary directory."""

    def __init__(self, pg_url: str, nats_url: str, embedded: bool) -> None:
        self.embedded = embedded
        self.tmp = Path(tempfile.mkdtemp(prefix="geo-bench-cluster-"))
        self._pg: Any = None
        if embedded:
            from adapters.bus.server import embedded_nats_url
            from adapters.db.connect import embedded_url

            pg_url = embedded_url(self.tmp)
            nats_url = embedded_nats_url(self.tmp)
        self.pg_url = pg_url
        self.nats_url = nats_url
        self.dbs: set[str] = set()
        self.streams: set[str] = set()
        self.postmaster: int | None = None
        self.nats_pid: int | None = None

    async def start(self) -> tuple[str, str]:
        conn = await asyncpg.connect(self.pg_url)
        try:
            version = await conn.fetchval("SHOW server_version")
            backend = await conn.fetchval("SELECT pg_backend_pid()")
        finally:
            await conn.close()
        self.postmaster = parent_pid(int(backend))
        nc = await nats.connect(self.nats_url)
        try:
            v = nc.connected_server_version
            nats_version = f"{v.major}.{v.minor}.{v.patch}"
        finally:
            await nc.close()
        self.nats_pid = find_nats(urlsplit(self.nats_url).port or 4222)
        return str(version), nats_version

    async def create_db(self, name: str) -> str:
        conn = await asyncpg.connect(self.pg_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.dbs.add(name)
        return str(with_database(self.pg_url, name))

    async def drop_db(self, name: str) -> None:
        conn = await asyncpg.connect(self.pg_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.dbs.discard(name)

    async def drop_stream(self, stream: str) -> None:
        nc = await nats.connect(self.nats_url)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()
        self.streams.discard(stream)

    async def close(self) -> None:
        for name in list(self.dbs):
            with contextlib.suppress(Exception):
                await self.drop_db(name)
        for stream in list(self.streams):
            with contextlib.suppress(Exception):
                await self.drop_stream(stream)
        if self.embedded:
            from adapters.bus.server import stop_embedded_nats
            from adapters.db import connect

            stop_embedded_nats(self.tmp)
            for server in connect._servers.values():
                with contextlib.suppress(Exception):
                    server.cleanup()
            connect._servers.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- CPU accounting from /proc ------------------------------------------------------------
def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        )
    except OSError:
        return ""


def find_nats(port: int) -> int | None:
    for d in Path("/proc").iterdir():
        c = cmdline(int(d.name)) if d.name.isdigit() else ""
        if "nats-server" in c and re.search(rf"(-p|--port)[ =]{port}\b", c):
            return int(d.name)
    return None


def schedstat(pid: int) -> tuple[float, float]:
    """CPU seconds run and seconds spent runnable but waiting for a CPU, all threads."""
    run = wait = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0, 0.0
    for t in tasks:
        with contextlib.suppress(OSError, ValueError):
            r, w, _ = (t / "schedstat").read_text().split()
            run += int(r)
            wait += int(w)
    return run / 1e9, wait / 1e9


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / hz, sum(parts[:8]) / hz


async def wait_quiet(below: float, at_most_s: float) -> tuple[float, float]:
    """Other engineers' jobs share this machine: wait (at most `at_most_s`) until it is busy
    less than `below` cores over a second; (the last busy figure, the seconds waited)."""
    started = time.monotonic()
    while True:
        b0 = machine_busy()[0]
        await asyncio.sleep(1.0)
        busy = machine_busy()[0] - b0
        waited = time.monotonic() - started
        if busy < below or waited >= at_most_s:
            return round(busy, 2), round(waited - 1.0, 1)


@dataclass
class CpuSnap:
    at: float
    procs: dict[int, tuple[str, float, float]]  # pid -> (component, cpu s, wait s)
    busy: float


def snapshot(components: dict[int, str], infra: Infra, db: str) -> CpuSnap:
    """CPU so far of the engine's processes, NATS, this database's PostgreSQL backends and
    the server's own processes (WAL writer, checkpointer...): the parent of this database's
    backends is the postmaster, its other children without a database are the server's."""
    pids = dict(components)
    if infra.nats_pid:
        pids[infra.nats_pid] = "nats-server"
    pids[os.getpid()] = "loader (this script)"
    children: dict[int, list[tuple[int, str]]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (c := cmdline(int(d.name))).startswith("postgres"):
            pid = int(d.name)
            if f" {db} " in c:
                pids[pid] = "postgresql (this database)"
                infra.postmaster = parent_pid(pid) or infra.postmaster
            children.setdefault(parent_pid(pid) or 0, []).append((pid, c))
    if infra.postmaster:
        pids[infra.postmaster] = "postgresql (server processes)"
        for pid, c in children.get(infra.postmaster, []):
            if re.search(r"writer|checkpointer|launcher|logger|autovacuum worker", c):
                pids[pid] = "postgresql (server processes)"
    procs = {p: (name, *schedstat(p)) for p, name in pids.items()}
    return CpuSnap(time.monotonic(), procs, machine_busy()[0])


def cpu_between(a: CpuSnap, b: CpuSnap) -> dict[str, dict[str, float | None]]:
    """Component -> cores used and cores' worth of waiting for a CPU between two snapshots."""
    wall = max(b.at - a.at, 1e-9)
    acc: dict[str, dict[str, float]] = {}
    for pid, (name, run, wait) in b.procs.items():
        _, run0, wait0 = a.procs.get(pid, (name, 0.0, 0.0))
        o = acc.setdefault(name, {"cores": 0.0, "runqueue": 0.0})
        o["cores"] += max(0.0, run - run0) / wall
        o["runqueue"] += max(0.0, wait - wait0) / wall
    mine = sum(o["cores"] for o in acc.values())
    total = (b.busy - a.busy) / wall
    out: dict[str, dict[str, float | None]] = {
        k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in acc.items()
    }
    out["machine (all processes)"] = {"cores": round(total, 3), "runqueue": None}
    out["other processes"] = {"cores": round(max(0.0, total - mine), 3), "runqueue": None}
    return out


# -- the workload -------------------------------------------------------------------------
def make_fences(rng: np.random.Generator, n: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    feats, centres = [], []
    for i in range(n):
        lat, lon = offset(LAT0, LON0, rng.uniform(-4000, 4000), rng.uniform(-6000, 6000))
        feats.append(square_feature(f"store-{i}", lat, lon, rng.uniform(15, 60), store_id=f"s{i}"))
        centres.append((lat, lon))
    return feats, np.array(centres)


class Walkers:
    """Customers moving around the stores: each near a store (in it now and then), one fix per
    ~30 s of its own time, moving to another store now and then. `lanes` disjoint groups of
    customers (customer i in lane i % lanes): one uploader per lane keeps each customer's fixes
    in time order."""

    def __init__(
        self, rng: np.random.Generator, centres: np.ndarray, customers: int, lanes: int, t0: float
    ) -> None:
        self.rng = rng
        self.centres = centres
        self.lanes = lanes
        self.home = rng.integers(0, len(centres), customers)
        self.north = rng.normal(0, 80, customers)
        self.east = rng.normal(0, 80, customers)
        self.t = t0 + rng.uniform(0, 30, customers)
        self.ids = np.arange(customers)

    def batch(self, lane: int, size: int = BATCH) -> bytes:
        rng = self.rng
        who = rng.choice(self.ids[lane :: self.lanes], size, replace=False)
        self.t[who] += rng.uniform(20, 40, size)
        move = rng.random(size) < 0.03  # off to another store
        self.home[who[move]] = rng.integers(0, len(self.centres), int(move.sum()))
        self.north[who] = np.where(move, rng.normal(0, 150, size), 0.85 * self.north[who])
        self.east[who] = np.where(move, rng.normal(0, 150, size), 0.85 * self.east[who])
        self.north[who] += rng.normal(0, 15, size)
        self.east[who] += rng.normal(0, 15, size)
        c = self.centres[self.home[who]]
        lat = c[:, 0] + self.north[who] / M_PER_DEG
        lon = c[:, 1] + self.east[who] / (M_PER_DEG * math.cos(math.radians(LAT0)))
        acc = rng.uniform(5, 25, size)
        rows = ",".join(
            f'{{"customer_id":"c{w}","lat":{la:.6f},"lon":{lo:.6f},"ts":{t:.1f},'
            f'"accuracy_m":{a:.0f}}}'
            for w, la, lo, t, a in zip(
                who.tolist(),
                lat.tolist(),
                lon.tolist(),
                self.t[who].tolist(),
                acc.tolist(),
                strict=True,
            )
        )
        return ('{"pings":[' + rows + "]}").encode()


@dataclass
class Loaded:
    accepted: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    ran_out: bool = False


async def post(client: httpx.AsyncClient, body: bytes, done: Loaded) -> None:
    for attempt in range(5):
        try:
            r = await client.post("/v1/pings", content=body)
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 202:
            done.accepted += r.json()["accepted"]
            done.requests += 1
            return
        done.errors += 1
        await asyncio.sleep(0.2 * (attempt + 1))


async def load(
    base: str, headers: dict[str, str], lanes: list[list[bytes]], seconds: float
) -> Loaded:
    """Each lane's batches in order, lanes concurrently, until `seconds` or the batches end."""
    done = Loaded()
    deadline = time.monotonic() + seconds

    async def lane(client: httpx.AsyncClient, bodies: list[bytes]) -> None:
        for body in bodies:
            if time.monotonic() >= deadline:
                return
            await post(client, body, done)
        done.ran_out = True

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        started = time.monotonic()
        await asyncio.gather(*(lane(client, b) for b in lanes))
        done.seconds = time.monotonic() - started
    return done


async def trickle(c: Cluster, walkers: Walkers, per_s: float, stop: asyncio.Event) -> Loaded:
    """A light load: one batch every 1/per_s seconds until `stop`."""
    done = Loaded()
    async with httpx.AsyncClient(base_url=c.base, headers=c.ingest, timeout=60) as client:
        i = 0
        next_at = time.monotonic()
        while not stop.is_set():
            await post(client, walkers.batch(i % walkers.lanes), done)
            i += 1
            next_at += 1.0 / per_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
    return done


# -- a cluster: database, stream, API and workers ----------------------------------------
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    worker_id: str = ""
    started: float = 0.0
    up_at: float = 0.0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


_ALL_PROCS: list[Proc] = []  # every process started, for the cleanup whatever happens


def stop_proc(p: Proc, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    if p.alive():
        with contextlib.suppress(ProcessLookupError):
            p.popen.send_signal(sig)
        try:
            p.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(10)
    else:
        p.popen.wait()


_OWNERSHIP_LOG = r"partition|tick|fenced|NATS|database|Traceback|Error"


class NotBalanced(RuntimeError):
    def __init__(self, within_s: float, timeline: list[str], logs: dict[str, list[str]]) -> None:
        super().__init__(f"ownership not balanced in {within_s:.0f} s: {timeline[-1:]}")
        self.within_s = within_s
        self.timeline = timeline
        self.logs = logs


class Cluster:
    def __init__(self, infra: Infra, partitions: int, tag: str, **env: str) -> None:
        self.infra = infra
        self.partitions = partitions
        uid = uuid.uuid4().hex[:8]
        self.db = f"bench_cluster_{tag}_{uid}"
        self.prefix = f"bcl{tag}{uid}"[:32]
        self.stream = f"{self.prefix.upper()}_INGEST"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=infra.tmp))
        self.extra_env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[Proc] = []
        self.api: Proc | None = None
        self.workers: list[Proc] = []
        self.db_url = ""
        self.pool: asyncpg.Pool | None = None
        self.http = httpx.AsyncClient(base_url=self.base, timeout=30)
        self.ingest: dict[str, str] = {}
        self._n = 0

    def env(self) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GEO_ENGINE_") and k not in ("DATABASE_URL", "NATS_URL")
        }
        return {
            **base,
            "DATABASE_URL": self.db_url,
            "GEO_ENGINE_NATS_URL": self.infra.nats_url,
            "GEO_ENGINE_BUS_PREFIX": self.prefix,
            "GEO_ENGINE_PARTITIONS": str(self.partitions),
            "GEO_ENGINE_ADMIN_KEY": ADMIN,
            "GEO_ENGINE_DATA_DIR": str(self.dir),
            "GEO_ENGINE_REQUIRE_LOCATION_CONSENT": "false",  # synthetic customers
            "GEO_ENGINE_RAW_FIX_RETENTION_S": "86400",  # raw fixes kept: what is counted
            "GEO_ENGINE_RATE_LIMIT_PER_S": "0",  # measure the engine, not the throttle
            "GEO_ENGINE_HEARTBEAT_S": str(HEARTBEAT_S),
            "GEO_ENGINE_LEASE_TTL_S": str(LEASE_TTL_S),
            **self.extra_env,
        }

    def _spawn(self, name: str, role: str, log_level: str = "warning") -> Proc:
        out = self.dir / f"{name}.out"
        with open(out, "wb") as fo, open(self.dir / f"{name}.err", "wb") as fe:
            popen = subprocess.Popen(
                [
                    *(sys.executable, "-m", "adapters.cli", "serve", "--role", role),
                    *("--port", str(self.port), "--log-level", log_level),
                ],
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
            )
        p = Proc(name, popen, out, started=time.monotonic())
        self.procs.append(p)
        _ALL_PROCS.append(p)
        return p

    def err_tail(self, p: Proc) -> str:
        err = self.dir / f"{p.name}.err"
        return err.read_text(errors="replace")[-3000:] if err.exists() else ""

    async def start(self, fences: list[dict[str, Any]]) -> None:
        self.db_url = await self.infra.create_db(self.db)
        self.infra.streams.add(self.stream)
        self.api = self._spawn("api", "api")
        deadline = time.monotonic() + 90
        while True:
            if not self.api.alive():
                raise RuntimeError(f"API did not start:\n{self.err_tail(self.api)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get("/readyz", timeout=1)).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"API not ready in 90 s:\n{self.err_tail(self.api)}")
            await asyncio.sleep(0.1)
        self.pool = await asyncpg.create_pool(self.db_url, min_size=1, max_size=2)
        # pings with an ingest key, as a fleet of apps sends them (an admin's POSTs are
        # audited: one more write per request)
        r = await self.http.post(
            "/v1/api-keys", json={"name": "bench", "role": "ingest"}, headers=AUTH
        )
        r.raise_for_status()
        self.ingest = {"Authorization": f"Bearer {r.json()['key']}", **JSON}
        r = await self.http.post(
            "/v1/geofences/import",
            json={"type": "FeatureCollection", "features": fences},
            headers=AUTH,
            timeout=120,
        )
        r.raise_for_status()

    async def add_worker(self, log_level: str = "warning") -> Proc:
        """Start a worker; back once it printed its `up` line (its first ownership tick)."""
        self._n += 1
        p = self._spawn(f"w{self._n}", "worker", log_level)
        deadline = time.monotonic() + 90
        while True:
            text = p.out.read_text(errors="replace") if p.out.exists() else ""
            m = re.search(r"worker (\S+) up", text)
            if m:
                p.worker_id, p.up_at = m.group(1), time.monotonic()
                self.workers.append(p)
                return p
            if not p.alive() or time.monotonic() > deadline:
                stop_proc(p, signal.SIGKILL)
                raise RuntimeError(f"worker {p.name} did not start:\n{self.err_tail(p)}")
            await asyncio.sleep(0.02)

    def live_workers(self) -> list[Proc]:
        return [w for w in self.workers if w.alive()]

    async def cluster(self) -> dict[str, Any]:
        r = await self.http.get("/v1/cluster", headers=AUTH)
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc

    async def leases(self) -> list[asyncpg.Record]:
        assert self.pool is not None
        return list(
            await self.pool.fetch(
                "SELECT partition, owner, epoch, applied_seq, lag,"
                " expires_at > now() AS held FROM partition_leases ORDER BY partition"
            )
        )

    async def raw_fixes(self) -> int:
        assert self.pool is not None
        return int(await self.pool.fetchval("SELECT count(*) FROM raw_fixes"))

    async def commits(self) -> int:
        assert self.pool is not None
        return int(
            await self.pool.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            )
        )

    async def log_ends(self) -> dict[int, int]:
        """Partition -> the stream sequence of its last message (0: none yet)."""
        nc = await nats.connect(self.infra.nats_url)
        try:
            js = nc.jetstream()
            ends = {}
            for p in range(self.partitions):
                try:
                    msg = await js.get_last_msg(self.stream, f"{self.prefix}.in.{p}")
                    ends[p] = int(msg.seq or 0)
                except nats.js.errors.NotFoundError:
                    ends[p] = 0
            return ends
        finally:
            await nc.close()

    async def messages(self) -> int:
        nc = await nats.connect(self.infra.nats_url)
        try:
            info = await nc.jetstream().stream_info(self.stream)
            return int(info.state.messages)
        finally:
            await nc.close()

    async def wait_applied(self, ends: dict[int, int], within_s: float) -> float:
        """Poll (100 ms) until every partition applied its log up to `ends`; the time then."""
        deadline = time.monotonic() + within_s
        while True:
            rows = await self.leases()
            if all(r["applied_seq"] >= ends[r["partition"]] for r in rows):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not catch up in {within_s:.0f} s")
            await asyncio.sleep(0.1)

    async def wait_balanced(
        self, workers: list[Proc], within_s: float = 60.0, poll: float = 0.1
    ) -> tuple[float, dict[str, Any], int]:
        """Poll /v1/cluster until every partition is owned by one of `workers` in a fair share;
        (the time then, the last answer, the most partitions seen without an owner)."""
        ids = {w.worker_id for w in workers}
        lo, hi = self.partitions // len(ids), math.ceil(self.partitions / len(ids))
        started = time.monotonic()
        deadline = started + within_s
        unowned = 0
        names = {w.worker_id: w.name for w in self.workers}
        timeline: list[str] = []  # each change of the spread, for a failure's report
        while True:
            doc = await self.cluster()
            at = time.monotonic()
            owners = [lease["owner"] for lease in doc["leases"]]
            unowned = max(unowned, sum(o is None for o in owners))
            counts = Counter(owners)
            if all(o in ids for o in owners) and all(lo <= counts[i] <= hi for i in ids):
                return at, doc, unowned
            seen = " ".join(
                f"{names.get(o, '?') if o else 'none'}:{n}"
                for o, n in sorted(counts.items(), key=str)
            )
            dead = [names.get(w["worker_id"], "?") for w in doc["workers"] if not w["live"]]
            seen += f" (not live: {', '.join(dead) or '-'})"
            if not timeline or not timeline[-1].endswith(seen):
                timeline.append(f"{at - started:5.1f} s  {seen}")
            if at > deadline:
                raise NotBalanced(within_s, timeline, self.warnings(workers))
            await asyncio.sleep(poll)

    def warnings(self, workers: list[Proc], last: int = 12) -> dict[str, list[str]]:
        """The last warnings each worker logged (taken over, tick failed...)."""
        out = {}
        for w in workers:
            err = self.dir / f"{w.name}.err"
            text = err.read_text(errors="replace") if err.exists() else ""
            lines = [ln for ln in text.splitlines() if re.search(_OWNERSHIP_LOG, ln)]
            out[f"{w.name}{'' if w.alive() else ' (exited)'}"] = [ln[:300] for ln in lines[-last:]]
        return out

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.http.aclose()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.close()
        for p in reversed(self.procs):  # workers first, then the API
            await asyncio.to_thread(stop_proc, p)
        await self.infra.drop_db(self.db)
        await self.infra.drop_stream(self.stream)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def cluster(
    infra: Infra, partitions: int, tag: str, fences: list[dict[str, Any]], **env: str
) -> AsyncIterator[Cluster]:
    c = Cluster(infra, partitions, tag, **env)
    try:
        await c.start(fences)
        yield c
    finally:
        await c.close()


# -- 1. throughput (and 3. lag) -----------------------------------------------------------
async def sample_lags(c: Cluster, into: dict[int, list[int]], stop: asyncio.Event) -> None:
    """The lag each owner reported (its heartbeat writes it in the lease), every 0.5 s."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            for r in await c.leases():
                if r["lag"] is not None:
                    into.setdefault(r["partition"], []).append(int(r["lag"]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


@dataclass
class Profiler:
    out: Path
    seconds: float
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def attach(self, name: str, pid: int) -> None:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if spy is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy (in the venv)")
        path = self.out / f"cluster-{name}.txt"
        cmd = [spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking"]
        cmd += ["--duration", str(int(self.seconds)), "--format", "raw", "-o", str(path)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append((name, p, path))

    def wait(self) -> dict[str, Path]:
        done = {}
        for name, p, path in self.procs:
            try:
                _, err = p.communicate(timeout=self.seconds + 60)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if path.exists():
                done[name] = path
            else:
                console.print(f"[yellow]py-spy {name}: {err.decode(errors='replace')[-500:]}")
        return done


async def throughput_run(
    infra: Infra,
    fences: list[dict[str, Any]],
    workers: int,
    lanes: list[list[bytes]],
    warm: list[bytes],
    seconds: float,
    status: Callable[[str], None],
    quiet: tuple[float, float],
    profile_to: Path | None = None,
) -> dict[str, Any]:
    async with cluster(infra, 16, f"t{workers}", fences) as c:
        status("starting workers")
        for _ in range(workers):
            await c.add_worker()
        await c.wait_balanced(c.workers)
        status("warm-up")
        async with httpx.AsyncClient(base_url=c.base, headers=c.ingest, timeout=60) as client:
            for body in warm:  # first commands of each worker: connections, caches
                r = await client.post("/v1/pings?wait=true", content=body)
                r.raise_for_status()
        await c.wait_applied(await c.log_ends(), 60)
        base_fixes, base_msgs, base_commits = await c.raw_fixes(), await c.messages(), 0
        base_commits = await c.commits()
        lags: dict[int, list[int]] = {}
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_lags(c, lags, stop))
        components = {c.api.pid: "api"} if c.api else {}
        components.update({w.pid: "worker" for w in c.workers})
        status("waiting for a quiet machine")
        busy_before, waited = await wait_quiet(*quiet)
        profiler = None
        if profile_to is not None:
            profiler = Profiler(profile_to, seconds)
            profiler.attach("worker", c.workers[0].pid)
            assert c.api is not None
            profiler.attach("api", c.api.pid)
        status(f"loading {seconds:.0f} s")
        s0 = snapshot(components, infra, c.db)
        loaded = await load(c.base, c.ingest, lanes, seconds)
        s1 = snapshot(components, infra, c.db)
        at_end = await c.raw_fixes() - base_fixes
        status("draining")
        ends = await c.log_ends()
        done_at = await c.wait_applied(ends, 600)
        s2 = snapshot(components, infra, c.db)
        stop.set()
        await sampler
        applied = await c.raw_fixes() - base_fixes
        msgs = await c.messages() - base_msgs
        commits = await c.commits() - base_commits
        profiles = profiler.wait() if profiler is not None else {}
        for p in c.procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} died during the run:\n{c.err_tail(p)}")
    total = done_at - s0.at
    drain = done_at - s1.at
    return {
        "workers": workers,
        "machine_busy_before_cores": busy_before,
        "waited_for_quiet_s": waited,
        "accepted": loaded.accepted,
        "requests": loaded.requests,
        "errors": loaded.errors,
        "ran_out_of_batches": loaded.ran_out,
        "load_s": round(loaded.seconds, 3),
        "accepted_per_s": loaded.accepted / loaded.seconds,
        "applied": applied,
        "applied_at_load_end": at_end,
        "until_lag_0_s": round(total, 3),
        "drain_s": round(drain, 3),
        "applied_per_s": applied / total,
        "applied_per_s_while_loading": at_end / loaded.seconds,
        "applied_per_s_draining": (applied - at_end) / drain if drain > 0.2 else None,
        "commands": msgs,
        "fixes_per_command": applied / msgs if msgs else None,
        "transactions": commits,
        "transactions_per_command": commits / msgs if msgs else None,
        "cpu_loading": cpu_between(s0, s1),
        "cpu_draining": cpu_between(s1, s2),
        # CPU milliseconds per 1,000 fixes applied after the load (the API then idle)
        "cpu_ms_per_1000_fixes_draining": {
            k: round((v["cores"] or 0.0) * drain * 1e6 / (applied - at_end), 1)
            for k, v in cpu_between(s1, s2).items()
        }
        if applied > at_end and drain > 0.2
        else None,
        "lag_samples": {str(p): v for p, v in sorted(lags.items())},
        "profiles": {k: rel(v) for k, v in profiles.items()},
    }


# -- 2. takeover --------------------------------------------------------------------------
async def takeovers(
    infra: Infra,
    fences: list[dict[str, Any]],
    walkers: Walkers,
    tries: int,
    status: Callable[[str], None],
) -> list[dict[str, Any]]:
    out = []
    async with cluster(infra, 16, "k", fences) as c:
        await c.add_worker()
        await c.add_worker()
        await c.wait_balanced(c.workers)
        stop = asyncio.Event()
        light = asyncio.create_task(trickle(c, walkers, 2.0, stop))
        try:
            for i in range(tries):
                status(f"takeover {i + 1}/{tries}")
                if len(c.live_workers()) < 2:
                    await c.add_worker()
                    await c.wait_balanced(c.live_workers())
                await asyncio.sleep(3.0)  # under load for a while
                victim, survivor = c.live_workers()[0], c.live_workers()[1]
                before = await c.cluster()
                moved = sum(lease["owner"] == victim.worker_id for lease in before["leases"])
                killed = time.monotonic()
                os.kill(victim.pid, signal.SIGKILL)
                victim.popen.wait()
                owned = caught = lag0 = None
                deadline = killed + 60
                while lag0 is None or caught is None:
                    doc = await c.cluster()
                    t = time.monotonic() - killed
                    leases = doc["leases"]
                    all_mine = all(lease["owner"] == survivor.worker_id for lease in leases)
                    if owned is None and all_mine:
                        owned = t
                        ends = await c.log_ends()  # what the log holds once it owns them all
                    if (
                        owned is not None
                        and caught is None
                        and all(
                            lease["applied_seq"] >= ends[lease["partition"]] for lease in leases
                        )
                    ):
                        caught = t
                    if lag0 is None and all_mine and all(lease["lag"] == 0 for lease in leases):
                        lag0 = t
                    if time.monotonic() > deadline:
                        raise RuntimeError("no takeover within 60 s")
                    await asyncio.sleep(0.1)
                out.append(
                    {
                        "partitions_moved": moved,
                        "owned_by_survivor_s": round(owned or 0.0, 2),
                        "caught_up_s": round(caught, 2),
                        "all_lags_0_s": round(lag0, 2),
                    }
                )
        finally:
            stop.set()
            await light
    return out


# -- 4. many workers ----------------------------------------------------------------------
def spread(doc: dict[str, Any], procs: list[Proc]) -> list[int]:
    counts = Counter(lease["owner"] for lease in doc["leases"])
    return [counts.get(p.worker_id, 0) for p in procs]


async def simulation(
    infra: Infra,
    fences: list[dict[str, Any]],
    walkers: Walkers,
    n: int,
    partitions: int,
    status: Callable[[str], None],
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    # 8 workers' pools on one PostgreSQL: 4 connections each is plenty for a light load
    async with cluster(infra, partitions, "s", fences, GEO_ENGINE_DB_POOL_MAX="4") as c:
        stop = asyncio.Event()
        light = asyncio.create_task(trickle(c, walkers, 1.0, stop))
        prev: dict[int, str | None] = dict.fromkeys(range(partitions))

        def record(event: str, doc: dict[str, Any], t: float, unowned: int, ideal: int) -> None:
            owners = {lease["partition"]: lease["owner"] for lease in doc["leases"]}
            moved = sum(
                1 for p, o in owners.items() if prev[p] is not None and prev[p] != o
            )  # a partition whose owner changed (not a first assignment)
            live = c.live_workers()
            steps.append(
                {
                    "event": event,
                    "workers": len(live),
                    "spread": spread(doc, live),
                    "moved": moved,
                    "minimum_moves": ideal,
                    "max_unowned_seen": unowned,
                    "to_full_ownership_s": round(t, 2),
                }
            )
            prev.update(owners)

        event = ""
        try:
            for i in range(n):
                status(f"worker {i + 1}/{n} joins")
                w = await c.add_worker("info")  # its ownership changes, for a failure's report
                event = f"{w.name} joins"
                at, doc, unowned = await c.wait_balanced(c.live_workers(), 60)
                # at least: the joiner's share (the others give up only their surplus)
                ideal = 0 if i == 0 else spread(doc, [w])[0]
                record(
                    f"{w.name} joins (up {w.up_at - w.started:.1f} s after spawn)",
                    doc,
                    at - w.up_at,
                    unowned,
                    ideal,
                )
            live = c.live_workers()
            a, b = live[len(live) // 2], live[-1]
            for victim, sig, how in (
                (a, signal.SIGTERM, "SIGTERM"),
                (b, signal.SIGKILL, "kill -9"),
            ):
                status(f"{how} {victim.name}")
                event = f"{how} {victim.name}"
                held = spread(await c.cluster(), [victim])[0]
                t0 = time.monotonic()
                victim.popen.send_signal(sig)
                rest = [w for w in c.live_workers() if w is not victim]
                at, doc, unowned = await c.wait_balanced(rest, 60)
                await asyncio.to_thread(victim.popen.wait, 30)
                record(f"{how} {victim.name}", doc, at - t0, unowned, held)
        except NotBalanced as exc:  # a finding, not a crash of the bench: kept and reported
            steps.append(
                {
                    "event": event,
                    "workers": len(c.live_workers()),
                    "error": str(exc),
                    "within_s": exc.within_s,
                    "timeline": exc.timeline,
                    "worker_logs": exc.logs,
                }
            )
        finally:
            stop.set()
            await light
    return steps


# -- profiles -----------------------------------------------------------------------------


async def amain(a: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    infra = Infra(a.database_url, a.nats_url, a.embedded)
    try:
        pg_version, nats_version = await infra.start()
        rng = np.random.default_rng(11)
        fences, centres = make_fences(rng, a.fences)
        walkers = Walkers(rng, centres, a.customers, a.concurrency, time.time() - 6 * 3600)
        warm = [walkers.batch(i % a.concurrency) for i in range(2 * a.concurrency)]
        per_lane = math.ceil(a.seconds * a.max_rate / BATCH / a.concurrency)
        console.print(
            f"generating {per_lane * a.concurrency:,} batches of {BATCH}"
            f" (up to {a.max_rate:,.0f} fixes/s for {a.seconds:g} s)"
        )
        lanes = [[walkers.batch(lane) for _ in range(per_lane)] for lane in range(a.concurrency)]
        doc: dict[str, Any] = {
            "command": "python scripts/bench_cluster.py"
            + "".join(f" {shlex.quote(x)}" for x in sys.argv[1:]),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
            "machine": machine(
                pg_version, nats_version, "embedded pgserver" if a.embedded else "machine's"
            ),
            "settings": {"heartbeat_s": HEARTBEAT_S, "lease_ttl_s": LEASE_TTL_S},
            "throughput": {"runs": {"1": [], "2": []}},
            "takeover": {"tries": []},
            "simulation": [],
        }
        steps = 2 * a.runs + 1 + 1 + 1
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("cluster", total=steps)

            def status(what: str) -> None:
                bar.update(task, description=f"profiled 2-worker run: {what}")

            for run in range(a.runs):  # interleaved: a drift of the machine hits both alike
                for n in (1, 2):
                    label = f"{n} worker{'s' if n > 1 else ''}, run {run + 1}/{a.runs}"

                    def st(what: str, label: str = label) -> None:
                        bar.update(task, description=f"{label}: {what}")

                    r = await throughput_run(
                        infra, fences, n, lanes, warm, a.seconds, st, (a.quiet, a.quiet_wait)
                    )
                    doc["throughput"]["runs"][str(n)].append(r)
                    bar.console.print(
                        f"{label}: accepted {r['accepted_per_s']:,.0f}/s, applied"
                        f" {r['applied_per_s']:,.0f}/s, lag 0 after {r['until_lag_0_s']:.1f} s"
                        + (
                            " [yellow](ran out of batches: raise --max-rate)"
                            if r["ran_out_of_batches"]
                            else ""
                        )
                    )
                    bar.advance(task)
            summarise(doc)
            ratio = doc["throughput"]["ratio_applied_2_over_1"]
            bar.console.print(f"ratio 2 workers / 1 worker (applied/s): {ratio:.2f}")
            if a.profile == "always" or (a.profile == "auto" and ratio < 1.5):
                bar.update(task, description="profiled 2-worker run")
                r = await throughput_run(
                    infra,
                    fences,
                    2,
                    lanes,
                    warm,
                    a.seconds,
                    status,
                    (a.quiet, a.quiet_wait),
                    profile_to=a.out,
                )
                doc["profile"] = {
                    "run": {k: v for k, v in r.items() if k != "lag_samples"},
                    "files": r["profiles"],
                    "summary": {
                        k: summarise_profile(ROOT / v, a.seconds) for k, v in r["profiles"].items()
                    },
                }
            bar.advance(task)
            bar.update(task, description="takeover")
            doc["takeover"]["tries"] = await takeovers(
                infra, fences, walkers, a.takeovers, lambda s: bar.update(task, description=s)
            )
            bar.advance(task)
            doc["simulation"] = await simulation(
                infra,
                fences,
                walkers,
                a.sim_workers,
                a.sim_partitions,
                lambda s: bar.update(task, description=f"simulation: {s}"),
            )
            bar.advance(task)
        summarise(doc)
        doc["seconds"] = time.monotonic() - started
        doc["reading"] = reading(doc)
        return doc
    finally:
        for p in _ALL_PROCS:
            with contextlib.suppress(Exception):
                stop_proc(p)  # whatever a failure left running
        await infra.close()


def no_nan(x: Any) -> Any:
    """JSON has no NaN: a figure that could not be had is null."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [no_nan(v) for v in x]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 run each, 2 s loads, 1 takeover: checks that all runs",
    )
    ap.add_argument("--embedded", action="store_true", help="own nats-server and pgserver")
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="load duration of a run")
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--fences", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=4, help="uploaders")
    ap.add_argument(
        "--max-rate", type=float, default=250_000, help="fixes/s the pre-generated batches last for"
    )
    ap.add_argument("--takeovers", type=int, default=3)
    ap.add_argument(
        "--quiet",
        type=float,
        default=0.3,
        help="before each run, wait until the machine is busy less than this many cores",
    )
    ap.add_argument("--quiet-wait", type=float, default=10.0, help="... at most this long (s)")
    ap.add_argument("--sim-workers", type=int, default=8)
    ap.add_argument("--sim-partitions", type=int, default=32)
    ap.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default=None,
        help="py-spy run: auto = when the ratio is < 1.5 (default; never with --quick)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    ap.add_argument("--render", action="store_true", help="re-render <out>/cluster.md only")
    a = ap.parse_args()
    if a.render:  # the same figures, the report re-rendered (after a change of its layout)
        doc = json.loads((a.out / "cluster.json").read_text())
        doc["reading"] = reading(doc)
        (a.out / "cluster.json").write_text(json.dumps(no_nan(doc), indent=2) + "\n")
        (a.out / "cluster.md").write_text(render(doc))
        return
    if a.quick:
        a.runs, a.seconds = 1, min(a.seconds, 2.0)
        a.takeovers = min(a.takeovers, 1)
        a.quiet_wait = min(a.quiet_wait, 5.0)
    if a.profile is None:
        a.profile = "never" if a.quick else "auto"

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    a.out.mkdir(parents=True, exist_ok=True)
    doc = asyncio.run(amain(a))
    (a.out / "cluster.json").write_text(json.dumps(no_nan(doc), indent=2) + "\n")
    md = render(doc)
    (a.out / "cluster.md").write_text(md)
    console.print(md)


if __name__ == "__main__":
    main()
