"""The partition of a customer and the fair share of partitions between workers."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from geo_engine.partitions import partition_of, target_owners


def test_partition_is_stable_across_processes() -> None:
    # Python's hash() is salted per process: a partition must not be
    ids = [f"cust-{i}" for i in range(50)]
    code = (
        "from geo_engine.partitions import partition_of;"
        f"print([partition_of(c, 16) for c in {ids!r}])"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str([partition_of(c, 16) for c in ids])


def test_partitions_spread_customers() -> None:
    counts = [0] * 16
    for i in range(16_000):
        counts[partition_of(f"c{i}", 16)] += 1
    assert min(counts) > 800 and max(counts) < 1200


@given(
    workers=st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=10, unique=True),
    partitions=st.integers(1, 64),
    seed_owner=st.lists(st.sampled_from("abcdefghijz"), max_size=64),
)
def test_fair_share(workers: list[str], partitions: int, seed_owner: list[str]) -> None:
    owners = {p: w for p, w in enumerate(seed_owner[:partitions])}
    plan = target_owners(workers, owners, partitions)
    assert sorted(plan) == list(range(partitions))  # every partition has one owner
    assert set(plan.values()) <= set(workers)  # only live workers
    share = [sum(1 for w in plan.values() if w == x) for x in workers]
    assert max(share) - min(share) <= 1  # fair


def test_a_joining_worker_takes_only_its_share() -> None:
    before = target_owners(["a"], {}, 16)
    after = target_owners(["a", "b"], before, 16)
    moved = [p for p in range(16) if after[p] != before[p]]
    assert len(moved) == 8 and all(after[p] == "b" for p in moved)


def test_a_leaving_worker_hands_out_only_its_own() -> None:
    three = target_owners(["a", "b", "c"], {}, 12)
    two = target_owners(["a", "c"], three, 12)
    moved = [p for p in range(12) if two[p] != three[p]]
    assert all(three[p] == "b" for p in moved)  # a's and c's partitions stay where they are
    assert len(moved) == 4


def test_every_worker_computes_the_same_plan() -> None:
    owners = {0: "b", 1: "a", 5: "c", 7: None}
    plans = {str(target_owners(ws, owners, 8)) for ws in (["a", "b", "c"], ["c", "b", "a"])}
    assert len(plans) == 1
