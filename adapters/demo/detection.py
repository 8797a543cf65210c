"""Visits detected per signal: which of GPS, beacons and NFC saw each planned visit, and the
tables of the signals sent.

A signal detects a visit when it entered the store during it, or confirmed it once another
signal had entered first (then no second enter is written):
- GPS: an enter with source gps, or an exit with source gps: the engine attributes an exit to
  GPS only for a visit a fix confirmed (inside, good enough to enter), else to the hold that
  kept it (not_heard);
- beacon, NFC: an enter with that source, or a sighting or tap during the visit the engine
  used (not ignored: too_far, late, no consent...).
Combined: any enter at the store during the visit (the summary's "detected").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adapters.demo.simulate import Visit

Tables = list[tuple[str, list[str], list[list[str]]]]
SIGNALS = ("gps", "beacon", "nfc")
CONSENT = ("no_location_consent", "location_consent_refused")  # why a signal was dropped
NAMES = {"gps": "GPS", "beacon": "beacon", "nfc": "NFC"}
EARLY_S = 300.0  # as the summary matches enters: from 5 min before the visit


@dataclass(frozen=True, slots=True)
class Heard:
    """A beacon sighting or an NFC tap the engine used as presence evidence (not ignored)."""

    customer_id: str
    store_id: str
    ts: float  # seconds after local midnight
    kind: str  # beacon | nfc


@dataclass
class SignalStats:
    """The beacon sightings and NFC taps sent, and what the API made of them."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, outcome)
    heard: list[Heard] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)  # pings, sightings, taps
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    sources: Counter[tuple[str, str]] = field(default_factory=Counter)  # events (type, source)
    beacons: int = 0
    tags: int = 0
    ranging: int = 0  # customers whose phone hears beacons


def evidence(event_type: str, source: str) -> str | None:
    """The signal an event at a visit's store shows to have seen the visit (None: none)."""
    if event_type == "enter" or (event_type == "exit" and source == "gps"):
        return source
    return None


def add_heard(
    seen: defaultdict[int, set[str]],
    visits: Mapping[int, Sequence[tuple[int, Visit]]],
    store_index: Mapping[str, int],
    heard: Iterable[Heard],
) -> None:
    """Mark the visits during which a sighting or a tap was used by the engine."""
    for h in heard:
        s = store_index[h.store_id]
        for i, v in visits.get(int(h.customer_id[1:]), ()):
            if v.store == s and v.t_in - EARLY_S <= h.ts <= v.t_out + EARLY_S:
                seen[i].add(h.kind)
                break


def tally(
    brands: Sequence[str], visits: Sequence[Visit], seen: Mapping[int, set[str]]
) -> Counter[tuple[str, str]]:
    """(brand, signal) -> planned visits that signal detected."""
    out: Counter[tuple[str, str]] = Counter()
    for i, v in enumerate(visits):
        for sig in seen.get(i, ()):
            out[(brands[v.store], sig)] += 1
    return out


def _pct(n: int, of: int) -> str:
    return f"{n:,} ({100 * n / max(of, 1):.1f}%)"


def _counts(sig: Counter[tuple[str, str]], kind: str, outcomes: Sequence[str]) -> str:
    """'n / n / ...' of a signal kind's outcomes, the consent refusals as one."""
    n: Counter[str] = Counter()
    for (sk, o), k in sig.items():
        if sk == kind:
            n["no consent" if o in CONSENT else o] += k
    rest = sum(k for o, k in n.items() if o not in outcomes)
    return " / ".join(f"{n[o]:,}" for o in outcomes) + (f" (other {rest:,})" if rest else "")


def tables(s: SignalStats, visits: Counter[tuple[str, str]], customers: int) -> Tables:
    """Signals sent and how the engine took them; `visits` ((brand, what) -> planned visits:
    planned, detected, and per signal) as a table per signal and brand."""
    sig, req = s.outcomes, ("pings", "sightings", "taps")
    rows = [
        ["beacons in departments / NFC tags at tills and shelves", f"{s.beacons:,} / {s.tags:,}"],
        ["phones ranging beacons (Bluetooth on, app allowed to scan)",
         _pct(s.ranging, customers)],
        ["beacon sightings: used / too far / late / no consent",
         _counts(sig, "beacon", ("used", "too_far", "late", "no consent"))],
        ["NFC taps: used / late / no consent", _counts(sig, "nfc", ("used", "late", "no consent"))],
        ["presence enters by source: GPS / beacon / NFC",
         " / ".join(f"{s.sources[('enter', k)]:,}" for k in SIGNALS)],
        ["requests: pings / sightings / taps", " / ".join(f"{s.requests[k]:,}" for k in req)],
        ["their wall time (s)", " / ".join(f"{s.seconds.get(k, 0.0):,.1f}" for k in req)],
    ]  # fmt: skip
    detected = []
    for b in sorted({b for b, _ in visits}):
        p = visits[(b, "planned")]
        per = [_pct(visits[(b, sig)], p) for sig in SIGNALS]
        detected.append([b, f"{p:,}", *per, _pct(visits[(b, "detected")], p)])
    head = ["brand", "planned", *(NAMES[k] for k in SIGNALS), "combined"]
    title = ("Visits detected per signal (entered or confirmed the store visit; combined: "
             "entered by any)")  # fmt: skip
    return [("Beacons and NFC", ["", ""], rows), (title, head, detected)]
