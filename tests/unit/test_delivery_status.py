"""The order of a provider's delivery statuses (geo_engine/delivery/status.py), pure: a status
only moves forward, so a callback arriving late never undoes a newer one."""

from __future__ import annotations

import itertools

import pytest

from geo_engine.delivery.status import RANK, moves_forward

CHAIN = ["queued", "sending", "sent", "delivered", "read"]
FINAL = ["delivered", "undelivered", "failed", "canceled", "partially_delivered"]


def test_the_first_status_always_applies() -> None:
    for status in RANK:
        assert moves_forward(None, status)


@pytest.mark.parametrize(("earlier", "later"), list(itertools.combinations(CHAIN, 2)))
def test_forward_applies_backward_does_not(earlier: str, later: str) -> None:
    assert moves_forward(earlier, later)
    assert not moves_forward(later, earlier)  # e.g. a late `sent` after `delivered`


@pytest.mark.parametrize("status", list(RANK))
def test_a_repeat_is_not_applied(status: str) -> None:
    assert not moves_forward(status, status)


@pytest.mark.parametrize(("a", "b"), list(itertools.permutations(FINAL, 2)))
def test_no_final_status_replaces_another(a: str, b: str) -> None:
    assert not moves_forward(a, b)


def test_accepted_and_scheduled_come_before_queued_and_read_after_all() -> None:
    for early in ("accepted", "scheduled"):
        assert moves_forward(early, "queued") and not moves_forward("queued", early)
    for status in set(RANK) - {"read"}:
        assert moves_forward(status, "read")


def test_a_stored_status_the_order_does_not_know_ranks_lowest() -> None:
    assert moves_forward("something_new", "accepted")


def test_the_order_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        RANK["sent"] = 9  # type: ignore[index]
