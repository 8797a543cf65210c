"""A learned propensity (opt-in, `ranking="bandit"`): per arm (campaign, offer), a
Beta-Bernoulli posterior of P(redeemed | sent), drawn by Thompson sampling.

The prior is the static propensity the expected-value ranking uses (BASE + (1 - BASE) x category
affinity) worth `prior_weight` sends, so an arm with no outcomes yet ranks where the static
ranking puts it, and measured outcomes move it from there. A click without a redemption is a
weaker signal: with `click_weight` w > 0 it counts as w of a redemption (and 1 - w of a miss),
so a clicked offer rises a little before any till sees its code.

Why not `mabwiser`: it pulls numpy, pandas, scikit-learn, scipy and seaborn for what is here a
Beta draw (`random.betavariate`, stdlib), and its fit/predict API has no per-arm prior taken
from the static ranking nor a per-decision seed. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# a static propensity of 0 or 1 would pin the posterior: kept strictly inside (0, 1)
_EPS = 1e-6
# A draw is capped at mean + sqrt(ln(1/TAIL) / (2 (a + b + 1))): Beta(a, b) is sub-Gaussian with
# variance proxy 1 / (4 (a + b + 1)) (Marchal & Arbel 2017), so the cap changes a draw with
# probability < TAIL, and gives the ranking a hard upper bound per arm well below 1 once the
# arm has outcomes (the rank-bound walk then skips most campaigns, as with the static ranking).
TAIL = 1e-6
_LN_TAIL = math.log(1.0 / TAIL)

ArmKey = tuple[str, str]  # (campaign id, offer id)
# (campaign id, offer id, static propensity) -> the propensity the ranking multiplies by
Propensity = Callable[[str, str, float], float]


@dataclass(frozen=True, slots=True)
class BanditConfig:
    prior_weight: float = 20.0  # the static propensity counts as this many sends
    click_weight: float = 0.0  # a click without redemption: this fraction of a redemption
    explore: bool = True  # Thompson sampling; off: the posterior mean (pure exploitation)


@dataclass(frozen=True, slots=True)
class ArmStats:
    """Outcomes of the offers an arm sent over the learning window."""

    sent: int = 0
    redeemed: int = 0
    clicked: int = 0  # clicked but not redeemed (a redeemed offer counts as redeemed only)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The arms' outcomes at one moment: replaced whole (never mutated) when refreshed."""

    arms: Mapping[ArmKey, ArmStats] = field(default_factory=dict)
    as_of: float = 0.0


def posterior(static: float, stats: ArmStats | None, cfg: BanditConfig) -> tuple[float, float]:
    """Beta(alpha, beta) of P(redeemed | sent): the prior centred on `static`, plus outcomes."""
    m = min(max(static, _EPS), 1.0 - _EPS)
    w = max(cfg.prior_weight, _EPS)
    a, b = m * w, (1.0 - m) * w
    if stats is None or stats.sent <= 0:
        return a, b
    # counts come from a database: clamp so an inconsistent row can never make beta <= 0
    red = min(max(stats.redeemed, 0), stats.sent)
    clicks = min(max(stats.clicked, 0), stats.sent - red) * min(max(cfg.click_weight, 0.0), 1.0)
    return a + red + clicks, b + (stats.sent - red - clicks)


def mean(ab: tuple[float, float]) -> float:
    a, b = ab
    return a / (a + b)


def cap(ab: tuple[float, float]) -> float:
    """The most a draw from Beta(a, b) may be (see TAIL): at least the mean, at most 1."""
    a, b = ab
    return min(1.0, a / (a + b) + math.sqrt(_LN_TAIL / (2.0 * (a + b + 1.0))))


def arm_bound(stats: ArmStats | None, cfg: BanditConfig) -> float:
    """The most an arm's propensity can be for any customer: the cap at the largest static
    propensity (the posterior's mean, so its cap, grows with the prior's mean; a + b does not
    depend on it)."""
    # a hair above: float rounding must never put a draw above its arm's bound
    return min(1.0, cap(posterior(1.0, stats, cfg)) * (1.0 + 1e-9))


def decision_seed(*parts: str) -> int:
    """A stable 64-bit seed from the decision's identity (no Python hash randomisation): the
    same trigger instance for the same customer draws the same samples, on any machine."""
    h = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big")


class Draws:
    """The propensities of one decision: each arm drawn at most once (memoised), so a
    campaign's score is the same wherever the ranking looks at it. The generator is made on
    the first draw only (a decision stopped by a customer-wide rule pays nothing)."""

    __slots__ = ("_cfg", "_drawn", "_rng", "_rng_of", "_snap")

    def __init__(
        self,
        snapshot: Snapshot,
        cfg: BanditConfig,
        rng: random.Random | Callable[[], random.Random],
    ) -> None:
        self._snap = snapshot
        self._cfg = cfg
        self._rng: random.Random | None = rng if isinstance(rng, random.Random) else None
        self._rng_of = rng if not isinstance(rng, random.Random) else None
        self._drawn: dict[ArmKey, float] = {}

    def __call__(self, campaign_id: str, offer_id: str, static: float) -> float:
        key = (campaign_id, offer_id)
        hit = self._drawn.get(key)
        if hit is not None:
            return hit
        ab = posterior(static, self._snap.arms.get(key), self._cfg)
        if self._cfg.explore:
            if self._rng is None:
                assert self._rng_of is not None
                self._rng = self._rng_of()
            p = min(self._rng.betavariate(*ab), cap(ab))
        else:
            p = mean(ab)
        self._drawn[key] = p
        return p


def draws_for(snapshot: Snapshot, cfg: BanditConfig, *identity: str) -> Draws:
    """The draws of the decision identified by `identity` (customer, trigger instance)."""
    return Draws(snapshot, cfg, lambda: random.Random(decision_seed(*identity)))
