"""A request without an Idempotency-Key gets a key of its own in the log: unique within the
process, and after a fork (the log would drop a child's request as a resend of its parent's)."""

from __future__ import annotations

import os

from adapters.api.ingest import log_key
from adapters.auth import Principal, Role

P = Principal("k1", Role.INGEST)


def test_keys_without_a_client_key_are_unique_and_a_client_key_is_scoped() -> None:
    keys = {log_key(None, P) for _ in range(10_000)}
    assert len(keys) == 10_000
    assert log_key("retry-7", P) == "k1.retry-7"
    assert all("." not in k for k in keys)  # never one of a client's keys


def test_a_forked_child_does_not_reuse_its_parents_keys() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next key, to the parent
        os.write(write, log_key(None, P).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    parent = log_key(None, P)
    assert child.rsplit("-", 1)[0] != parent.rsplit("-", 1)[0]
