"""Redemption codes (geo_engine/decision/codes.py): the format every store issues, and the
replacement of a taken code wherever the offer's texts carry it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from adapters.db.outcomes import normalize_code
from geo_engine.decision.codes import ALPHABET, CODE_LENGTH, new_code, recoded


def test_a_new_code_is_8_crockford_characters_a_till_reads_back() -> None:
    codes = {new_code() for _ in range(500)}
    assert len(codes) == 500  # 40 random bits: no collision in so few
    for code in codes:
        assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
        assert normalize_code(code.lower()) == code


def test_the_characters_come_from_the_given_choice() -> None:
    drawn: Iterator[str] = iter("0123ABCD")

    def choice(alphabet: Sequence[str]) -> str:
        assert alphabet == ALPHABET
        return next(drawn)

    assert new_code(choice) == "0123ABCD"


def test_a_code_is_replaced_in_every_text_of_the_payload() -> None:
    payload = {
        "value": 5.0,
        "code": "OLD00000",
        "sms": {"text": "-10%: OLD00000", "segments": 1},
        "lines": ["OLD00000", 3, None],
    }
    assert recoded(payload, "OLD00000", "NEW11111") == {
        "value": 5.0,
        "code": "NEW11111",
        "sms": {"text": "-10%: NEW11111", "segments": 1},
        "lines": ["NEW11111", 3, None],
    }
    assert payload["code"] == "OLD00000"  # a copy: the caller's payload is left as it was
