"""One error type for everything refused at save: a path into the document and a reason."""

from __future__ import annotations


class InvalidDefinition(ValueError):
    """An offer or campaign was refused. `field` is a dotted path (`conditions.all.1.value`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
