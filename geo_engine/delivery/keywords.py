"""What an SMS a customer sent us asks for: STOP, ARRÊT... (opt out), START (opt in), HELP.

Keywords (../shared/PROTOCOLS.md: Twilio's defaults, and the French market's, where a marketing
SMS offers a free STOP and an opt-out holds until START): matched case- and accent-insensitively,
whitespace and punctuation trimmed, on the whole message; an opt-out also on the first word
("Stop please"), as carriers do, while an opt-in needs the whole message to be the keyword: a
consent must be unambiguous, and "yes, but stop" is not one."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

Action = Literal["opt_out", "opt_in", "help", "none"]
ConsentAction = Literal["opt_out", "opt_in"]

# after normalisation (upper case, no accents, single spaces): ARRÊT -> ARRET
OPT_OUT = frozenset(
    {
        "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
        "REVOKE",
        # French: STOP as French short codes print it, and its usual spellings
        "STOP SMS", "ARRET", "ARRETER", "DESABONNER", "DESABONNEMENT", "DESINSCRIPTION",
        "DESINSCRIRE", "ANNULER",
    }
)  # fmt: skip
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO", "AIDE"})
# the consent source recorded with the change, so consent_log tells an SMS reply from the app
SOURCE: Mapping[ConsentAction, str] = MappingProxyType(
    {"opt_out": "sms_inbound_stop", "opt_in": "sms_inbound_start"}
)
_PUNCT = re.compile(r"[^\w\s]+")


def normalise(body: str) -> str:
    """Upper case, accents removed, punctuation dropped, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", body)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_PUNCT.sub(" ", plain).upper().split())


def classify(body: str) -> tuple[Action, str | None]:
    """(what the message asks, the keyword matched)."""
    text = normalise(body)
    if text in OPT_OUT:
        return "opt_out", text
    if text in OPT_IN:
        return "opt_in", text
    if text in HELP:
        return "help", text
    first = text.split(" ", 1)[0]
    if first in OPT_OUT:
        return "opt_out", first
    return "none", None
