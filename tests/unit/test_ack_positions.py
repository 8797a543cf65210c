"""A delivered message's stream sequence and pending count, read from its ack subject as
nats-py's `Msg.metadata` reads them, in both layouts the server sends (ADR-15)."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from adapters.bus.pull import _positions

SUBJECTS = [
    "$JS.ACK.geo.c1.1.1234.1200.1733385600000000000.17",  # v1: no domain, no account
    "$JS.ACK._.ACCHASH.geo.c1.2.99.98.1733385600000000000.0.tok",  # v2, with its token
    "$JS.ACK.hub.ACCHASH.geo.c1.1.7.6.1733385600000000000.123",  # v2 without the token
]


@pytest.mark.parametrize("reply", SUBJECTS)
def test_the_fields_nats_py_reads(reply: str) -> None:
    meta = Msg(None, subject="geo.p.0", reply=reply, data=b"x").metadata  # type: ignore[arg-type]
    assert _positions(reply) == (meta.sequence.stream, meta.num_pending)


def test_sequences_past_32_bits() -> None:
    assert _positions("$JS.ACK.geo.c1.1.5000000000.3.1733385600000000000.4") == (5000000000, 4)
