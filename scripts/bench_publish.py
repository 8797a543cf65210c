"""The log's publish alone: the API process's CPU to make one request durable, by how many
partitions (parts) it touches. Each part is one JetStream message and one ack
(adapters/bus/acks.py), so this is the per-part cost a 500-fix request of ~16 parts pays.

    python scripts/bench_publish.py [--nats-url nats://127.0.0.1:4222] [--requests 600]

Without --nats-url (or GEO_ENGINE_NATS_URL) an embedded nats-server is started and stopped.
32 KB a request (a 500-fix request's columns), split evenly over its parts, 8 requests in
flight; client CPU (process time) and wall time per request, median of --runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import StreamConfig

from adapters.bus.acks import MSG_ID, AckedPublisher
from adapters.bus.server import resolve_nats_url, stop_embedded_nats

STREAM = "BENCH_PUBLISH"


async def _per_request(url: str, parts: int, requests: int) -> tuple[float, float]:
    """(client CPU µs, wall µs) per request of `parts` parts."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=STREAM, subjects=["bench_publish.*"]))
    pub = AckedPublisher(nc)
    await pub.start()
    payload = os.urandom(32_000 // parts)
    run = time.time_ns()

    async def one(i: int) -> None:
        msgs = [(f"bench_publish.{p}", payload, {MSG_ID: f"{run}-{i}:{p}"}) for p in range(parts)]
        await pub.publish(msgs, 5.0)

    try:
        for i in range(-40, 0, 8):  # warm-up
            await asyncio.gather(*(one(k) for k in range(i, i + 8)))
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, requests, 8):
            await asyncio.gather(*(one(k) for k in range(i, i + 8)))
        return (
            (time.process_time() - cpu) / requests * 1e6,
            (time.perf_counter() - wall) / requests * 1e6,
        )
    finally:
        await js.delete_stream(STREAM)
        await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nats-url", default=os.environ.get("GEO_ENGINE_NATS_URL"))
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    url = resolve_nats_url(args.nats_url, data_dir)
    try:
        got = {}
        for parts in (1, 4, 16):
            runs = [asyncio.run(_per_request(url, parts, args.requests)) for _ in range(args.runs)]
            got[parts] = (
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
            )
        print("| parts a request | client CPU µs a request | each part beyond one, µs | wall µs |")
        print("|---:|---:|---:|---:|")
        for parts, (cpu, wall) in got.items():
            extra = f"{(cpu - got[1][0]) / (parts - 1):.1f}" if parts > 1 else "–"
            print(f"| {parts} | {cpu:.0f} | {extra} | {wall:.0f} |")
    finally:
        if args.nats_url is None:
            stop_embedded_nats(data_dir)


if __name__ == "__main__":
    main()
