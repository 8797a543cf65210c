"""The API's customer -> partition cache (adapters/cluster/partition_cache.py) answers what
blake2b does, for every id, whatever the table holds, shares or cannot hold."""

from __future__ import annotations

import random

import numpy as np
import pytest

import adapters.cluster.partition_cache as pc
from adapters.cluster.partition_cache import PartitionCache
from geo_engine.partitions import partition_of


def _expected(ids: list[str], n: int = 16) -> list[int]:
    return [partition_of(c, n) for c in ids]


def _ids(rng: random.Random, k: int) -> list[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-é漢"  # beyond Latin-1 too
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(k)]


def test_requests_answer_as_blake2b_while_the_table_fills_and_after() -> None:
    rng = random.Random(14)
    known = _ids(rng, 6000)
    cache = PartitionCache(16)
    for _ in range(40):  # new and known ids mixed, the table rebuilt on the way
        batch = rng.choices(known, k=400) + _ids(rng, 20)
        assert cache.of(batch).tolist() == _expected(batch)
        assert cache.of(batch).dtype == np.int32
    assert len(cache._keys) > 0  # the table answers, not only the dict
    assert [cache.one(c) for c in known[:50]] == _expected(known[:50])


def test_ids_the_table_cannot_hold_or_tell_apart() -> None:
    cache = PartitionCache(16)
    cache.of([f"c{i}" for i in range(3000)])
    cache.of([f"c{i}" for i in range(3000)])  # built by now
    assert len(cache._keys) >= 3000
    odd = ["x" * 300, "c1\x00", "c1", "", "c2\x00\x00", "c1" + "\x00" * 3, "c" * 48, "c" * 49]
    for batch in (odd, odd[:2], ["c1", "c1\x00"], ["c5", "c" * 1500]):
        assert cache.of(batch).tolist() == _expected(batch)
    assert cache.of([]).tolist() == []


def test_a_shared_hash_is_a_lookup_not_a_wrong_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    def one_hash(ids: np.ndarray) -> np.ndarray:  # every id collides
        return np.zeros(len(ids), np.uint64)

    monkeypatch.setattr(pc, "_hashes", one_hash)
    cache = PartitionCache(8)
    ids = [f"id-{i}" for i in range(2500)]
    for _ in range(3):
        assert cache.of(ids).tolist() == _expected(ids, 8)


def test_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pc, "_LIMIT", 1500)
    cache = PartitionCache(16)
    for start in range(0, 6000, 500):
        batch = [f"k{i}" for i in range(start, start + 500)]
        assert cache.of(batch).tolist() == _expected(batch)
        assert len(cache._known) <= 1500
