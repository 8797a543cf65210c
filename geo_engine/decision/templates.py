"""Offer templating: `{first_name}`, `{store_name}`, `{distance_m}`... Placeholders are checked
against a fixed list at save, so a typo is a 422 for the marketer, not a blank in an SMS."""

from __future__ import annotations

import re
from collections.abc import Mapping

from geo_engine.decision.errors import InvalidDefinition

# what a template may name; every one has a fallback so rendering never fails
PLACEHOLDERS: Mapping[str, str] = {
    "first_name": "",  # profile attributes
    "segment": "",
    "store_name": "",  # context: the fence of the trigger
    "store_id": "",
    "fence_name": "",
    "distance_m": "",
    "product": "",  # the offer's own fields
    "offer_value": "",
    "valid_until": "",
    "code": "",  # the redemption code, generated per delivery
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def check(template: str, path: str) -> tuple[str, ...]:
    """The placeholders `template` uses; an unknown one or a stray brace is refused."""
    names = []
    for m in _PLACEHOLDER.finditer(template):
        name = m.group(1).strip()
        if name not in PLACEHOLDERS:
            known = ", ".join(PLACEHOLDERS)
            raise InvalidDefinition(path, f"unknown placeholder {{{name}}} (known: {known})")
        names.append(name)
    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise InvalidDefinition(path, "unbalanced brace: write placeholders as {name}")
    return tuple(names)


def render(template: str, values: Mapping[str, object]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        v = values.get(name)
        return PLACEHOLDERS.get(name, "") if v is None else str(v)

    return _PLACEHOLDER.sub(sub, template)
