"""CSM productivity: a 0–100 composite of outcome measures of a CSM's book.

``P = 0.30·GRR + 0.20·NRR + 0.20·coverage + 0.15·health lift + 0.15·hygiene``
over the sub-scores that have data (weights renormalised), each on 0–100:

* GRR of the book: 80% → 0, 100% → 100 (linear, clamped);
* NRR of the book: 80% → 0, 120% → 100;
* coverage: share of the book's active accounts with an interaction in the last
  ``coverage_days``;
* health lift: share of the book's scored accounts that are green or improved by
  at least 5 points over the trend period;
* hygiene: 100 × (1 − open overdue cases ÷ open cases); 100 without open cases.

The book is every account the CSM looks after, whole (not split 1/k). Workload
(active accounts split 1/k, ARR) is reported beside the score, never inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHTS = {
    "grr": 0.30,
    "nrr": 0.20,
    "coverage": 0.20,
    "health_lift": 0.15,
    "hygiene": 0.15,
}
LIFT_POINTS = 5


@dataclass(frozen=True)
class BookFacts:
    """What the composite needs to know about one CSM's book."""

    grr: float | None
    nrr: float | None
    active: int
    active_covered: int
    scored: int
    lifted: int
    open_cases: int
    overdue_cases: int


def _linear(value: float | None, low: float, high: float) -> float | None:
    if value is None:
        return None
    return min(100.0, max(0.0, 100.0 * (value - low) / (high - low)))


def sub_scores(facts: BookFacts) -> dict[str, float | None]:
    """The five sub-scores on 0–100 (None without data)."""
    return {
        "grr": _linear(facts.grr, 0.8, 1.0),
        "nrr": _linear(facts.nrr, 0.8, 1.2),
        "coverage": (
            100.0 * facts.active_covered / facts.active if facts.active else None
        ),
        "health_lift": 100.0 * facts.lifted / facts.scored if facts.scored else None,
        "hygiene": (
            100.0 * (1 - facts.overdue_cases / facts.open_cases)
            if facts.open_cases
            else 100.0
        ),
    }


def productivity(scores: dict[str, float | None]) -> float | None:
    """Weighted mean of the sub-scores that have data."""
    present = {name: s for name, s in scores.items() if s is not None}
    weight = sum(WEIGHTS[name] for name in present)
    if not weight:
        return None
    return sum(WEIGHTS[name] * s for name, s in present.items()) / weight
