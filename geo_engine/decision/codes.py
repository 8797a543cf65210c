"""Redemption codes: the format printed in an offer, shared by every campaign store.

8 characters of Crockford base32 (40 random bits: ~1e12 codes, so a collision is rare even
with millions issued, and a store retries with a new code anyway). The code is rendered into
the offer's texts, so a store that must replace a taken one replaces it there too (`recoded`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
CODE_LENGTH = 8


def new_code(choice: Callable[[Sequence[str]], str] = secrets.choice) -> str:
    """A fresh code; `choice` draws one character (the OS's CSPRNG unless a test fixes it)."""
    return "".join(choice(ALPHABET) for _ in range(CODE_LENGTH))


def recoded(value: object, old: str, new: str) -> object:
    """`value` with every occurrence of `old` replaced, through nested dicts and lists."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: recoded(x, old, new) for k, x in value.items()}
    if isinstance(value, list):
        return [recoded(x, old, new) for x in value]
    return value
