"""French marketing SMS mentions: the sender and a free STOP, added only when missing."""

from __future__ import annotations

from geo_engine.decision.gsm7 import sms_length
from geo_engine.decision.sms_mentions import SmsMentions

M = SmsMentions(sender="Maison Lumière", opt_out="STOP au 36111")


def test_both_mentions_are_added_when_missing() -> None:
    assert M.apply("-10% today with code AB12") == (
        "Maison Lumière: -10% today with code AB12 STOP au 36111"
    )


def test_present_mentions_are_not_repeated_case_and_accents_aside() -> None:
    text = "MAISON LUMIERE -10% aujourd'hui. Stop au 36111"
    assert M.apply(text) == text


def test_stop_must_be_a_word_not_part_of_one() -> None:
    out = M.apply("Maison Lumière: nonstop deals")
    assert out.endswith("STOP au 36111")


def test_empty_settings_change_nothing() -> None:
    assert SmsMentions(sender="", opt_out="").apply("  hello ") == "hello"


def test_the_added_mentions_count_in_the_segments() -> None:
    text = "x" * 150
    assert sms_length(text).segments == 1
    assert sms_length(M.apply(text)).segments == 2
