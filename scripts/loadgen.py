"""A lean HTTP/1.1 load generator: pre-built requests on keep-alive connections, several
processes, so the client costs far less than the server it measures (httpx would spend more
CPU per request than the engine). Closed loop for throughput; open loop (fixed send times,
latency from the scheduled time) for latency.

Used by scripts/bench_e2e.py and scripts/soak.py; importable, no engine imports.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import time
from dataclasses import dataclass, field

_ACCEPTED = re.compile(rb'"accepted":\s*(\d+)')


def request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


@dataclass
class Tally:
    requests: int = 0
    accepted: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    body = await reader.readexactly(int(m.group(1))) if m else b""
    return status, body


def _count(t: Tally, status: int, body: bytes) -> None:
    t.requests += 1
    if 200 <= status < 300:
        m = _ACCEPTED.search(body)
        t.accepted += int(m.group(1)) if m else 0
    else:
        t.errors[status] = t.errors.get(status, 0) + 1


async def _closed(port: int, reqs: list[bytes], conns: int, until: float, t: Tally) -> None:
    async def one(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        try:
            while time.perf_counter() < until:
                writer.write(reqs[i % len(reqs)])
                i += conns
                status, body = await _read_reply(reader)
                _count(t, status, body)
        finally:
            writer.close()

    await asyncio.gather(*(one(k) for k in range(conns)))


def _closed_proc(args: tuple[int, list[bytes], int, float, float], q: mp.Queue) -> None:  # type: ignore[type-arg]
    port, reqs, conns, start_at, seconds = args
    t = Tally()
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    try:
        asyncio.run(_closed(port, reqs, conns, began + seconds, t))
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        t.errors[0] = t.errors.get(0, 0) + 1
        print(f"loadgen: {exc!r}")
    q.put((t.requests, t.accepted, t.errors, time.perf_counter() - began))


def closed_loop(
    port: int, reqs: list[bytes], *, procs: int, conns: int, seconds: float
) -> tuple[float, float, dict[int, int]]:
    """(requests/s, accepted rows/s, error counts) with `procs` processes of `conns`
    connections each sending as fast as the server answers for `seconds`."""
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 0.5
    ps = [
        ctx.Process(target=_closed_proc, args=((port, reqs[i::procs], conns, start_at, seconds), q))
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    got = [q.get(timeout=seconds + 120) for _ in ps]
    for p in ps:
        p.join()
    errors: dict[int, int] = {}
    for _, _, e, _ in got:
        for k, v in e.items():
            errors[k] = errors.get(k, 0) + v
    elapsed = max(g[3] for g in got)
    return sum(g[0] for g in got) / elapsed, sum(g[1] for g in got) / elapsed, errors


async def open_loop(port: int, reqs: list[bytes], rate: float, conns: int = 64) -> Tally:
    """Send reqs[i] at start + i / rate on a pool of connections; latency counts from the
    scheduled time, so a stalled server is not hidden by a client that waits for it."""
    t = Tally()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    start = time.perf_counter() + 0.05

    async def one(i: int, at: float) -> None:
        reader, writer = await pool.get()
        try:
            writer.write(reqs[i % len(reqs)])
            status, body = await _read_reply(reader)
        finally:
            pool.put_nowait((reader, writer))
        t.latencies_ms.append((time.perf_counter() - at) * 1000)
        _count(t, status, body)

    tasks = []
    for i in range(len(reqs)):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, at)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return t
