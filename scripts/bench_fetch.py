"""An owner's read of the log alone: client CPU per message to fetch a partition's backlog, with
nats-py's `PullSubscription.fetch` (a task, a `wait_for` and a uuid4 per message) and with the
feed the engine uses (adapters/bus/pull.py: the same pull requests, answered on an inbox of its
own through a subscription callback). Both build what an owner reads of each message (stream
sequence, data, reply header, lag) and ack each batch.

    python scripts/bench_fetch.py [--nats-url nats://127.0.0.1:4222] [--messages 30000]

Without --nats-url (or GEO_ENGINE_NATS_URL) an embedded nats-server is started and stopped.
1 KB messages (a 500-fix request's part for one of 16 partitions is ~2 KB), batches of 256,
median of --runs, the two alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from adapters.bus.pull import REPLY_HEADER, PartitionFeed
from adapters.bus.server import resolve_nats_url, stop_embedded_nats

STREAM, SUBJECT, BATCH = "BENCH_FETCH", "bench_fetch.0", 256


def _config() -> ConsumerConfig:
    return ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=1,
        ack_policy=AckPolicy.ALL,
        ack_wait=60.0,
        inactive_threshold=30.0,
        max_ack_pending=100_000,
    )


async def _library(nc: nats.NATS, js: JetStreamContext, n: int) -> float:
    sub = await js.pull_subscribe(SUBJECT, durable=None, stream=STREAM, config=_config())
    got, cpu = 0, time.process_time()
    while got < n:
        msgs = await sub.fetch(BATCH, timeout=1.0)
        rows = [
            (m.metadata.sequence.stream, m.data, (m.headers or {}).get(REPLY_HEADER),
             m.metadata.num_pending)
            for m in msgs
        ]  # fmt: skip
        got += len(rows)
        await msgs[-1].ack()
    spent = time.process_time() - cpu
    await sub.unsubscribe()
    return spent


async def _engine(nc: nats.NATS, js: JetStreamContext, n: int) -> float:
    feed = await PartitionFeed.open(nc, js, STREAM, SUBJECT, _config())
    got, cpu = 0, time.process_time()
    while got < n:
        batch = await feed.fetch(BATCH, 1.0)
        got += len(batch)
        await feed.ack(batch[-1])
    spent = time.process_time() - cpu
    await feed.close()
    return spent


Reader = Callable[[nats.NATS, JetStreamContext, int], Awaitable[float]]


async def _runs(url: str, n: int, runs: int) -> dict[str, list[float]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT]))
    try:
        payload = os.urandom(1000)
        for i in range(0, n, 500):
            await asyncio.gather(*(js.publish(SUBJECT, payload) for _ in range(min(500, n - i))))
        readers: dict[str, Reader] = {"nats-py fetch": _library, "engine feed": _engine}
        out: dict[str, list[float]] = {k: [] for k in readers}
        for _ in range(runs):
            for name, read in readers.items():
                out[name].append(await read(nc, js, n) / n * 1e6)
        return out
    finally:
        await js.delete_stream(STREAM)
        await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nats-url", default=os.environ.get("GEO_ENGINE_NATS_URL"))
    ap.add_argument("--messages", type=int, default=30_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    url = resolve_nats_url(args.nats_url, data_dir)
    try:
        got = asyncio.run(_runs(url, args.messages, args.runs))
        print("| reader | client CPU µs a message (median) | runs |")
        print("|---|---:|---|")
        for name, xs in got.items():
            runs = ", ".join(f"{x:.1f}" for x in xs)
            print(f"| {name} | {statistics.median(xs):.1f} | {runs} |")
    finally:
        if args.nats_url is None:
            stop_embedded_nats(data_dir)


if __name__ == "__main__":
    main()
