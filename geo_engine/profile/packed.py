"""Compact per-customer records: category scores, consents and declared attributes, each packed
in one `bytes` object rather than a dict of Python objects.

Why: a dict of three consents, or of three category scores, costs ~230 B of dict plus its
float and record objects; the same figures packed take ~70 B. Repeated strings (category
names, consent sources, age bands, CSP, postcodes) become numbers into a table shared by every
customer (`Strings`); a first name is personal, so it stays inside its customer's record and
goes with it on erasure.

The tables read and write like the mappings they replace (`get`, `[]`, `in`, `items()`), each
read decoding a fresh dict or record: mutating what a read returns changes nothing stored.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from functools import cache

from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose, ConsentStatus, Sex

_PURPOSES: tuple[ConsentPurpose, ...] = tuple(ConsentPurpose)
_PURPOSE_INDEX = {p: i for i, p in enumerate(_PURPOSES)}
_STATUSES: tuple[ConsentStatus, ...] = tuple(ConsentStatus)
_STATUS_INDEX = {s: i for i, s in enumerate(_STATUSES)}
_CONSENT = struct.Struct("<BId")  # purpose x 4 + status, source id, at
_ATTRS = struct.Struct("<B4Iqd")  # has-name/has-household flags, 4 string ids, household, at
_NO_HOUSEHOLD = -(2**63)


class Strings:
    """Repeated values as numbers: id 0 is None, ids never change nor are reused."""

    def __init__(self) -> None:
        self.values: list[str | None] = [None]
        self.ids: dict[str, int] = {}

    def id(self, value: str | None) -> int:
        if value is None:
            return 0
        i = self.ids.get(value)
        if i is None:
            i = self.ids[value] = len(self.values)
            self.values.append(str(value))
        return i


@cache
def _scores_struct(n: int) -> struct.Struct:
    return struct.Struct(f"<{n}I{n}d")


class CategoryTable:
    """Category scores per slot (only slots with some): names as ids, scores as float64, in
    insertion order (ties in the top-N cut and in rankings keep resolving the same way)."""

    def __init__(self, names: Strings) -> None:
        self.names = names
        self.rows: list[bytes | None] = []  # by slot

    def get(self, slot: int, default: dict[str, float] | None = None) -> dict[str, float]:
        b = self.rows[slot] if slot < len(self.rows) else None
        if b is None:
            return {} if default is None else default
        n = len(b) // 12
        vals = _scores_struct(n).unpack(b)
        names = self.names.values
        return {str(names[i]): v for i, v in zip(vals[:n], vals[n:], strict=True)}

    def __getitem__(self, slot: int) -> dict[str, float]:
        if slot not in self:
            raise KeyError(slot)
        return self.get(slot)

    def __setitem__(self, slot: int, scores: Mapping[str, float]) -> None:
        if slot >= len(self.rows):
            self.rows.extend([None] * (slot + 1 - len(self.rows)))
        if not scores:
            self.rows[slot] = None
            return
        ids = [self.names.id(c) for c in scores]
        self.rows[slot] = _scores_struct(len(ids)).pack(*ids, *scores.values())

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and 0 <= slot < len(self.rows) and bool(self.rows[slot])

    def __len__(self) -> int:
        return sum(1 for b in self.rows if b)

    def items(self) -> Iterator[tuple[int, dict[str, float]]]:
        for s, b in enumerate(self.rows):
            if b:
                yield s, self.get(s)

    def scale(self, k: float) -> None:
        """Every score times k (a decay rebase)."""
        for s, scores in list(self.items()):
            self[s] = {c: v * k for c, v in scores.items()}

    def truncate(self, n: int) -> None:
        del self.rows[n:]


class _Records:
    """customer -> one packed record. A customer with a slot keeps it in a list by slot (one
    pointer); one without (consents given before any event) in a dict (~40 B an entry)."""

    def __init__(self, slots: Mapping[str, int], ids: list[str]) -> None:
        self.slots = slots  # the state's own: shared, never copied
        self.ids = ids
        self.by_slot: list[bytes | None] = []
        self.loose: dict[str, bytes] = {}

    def raw(self, customer_id: str) -> bytes | None:
        s = self.slots.get(customer_id)
        if s is None:
            return self.loose.get(customer_id)
        return self.by_slot[s] if s < len(self.by_slot) else None

    def put(self, customer_id: str, b: bytes | None) -> None:
        s = self.slots.get(customer_id)
        if s is None:
            if b is None:
                self.loose.pop(customer_id, None)
            else:
                self.loose[customer_id] = b
            return
        if s >= len(self.by_slot):
            if b is None:
                return
            self.by_slot.extend([None] * (s + 1 - len(self.by_slot)))
        self.by_slot[s] = b

    def adopt(self, customer_id: str, slot: int) -> None:
        """The customer got `slot`: its record moves from the dict to the list."""
        b = self.loose.pop(customer_id, None)
        if b is not None:
            self.slots_put(slot, b)

    def slots_put(self, slot: int, b: bytes) -> None:
        if slot >= len(self.by_slot):
            self.by_slot.extend([None] * (slot + 1 - len(self.by_slot)))
        self.by_slot[slot] = b

    def truncate(self, n: int) -> None:
        """Slots from n on are forgotten (before the state's ids are cut): back to the dict."""
        for s, b in enumerate(self.by_slot[n:], n):
            if b is not None:
                self.loose[self.ids[s]] = b
        del self.by_slot[n:]

    def raw_items(self) -> Iterator[tuple[str, bytes]]:
        for s, b in enumerate(self.by_slot):
            if b is not None:
                yield self.ids[s], b
        yield from self.loose.items()

    def __contains__(self, customer_id: object) -> bool:
        return isinstance(customer_id, str) and self.raw(customer_id) is not None

    def __delitem__(self, customer_id: str) -> None:
        if self.raw(customer_id) is None:
            raise KeyError(customer_id)
        self.put(customer_id, None)

    def __len__(self) -> int:
        return sum(1 for b in self.by_slot if b is not None) + len(self.loose)

    def __iter__(self) -> Iterator[str]:
        return (cid for cid, _ in self.raw_items())


class ConsentTable(_Records):
    """customer -> {purpose: Consent}: per consent 13 bytes (purpose and status in one)."""

    def __init__(self, slots: Mapping[str, int], ids: list[str], sources: Strings) -> None:
        super().__init__(slots, ids)
        self.sources = sources

    def encode(self, consents: Mapping[ConsentPurpose, Consent]) -> bytes:
        sid = self.sources.id
        return b"".join(
            _CONSENT.pack(_PURPOSE_INDEX[p] * 4 + _STATUS_INDEX[c.status], sid(c.source), c.at)
            for p, c in consents.items()
        )

    def decode(self, b: bytes) -> dict[ConsentPurpose, Consent]:
        src = self.sources.values
        return {
            _PURPOSES[ps >> 2]: Consent(_STATUSES[ps & 3], at, str(src[s]))
            for ps, s, at in _CONSENT.iter_unpack(b)
        }

    def get(
        self, customer_id: str, default: Mapping[ConsentPurpose, Consent] | None = None
    ) -> Mapping[ConsentPurpose, Consent]:
        b = self.raw(customer_id)
        if b is None:
            return {} if default is None else default
        return self.decode(b)

    def __getitem__(self, customer_id: str) -> dict[ConsentPurpose, Consent]:
        b = self.raw(customer_id)
        if b is None:
            raise KeyError(customer_id)
        return self.decode(b)

    def __setitem__(self, customer_id: str, consents: Mapping[ConsentPurpose, Consent]) -> None:
        # b"" (no statement at all) is still a record: the customer is known, like {} was
        self.put(customer_id, self.encode(consents))

    def items(self) -> Iterator[tuple[str, dict[ConsentPurpose, Consent]]]:
        for cid, b in self.raw_items():
            yield cid, self.decode(b)


class AttributeTable(_Records):
    """customer -> Attributes: 33 bytes plus the first name's UTF-8."""

    def __init__(self, slots: Mapping[str, int], ids: list[str], values: Strings) -> None:
        super().__init__(slots, ids)
        self.values = values

    def encode(self, a: Attributes) -> bytes:
        sid = self.values.id
        flags = (a.first_name is not None) | (a.household_size is not None) << 1
        hh = _NO_HOUSEHOLD if a.household_size is None else a.household_size
        ids = (sid(a.age_band), sid(a.sex), sid(a.csp), sid(a.home_postcode))
        head = _ATTRS.pack(flags, *ids, hh, a.updated_at)
        return head + (a.first_name or "").encode()

    def decode(self, b: bytes) -> Attributes:
        flags, age, sex, csp, post, hh, at = _ATTRS.unpack_from(b)
        v = self.values.values
        return Attributes(
            b[_ATTRS.size :].decode() if flags & 1 else None,
            v[age],
            None if not sex else Sex(v[sex]),
            v[csp],
            hh if flags & 2 else None,
            v[post],
            at,
        )

    def get(self, customer_id: str, default: Attributes | None = None) -> Attributes | None:
        b = self.raw(customer_id)
        return default if b is None else self.decode(b)

    def __getitem__(self, customer_id: str) -> Attributes:
        b = self.raw(customer_id)
        if b is None:
            raise KeyError(customer_id)
        return self.decode(b)

    def __setitem__(self, customer_id: str, attrs: Attributes) -> None:
        self.put(customer_id, self.encode(attrs))

    def items(self) -> Iterator[tuple[str, Attributes]]:
        for cid, b in self.raw_items():
            yield cid, self.decode(b)
