"""The mentions French law asks of every marketing SMS (CPCE L34-5, ../shared/PROTOCOLS.md): it
names the sender and offers a free STOP. Added when the rendered text lacks them, so a
marketer's template cannot ship an SMS that breaks the rule; the added characters are counted
in the segments the gateway bills."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_STOP = re.compile(r"\bstop\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SmsMentions:
    sender: str = ""  # the brand named at the start ("" = the sender id already names it)
    opt_out: str = "STOP au 36111"  # the free opt-out of the sending short code

    def apply(self, text: str) -> str:
        """`text` with the sender prefix and the STOP mention, each only when missing."""
        out = text.strip()
        if self.sender and _folded(self.sender) not in _folded(out):
            out = f"{self.sender}: {out}"
        if self.opt_out and not _STOP.search(out):
            out = f"{out} {self.opt_out}"
        return out


def _folded(s: str) -> str:
    # "Maison Lumière" is named even when written "MAISON LUMIERE"
    nfkd = unicodedata.normalize("NFKD", s)
    return "".join(c for c in nfkd if not unicodedata.combining(c)).casefold()
