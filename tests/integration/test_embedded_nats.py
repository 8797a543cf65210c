"""The embedded nats-server: JetStream on, shared by every engine process of a data directory,
stopped by the last one to leave (a process killed with -9 does not count), data kept on disk."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import nats
import psutil

from adapters.bus.server import embedded_nats_url, stop_embedded_nats

ROOT = Path(__file__).resolve().parents[2]

# a stand-in engine process: takes the server of argv[1], prints its URL and the server's pid,
# optionally lingers
_ENGINE = """
import json, sys, time
from pathlib import Path
from adapters.bus.server import embedded_nats_url
url = embedded_nats_url(Path(sys.argv[1]))
pid = json.loads((Path(sys.argv[1]) / "nats" / "server.json").read_text())["pid"]
print(url, pid, flush=True)
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))
"""


def _engine(data_dir: Path) -> tuple[str, int]:
    """Run a stand-in engine to its normal exit (atexit included); its URL and server pid."""
    done = subprocess.run(
        [sys.executable, "-c", _ENGINE, str(data_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    url, pid = done.stdout.split()
    return url, int(pid)


def _state(data_dir: Path) -> tuple[int, int]:
    data = json.loads((data_dir / "nats" / "server.json").read_text())
    return int(data["pid"]), int(data["port"])


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


async def _connect(url: str) -> nats.NATS:
    return await nats.connect(url, connect_timeout=2, allow_reconnect=False)


async def test_the_embedded_server_has_jetstream(tmp_path: Path) -> None:
    url = await asyncio.to_thread(embedded_nats_url, tmp_path)
    try:
        nc = await _connect(url)
        try:
            js = nc.jetstream(timeout=5)
            await js.add_stream(name="T", subjects=["t.>"])
            ack = await js.publish("t.a", b"hello")
            assert ack.seq == 1
            msg = await js.get_msg("T", 1)
            assert msg.data == b"hello"
        finally:
            await nc.close()
        assert (tmp_path / "nats" / "js" / "jetstream").is_dir()  # the store is in the data dir
    finally:
        await asyncio.to_thread(stop_embedded_nats, tmp_path)


def test_a_second_call_reuses_the_server(tmp_path: Path) -> None:
    try:
        url = embedded_nats_url(tmp_path)
        pid, port = _state(tmp_path)
        assert url == f"nats://127.0.0.1:{port}"
        assert embedded_nats_url(tmp_path) == url
        assert _state(tmp_path) == (pid, port)
        assert [p.name for p in (tmp_path / "nats" / "users").iterdir()] == [str(os.getpid())]
    finally:
        stop_embedded_nats(tmp_path)
    assert not _running(pid) and _refuses(port)
    stop_embedded_nats(tmp_path)  # idempotent


def test_another_process_leaving_does_not_stop_a_server_still_in_use(tmp_path: Path) -> None:
    try:
        url = embedded_nats_url(tmp_path)
        pid, port = _state(tmp_path)
        assert _engine(tmp_path) == (url, pid)
        assert _running(pid) and not _refuses(port)
        assert _state(tmp_path) == (pid, port)
    finally:
        stop_embedded_nats(tmp_path)
    assert not _running(pid) and _refuses(port)  # now this process was the last one


def test_the_last_process_stops_what_it_started(tmp_path: Path) -> None:
    url, pid = _engine(tmp_path)
    port = int(url.rsplit(":", 1)[1])
    assert not _running(pid) and _refuses(port)
    assert not _nats_servers(tmp_path), "a nats-server on this store is still running"


def test_a_killed_process_leaves_the_server_to_the_next_one(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _ENGINE, str(tmp_path), "60"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url, _ = proc.stdout.readline().split()
        pid, port = _state(tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert _running(pid) and not _refuses(port)  # nobody said it was done with it
    assert _engine(tmp_path) == (url, pid)  # reused, not a second server
    assert not _running(pid) and _refuses(port)  # and the dead user's claim did not count


async def test_jetstream_data_survives_a_restart(tmp_path: Path) -> None:
    url = await asyncio.to_thread(embedded_nats_url, tmp_path)
    try:
        nc = await _connect(url)
        try:
            js = nc.jetstream(timeout=5)
            await js.add_stream(name="KEEP", subjects=["keep.>"])
            await js.publish("keep.a", b"kept")
        finally:
            await nc.close()
        pid, _ = _state(tmp_path)
        await asyncio.to_thread(stop_embedded_nats, tmp_path)
        assert not _running(pid)

        url = await asyncio.to_thread(embedded_nats_url, tmp_path)
        assert _state(tmp_path)[0] != pid  # a new server on the same store
        nc = await _connect(url)
        try:
            js = nc.jetstream(timeout=5)
            info = await js.stream_info("KEEP")
            assert info.state.messages == 1
            assert (await js.get_msg("KEEP", 1)).data == b"kept"
        finally:
            await nc.close()
    finally:
        await asyncio.to_thread(stop_embedded_nats, tmp_path)


def _nats_servers(data_dir: Path) -> list[psutil.Process]:
    """nats-server processes whose store is in `data_dir` (whatever their pid)."""
    store = str((data_dir / "nats" / "js").resolve())
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        if cmdline and "nats-server" in cmdline[0] and store in cmdline and _running(p.pid):
            found.append(p)
    return found
