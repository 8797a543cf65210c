"""SMS length: GSM 03.38 (7-bit) when every character fits, else UCS-2; segments counted the
way handsets and gateways split them (UDH takes room in concatenated parts)."""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 basic character set
_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# the extension table: each costs two septets (ESC + char)
_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True, slots=True)
class SmsLength:
    encoding: str  # gsm7 | ucs2
    units: int  # septets (gsm7) or UTF-16 code units (ucs2)
    segments: int


def sms_length(text: str) -> SmsLength:
    septets = 0
    for ch in text:
        if ch in _BASIC:
            septets += 1
        elif ch in _EXTENDED:
            septets += 2
        else:
            return _ucs2(text)
    return SmsLength("gsm7", septets, _segments(septets, GSM7_SINGLE, GSM7_MULTI))


def _ucs2(text: str) -> SmsLength:
    units = len(text.encode("utf-16-le")) // 2  # astral characters take two code units
    return SmsLength("ucs2", units, _segments(units, UCS2_SINGLE, UCS2_MULTI))


def _segments(units: int, single: int, multi: int) -> int:
    if units == 0:
        return 0
    if units <= single:
        return 1
    return -(-units // multi)
