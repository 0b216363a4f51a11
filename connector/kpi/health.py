"""Health score: direction-aware component scores and their weighted mean.

Component inputs (``x``) per account, as of the date:

* ``adoption``: licence utilisation of the latest usage period (0–1);
* ``support``: support burden = open P1/P2 cases + cases opened in the support
  window per 30 days (an account without cases has burden 0: that is data);
* ``nps``: the account's NPS, only when its sample reaches ``nps_min_sample``;
* ``csat``: the account's CSAT (0–100) over the CSAT window;
* ``engagement``: days since the latest interaction (no interaction ever = no
  data, since an unsynced table must not read as "never engaged");
* ``commercial``: 0 without an active sold product or entitlement; with one,
  50 + 50·min(days to the nearest renewal, 180)/180, and 100 when open-ended.

Each component scores ``clamp(0, 100, 100·(x − bad)/(good − bad))``, which covers
both directions (``good < bad`` minimises). The score is the weighted mean over
the components with data, rounded to a whole number; none when the weight with
data is below ``health_min_weight_share`` of the total. Bands use the rounded
score: green ≥ ``band_green``, yellow ≥ ``band_yellow``, else red.

Only active customers are scored (DESIGN: an active sold product or entitlement
on the date); every other account gets no score and :data:`NOT_ACTIVE_REASON`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from connector.config import HealthComponent, KpiSettings

RENEWAL_HORIZON_DAYS = 180
REASON_COMPONENTS = 2
NOT_ACTIVE_REASON = "not an active customer (no active sold product or entitlement)"
"""Reason of an account without a score because it is not an active customer.

It carries no date on purpose: write-back sends the reason to the account, and a
text that changed every day would rewrite every churned account every day.
"""


@dataclass(frozen=True)
class AccountInputs:
    """The raw facts a health score is built from."""

    utilisation: float | None = None
    support_burden: float | None = None
    nps: float | None = None
    csat: float | None = None
    days_since_interaction: float | None = None
    commercial: float | None = None

    def component_values(self) -> dict[str, float | None]:
        """Raw input per default component name."""
        return {
            "adoption": self.utilisation,
            "support": self.support_burden,
            "nps": self.nps,
            "csat": self.csat,
            "engagement": self.days_since_interaction,
            "commercial": self.commercial,
        }


@dataclass(frozen=True)
class Health:
    """A computed health score with what it was made of."""

    score: int | None
    band: str | None
    components: dict[str, int | None] = field(default_factory=dict)
    weight_share: float = 0.0
    reason: str = ""


def half_up(value: float) -> int:
    """Round half away from zero for scores ≥ 0 (``round`` would give 72 for 72.5)."""
    return math.floor(value + 0.5)


def component_score(x: float, spec: HealthComponent) -> float:
    """Score ``x`` on 0–100 between ``spec.bad`` (0) and ``spec.good`` (100)."""
    if spec.good == spec.bad:
        return 100.0 if x >= spec.good else 0.0
    raw = 100.0 * (x - spec.bad) / (spec.good - spec.bad)
    return min(100.0, max(0.0, raw))


def band_for(score: float | None, settings: KpiSettings) -> str | None:
    """Band of a score: green, yellow, red (None without a score)."""
    if score is None:
        return None
    if score >= settings.band_green:
        return "green"
    return "yellow" if score >= settings.band_yellow else "red"


def commercial_value(
    as_of: date, *, active: bool, renewal: date | None, has_products: bool
) -> float:
    """Commercial input on 0–100 from the active contract and renewal distance."""
    if not active:
        return 0.0
    if renewal is None:
        return 100.0 if has_products else 50.0
    days = min(max((renewal - as_of).days, 0), RENEWAL_HORIZON_DAYS)
    return 50.0 + 50.0 * days / RENEWAL_HORIZON_DAYS


def days_since(as_of: date, moment: datetime | None) -> float | None:
    """Whole days from ``moment`` to the as-of date (0 for the same day)."""
    if moment is None:
        return None
    return float(max((as_of - moment.date()).days, 0))


def score_health(inputs: AccountInputs, settings: KpiSettings) -> Health:
    """Weighted health score of one account, with band and weakest components."""
    specs = settings.health_components
    values = inputs.component_values()
    scores: dict[str, float | None] = {
        name: None if values.get(name) is None else component_score(values[name], spec)
        for name, spec in specs.items()
    }

    total = sum(spec.weight for spec in specs.values())
    with_data = {name: s for name, s in scores.items() if s is not None}
    weight = sum(specs[name].weight for name in with_data)
    share = weight / total if total else 0.0
    rounded = {name: None if s is None else half_up(s) for name, s in scores.items()}

    if not with_data or weight <= 0 or share < settings.health_min_weight_share:
        missing = ", ".join(sorted(set(scores) - set(with_data)))
        return Health(None, None, rounded, share, f"insufficient data ({missing})")
    score = half_up(sum(specs[n].weight * s for n, s in with_data.items()) / weight)
    return Health(score, band_for(score, settings), rounded, share, _reason(with_data))


def not_active() -> Health:
    """The health of an account that is not an active customer: no score."""
    return Health(None, None, {}, 0.0, NOT_ACTIVE_REASON)


def _reason(scores: dict[str, float]) -> str:
    weakest = sorted(scores.items(), key=lambda item: (item[1], item[0]))
    text = ", ".join(f"{name} {half_up(s)}" for name, s in weakest[:REASON_COMPONENTS])
    return f"weakest: {text}"
