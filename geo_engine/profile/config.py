"""Tunables of the profile core, with the defaults the adapters' settings start from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from geo_engine.profile.events import VELOCITY_KPIS

DAY_S = 86_400.0

# interest = sum of weight x count over the velocity KPIs (store_visit, page_view, search,
# click, purchase): a store visit or a purchase says more than one more page view
DEFAULT_INTEREST_WEIGHTS: tuple[float, ...] = (5.0, 1.0, 2.0, 1.0, 5.0)

DEFAULT_SENSITIVE_URL_PATTERNS: tuple[str, ...] = (
    r"/(cgv|cgu|conditions|terms|legal|mentions-legales)\b",
    r"resiliation|resilier|cancel|unsubscribe|desabonnement|desinscription|close-account",
)


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    # velocity: the latest window_days vs the window_days before
    window_days: int = 7
    rising_pct: float = 30.0  # pct change >= this: rising
    falling_pct: float = -30.0  # pct change <= this: falling
    # fewer events than this in both windows together: too little to say, "stable"
    min_events: int = 3
    interest_weights: tuple[float, ...] = DEFAULT_INTEREST_WEIGHTS
    # affinity: an event's weight halves every half-life
    category_half_life_days: float = 30.0
    channel_half_life_days: float = 30.0
    max_categories: int = 32  # per customer; the weakest is forgotten beyond
    sensitive_url_patterns: tuple[str, ...] = DEFAULT_SENSITIVE_URL_PATTERNS
    # monetary figures are in base_currency; other currencies need a rate (1 unit = rate base)
    base_currency: str = "EUR"
    fx_rates: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= 90:
            raise ValueError("window_days must be within 1..90")
        if not self.falling_pct < 0 < self.rising_pct:
            raise ValueError("need falling_pct < 0 < rising_pct")
        if len(self.interest_weights) != len(VELOCITY_KPIS):
            raise ValueError(f"interest_weights needs {len(VELOCITY_KPIS)} values")
        if self.category_half_life_days <= 0 or self.channel_half_life_days <= 0:
            raise ValueError("half-lives must be > 0")

    @property
    def ring_days(self) -> int:
        """Day buckets kept: both windows span 2W+1 calendar days (the sliding edges are
        partial days), plus one for events up to the clock skew past midnight."""
        return 2 * self.window_days + 2

    def to_base(self, amount: float, currency: str) -> float | None:
        """`amount` in the base currency, or None when no rate is configured."""
        if currency == self.base_currency:
            return amount
        rate = self.fx_rates.get(currency)
        return None if rate is None else amount * rate
