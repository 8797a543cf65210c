"""The condition language of campaigns: a small JSON tree, type-checked at save, compiled to
closures so evaluation is a few attribute reads and comparisons.

    cond := {"all": [cond, ...]} | {"any": [cond, ...]} | {"not": cond}
          | {"field": "<name>", "op": "<op>", "value": <json>}

Fields read a flat `Facts` dict built once per decision (facts.py). A fact that is missing
(no RFM yet, no distance) makes its comparison false, so "not" of it is true: say what you mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from geo_engine.decision.errors import InvalidDefinition

Facts = Mapping[str, object]
Predicate = Callable[[Facts], bool]


class T(Enum):
    NUM = "number"
    STR = "string"
    BOOL = "boolean"


SEGMENTS = (
    "new",
    "champions",
    "loyal",
    "potential_loyalists",
    "at_risk",
    "hibernating",
    "lost",
    "prospect",
)
TRENDS = ("rising", "falling", "stable")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FIGURES = ("store_visit", "page_view", "search", "click", "purchase", "interest")

# name -> (type, allowed values for strings or None)
FIELDS: dict[str, tuple[T, tuple[str, ...] | None]] = {
    "profile.segment": (T.STR, SEGMENTS),
    "profile.rfm.recency_days": (T.NUM, None),
    "profile.rfm.frequency": (T.NUM, None),
    "profile.rfm.monetary": (T.NUM, None),
    "profile.rfm.r": (T.NUM, None),
    "profile.rfm.f": (T.NUM, None),
    "profile.rfm.m": (T.NUM, None),
    "profile.age_band": (T.STR, ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")),
    "profile.sex": (T.STR, ("female", "male", "unspecified")),
    "profile.csp": (T.STR, tuple("12345678")),
    "profile.household_size": (T.NUM, None),
    "profile.home_postcode": (T.STR, None),
    "profile.churn_risk": (T.STR, ("none", "medium", "high")),
    "profile.preferred_channel": (T.STR, None),
    "profile.top_category": (T.STR, None),
    "context.local_hour": (T.NUM, None),  # 0-23.99, the fence's time zone
    "context.day_of_week": (T.STR, DAYS),
    "context.distance_m": (T.NUM, None),
    "context.store_id": (T.STR, None),
    "context.fence_id": (T.STR, None),
    "context.fence_kind": (T.STR, ("store", "zone", "competitor")),
    "context.store_open": (T.BOOL, None),
    "context.source": (T.STR, ("gps", "beacon", "nfc")),
    "context.trigger": (T.STR, None),
}
for _f in FIGURES:
    FIELDS[f"profile.velocity.{_f}.trend"] = (T.STR, TRENDS)
    FIELDS[f"profile.velocity.{_f}.pct_change"] = (T.NUM, None)
# the share (0..1) of a category in the customer's decayed category affinity
AFFINITY_PREFIX = "profile.affinity."
_CATEGORY = re.compile(r"^[A-Za-z0-9_\-/]{1,64}$")

OPS: dict[T, tuple[str, ...]] = {
    T.NUM: ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "exists"),
    T.STR: ("eq", "ne", "in", "not_in", "exists"),
    T.BOOL: ("eq", "ne", "exists"),
}


def field_type(name: str) -> tuple[T, tuple[str, ...] | None] | None:
    if name in FIELDS:
        return FIELDS[name]
    if name.startswith(AFFINITY_PREFIX) and _CATEGORY.match(name[len(AFFINITY_PREFIX) :]):
        return (T.NUM, None)
    return None


def compile_condition(node: Any, path: str = "conditions", depth: int = 0) -> Predicate:
    """Type-check `node` and return its predicate; InvalidDefinition names the bad path."""
    if depth > 16:
        raise InvalidDefinition(path, "nested too deep (16 levels at most)")
    if not isinstance(node, dict):
        raise InvalidDefinition(path, "expected an object: all, any, not, or field/op/value")
    keys = set(node)
    if keys in ({"all"}, {"any"}):
        (kind,) = keys
        items = node[kind]
        if not isinstance(items, list) or not items:
            raise InvalidDefinition(f"{path}.{kind}", "expected a non-empty list of conditions")
        preds = tuple(
            compile_condition(c, f"{path}.{kind}.{i}", depth + 1) for i, c in enumerate(items)
        )
        return _all(preds) if kind == "all" else _any(preds)
    if keys == {"not"}:
        inner = compile_condition(node["not"], f"{path}.not", depth + 1)
        return lambda f: not inner(f)
    if "field" in keys and "op" in keys and keys <= {"field", "op", "value"}:
        return _leaf(node, path)
    extra = sorted(keys - {"field", "op", "value", "all", "any", "not"})
    reason = f"unknown key(s) {extra}" if extra else "expected all, any, not, or field+op+value"
    raise InvalidDefinition(path, reason)


def _leaf(node: dict[str, Any], path: str) -> Predicate:
    name, op, value = node["field"], node["op"], node.get("value")
    if not isinstance(name, str) or (spec := field_type(name)) is None:
        raise InvalidDefinition(f"{path}.field", f"unknown field {name!r}")
    typ, allowed = spec
    if op not in OPS[typ]:
        raise InvalidDefinition(f"{path}.op", f"{op!r} does not apply to {typ.value} {name}")
    vpath = f"{path}.value"
    if op == "exists":
        if "value" in node and not isinstance(value, bool):
            raise InvalidDefinition(vpath, "exists takes true or false (or no value)")
        want = True if value is None else bool(value)
        return lambda f: (f.get(name) is not None) == want
    if op == "between":
        lo, hi = _pair(value, vpath)
        return lambda f: _num(v := f.get(name)) and lo <= v <= hi  # type: ignore[operator]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise InvalidDefinition(vpath, f"{op} takes a non-empty list")
        vals = frozenset(_scalar(v, typ, allowed, f"{vpath}.{i}") for i, v in enumerate(value))
        if op == "in":
            return lambda f: f.get(name) in vals
        return lambda f: (v := f.get(name)) is not None and v not in vals
    x = _scalar(value, typ, allowed, vpath)
    return _compare(name, op, x)


def _all(preds: tuple[Predicate, ...]) -> Predicate:
    # unrolled for the usual small arities: a generator per evaluation costs more than the leaves
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda f: a(f) and b(f)
    if len(preds) == 3:
        a, b, c = preds
        return lambda f: a(f) and b(f) and c(f)

    def every(f: Facts) -> bool:
        for p in preds:  # noqa: SIM110 - all(genexpr) allocates a generator per call
            if not p(f):
                return False
        return True

    return every


def _any(preds: tuple[Predicate, ...]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda f: a(f) or b(f)
    if len(preds) == 3:
        a, b, c = preds
        return lambda f: a(f) or b(f) or c(f)

    def some(f: Facts) -> bool:
        for p in preds:  # noqa: SIM110 - as above
            if p(f):
                return True
        return False

    return some


def _compare(name: str, op: str, x: object) -> Predicate:
    # one closure per operator: no dispatch at evaluation time
    if op == "eq":
        return lambda f: f.get(name) == x
    if op == "ne":
        return lambda f: (v := f.get(name)) is not None and v != x
    assert isinstance(x, float)
    if op == "lt":
        return lambda f: _num(v := f.get(name)) and v < x  # type: ignore[operator]
    if op == "lte":
        return lambda f: _num(v := f.get(name)) and v <= x  # type: ignore[operator]
    if op == "gt":
        return lambda f: _num(v := f.get(name)) and v > x  # type: ignore[operator]
    return lambda f: _num(v := f.get(name)) and v >= x  # type: ignore[operator]


def _num(v: object) -> bool:
    cls = v.__class__
    if cls is float or cls is int:  # the usual facts: skip the isinstance chain
        return True
    return isinstance(v, int | float) and not isinstance(v, bool)


def _scalar(v: object, typ: T, allowed: tuple[str, ...] | None, path: str) -> object:
    if typ is T.NUM:
        if not _num(v):
            raise InvalidDefinition(path, f"expected a number, got {type(v).__name__}")
        return float(v)  # type: ignore[arg-type]
    if typ is T.BOOL:
        if not isinstance(v, bool):
            raise InvalidDefinition(path, f"expected true or false, got {type(v).__name__}")
        return v
    if not isinstance(v, str):
        raise InvalidDefinition(path, f"expected a string, got {type(v).__name__}")
    if allowed is not None and v not in allowed:
        raise InvalidDefinition(path, f"{v!r} is not one of {list(allowed)}")
    return v


def _pair(value: object, path: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2 or not all(_num(x) for x in value):
        raise InvalidDefinition(path, "between takes [low, high] numbers")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise InvalidDefinition(path, f"empty range: {lo} > {hi}")
    return lo, hi
