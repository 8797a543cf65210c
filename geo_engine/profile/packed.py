"""Compact per-customer records: consents, declared attributes and category scores of a
customer packed in one `bytes` object, rather than dicts of Python objects.

Why: a dict of three consents, or of three category scores, costs ~230 B of dict plus its float
and record objects, and every Python object a header; one record holding all three takes
~150 B. Repeated strings (category names, consent sources, age bands, CSP, postcodes) become
numbers into a table shared by every customer (`Strings`); a first name is personal, so it
stays inside its customer's record and goes with it on erasure.

Layout: header (consents + 1, 0 = none on record; attributes' length + 1, 0 = none; number of
categories), then 13 bytes a consent, the attributes, the categories' name ids then scores.

The views read and write like the mappings they replace (`get`, `[]`, `in`, `items()`), each
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
_HEAD = struct.Struct("<BHH")
_CONSENT = struct.Struct("<BId")  # purpose x 4 + status, source id, at
_ATTRS = struct.Struct("<B4Iqd")  # has-name/has-household flags, 4 string ids, household, at
_NO_HOUSEHOLD = -(2**63)

Parts = tuple[bytes | None, bytes | None, bytes, int]  # consents, attributes, categories, count


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


def split(b: bytes | None) -> Parts:
    if b is None:
        return None, None, b"", 0
    c, a, k = _HEAD.unpack_from(b)
    i = _HEAD.size
    cons = None if c == 0 else b[i : i + _CONSENT.size * (c - 1)]
    i += 0 if cons is None else len(cons)
    attrs = None if a == 0 else b[i : i + a - 1]
    i += 0 if attrs is None else len(attrs)
    return cons, attrs, b[i:], k


def join(cons: bytes | None, attrs: bytes | None, cats: bytes, k: int) -> bytes | None:
    if cons is None and attrs is None and not k:
        return None
    c = 0 if cons is None else len(cons) // _CONSENT.size + 1
    head = _HEAD.pack(c, 0 if attrs is None else len(attrs) + 1, k)
    return b"".join((head, cons or b"", attrs or b"", cats))


class Records:
    """customer -> record. A customer with a slot keeps it in a list by slot (one pointer);
    one without (consents given before any event) in a dict (~40 B an entry)."""

    def __init__(self, slots: Mapping[str, int], ids: list[str]) -> None:
        self.slots = slots  # the state's own: shared, never copied
        self.ids = ids
        self.by_slot: list[bytes | None] = []
        self.loose: dict[str, bytes] = {}

    def at(self, slot: int) -> bytes | None:
        return self.by_slot[slot] if slot < len(self.by_slot) else None

    def put_at(self, slot: int, b: bytes | None) -> None:
        if slot >= len(self.by_slot):
            if b is None:
                return
            self.by_slot.extend([None] * (slot + 1 - len(self.by_slot)))
        self.by_slot[slot] = b

    def of(self, customer_id: str) -> bytes | None:
        s = self.slots.get(customer_id)
        return self.loose.get(customer_id) if s is None else self.at(s)

    def put(self, customer_id: str, b: bytes | None) -> None:
        s = self.slots.get(customer_id)
        if s is not None:
            self.put_at(s, b)
        elif b is None:
            self.loose.pop(customer_id, None)
        else:
            self.loose[customer_id] = b

    def adopt(self, customer_id: str, slot: int) -> None:
        """The customer got `slot`: its record moves from the dict to the list."""
        self.put_at(slot, self.loose.pop(customer_id, None))

    def truncate(self, n: int) -> None:
        """Slots from n on are forgotten (call before the state's ids are cut): their records
        go back to the dict, without category scores (those need a slot)."""
        for s, b in enumerate(self.by_slot[n:], n):
            cons, attrs, _, _ = split(b)
            kept = join(cons, attrs, b"", 0)
            if kept is not None:
                self.loose[self.ids[s]] = kept
        del self.by_slot[n:]

    def items(self) -> Iterator[tuple[str, bytes]]:
        for s, b in enumerate(self.by_slot):
            if b is not None:
                yield self.ids[s], b
        yield from self.loose.items()


class _View:
    part = 0  # which of split()'s parts

    def __init__(self, records: Records) -> None:
        self.records = records

    def _part(self, customer_id: str) -> bytes | None:
        return split(self.records.of(customer_id))[self.part]  # type: ignore[return-value]

    def _replace(self, customer_id: str, value: bytes | None) -> None:
        parts = list(split(self.records.of(customer_id)))
        parts[self.part] = value
        self.records.put(customer_id, join(*parts))  # type: ignore[arg-type]

    def __contains__(self, customer_id: object) -> bool:
        return isinstance(customer_id, str) and self._part(customer_id) is not None

    def __delitem__(self, customer_id: str) -> None:
        if self._part(customer_id) is None:
            raise KeyError(customer_id)
        self._replace(customer_id, None)

    def raw_items(self) -> Iterator[tuple[str, bytes]]:
        for cid, b in self.records.items():
            p = split(b)[self.part]
            if p is not None:
                yield cid, p  # type: ignore[misc]

    def __len__(self) -> int:
        return sum(1 for _ in self.raw_items())

    def __iter__(self) -> Iterator[str]:
        return (cid for cid, _ in self.raw_items())


class ConsentTable(_View):
    """customer -> {purpose: Consent}: 13 bytes a consent (purpose and status in one)."""

    part = 0

    def __init__(self, records: Records, sources: Strings) -> None:
        super().__init__(records)
        self.sources = sources

    def decode(self, b: bytes) -> dict[ConsentPurpose, Consent]:
        src = self.sources.values
        return {
            _PURPOSES[ps >> 2]: Consent(_STATUSES[ps & 3], at, str(src[s]))
            for ps, s, at in _CONSENT.iter_unpack(b)
        }

    def get(
        self, customer_id: str, default: Mapping[ConsentPurpose, Consent] | None = None
    ) -> Mapping[ConsentPurpose, Consent]:
        b = self._part(customer_id)
        if b is None:
            return {} if default is None else default
        return self.decode(b)

    def status(self, customer_id: str, purpose: ConsentPurpose) -> ConsentStatus | None:
        """One purpose's status, the others not decoded: the location gate reads it for every
        customer of a run (decoding each one's consents was ~4% of an owner's CPU)."""
        b = self._part(customer_id)
        if not b:
            return None
        want = _PURPOSE_INDEX[purpose]
        ps: int
        for ps, _, _ in _CONSENT.iter_unpack(b):
            if ps >> 2 == want:
                return _STATUSES[ps & 3]
        return None

    def __getitem__(self, customer_id: str) -> dict[ConsentPurpose, Consent]:
        b = self._part(customer_id)
        if b is None:
            raise KeyError(customer_id)
        return self.decode(b)

    def __setitem__(self, customer_id: str, consents: Mapping[ConsentPurpose, Consent]) -> None:
        sid = self.sources.id
        # b"" (no statement at all) is still on record: the customer is known, as {} was
        b = b"".join(
            _CONSENT.pack(_PURPOSE_INDEX[p] * 4 + _STATUS_INDEX[c.status], sid(c.source), c.at)
            for p, c in consents.items()
        )
        self._replace(customer_id, b)

    def items(self) -> Iterator[tuple[str, dict[ConsentPurpose, Consent]]]:
        for cid, b in self.raw_items():
            yield cid, self.decode(b)


class AttributeTable(_View):
    """customer -> Attributes: 33 bytes plus the first name's UTF-8."""

    part = 1

    def __init__(self, records: Records, values: Strings) -> None:
        super().__init__(records)
        self.values = values

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
        b = self._part(customer_id)
        return default if b is None else self.decode(b)

    def __getitem__(self, customer_id: str) -> Attributes:
        b = self._part(customer_id)
        if b is None:
            raise KeyError(customer_id)
        return self.decode(b)

    def __setitem__(self, customer_id: str, a: Attributes) -> None:
        sid = self.values.id
        flags = (a.first_name is not None) | (a.household_size is not None) << 1
        hh = _NO_HOUSEHOLD if a.household_size is None else a.household_size
        ids = (sid(a.age_band), sid(a.sex), sid(a.csp), sid(a.home_postcode))
        head = _ATTRS.pack(flags, *ids, hh, a.updated_at)
        self._replace(customer_id, head + (a.first_name or "").encode())

    def items(self) -> Iterator[tuple[str, Attributes]]:
        for cid, b in self.raw_items():
            yield cid, self.decode(b)


class CategoryTable:
    """Category scores by slot (only slots with some): names as ids, scores as float64, in
    insertion order (ties in the top-N cut and in rankings keep resolving the same way)."""

    def __init__(self, records: Records, names: Strings) -> None:
        self.records = records
        self.names = names

    def get(self, slot: int, default: dict[str, float] | None = None) -> dict[str, float]:
        _, _, b, n = split(self.records.at(slot))
        if not n:
            return {} if default is None else default
        vals = _scores_struct(n).unpack(b)
        names = self.names.values
        return {str(names[i]): v for i, v in zip(vals[:n], vals[n:], strict=True)}

    def __getitem__(self, slot: int) -> dict[str, float]:
        if slot not in self:
            raise KeyError(slot)
        return self.get(slot)

    def __setitem__(self, slot: int, scores: Mapping[str, float]) -> None:
        cons, attrs, _, _ = split(self.records.at(slot))
        ids = [self.names.id(c) for c in scores]
        cats = _scores_struct(len(ids)).pack(*ids, *scores.values()) if ids else b""
        self.records.put_at(slot, join(cons, attrs, cats, len(ids)))

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and slot >= 0 and split(self.records.at(slot))[3] > 0

    def __len__(self) -> int:
        return sum(1 for b in self.records.by_slot if split(b)[3])

    def items(self) -> Iterator[tuple[int, dict[str, float]]]:
        for s in range(len(self.records.by_slot)):
            if s in self:
                yield s, self.get(s)

    def scale(self, k: float) -> None:
        """Every score times k (a decay rebase)."""
        for s, scores in list(self.items()):
            self[s] = {c: v * k for c, v in scores.items()}
