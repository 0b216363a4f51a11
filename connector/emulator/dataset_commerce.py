"""Sold products, entitlements and monthly usage, driven by account health.

Contracts are co-termed 1-, 2- or 3-year terms starting on the 1st of a month.
At each term end a low-health account may not renew (the end date passes with
no successor, so its ARR drops to 0); a high-health one is more likely to add
seats on renewal or buy another product mid-term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from connector.emulator.dataset_people import Account
from connector.emulator.dataset_reference import PRODUCT_IDS, PRODUCTS
from connector.emulator.dataset_support import DAY, HOUR, World, month_start

_TIER_DISCOUNT = {"strategic": 0.7, "valued": 0.8, "tactical": 0.9, "other": 1.0}
_JOB_RATE = 250  # rows per second of the nightly contract job
_USAGE_RATE = 800  # rows per second of the monthly usage import
_MAX_PRODUCTS = 5


@dataclass(slots=True)
class Holding:
    """One product an account pays for, across its renewals."""

    product: int
    quantity: int
    unit_price: float
    first_month: int

    @property
    def arr(self) -> float:
        """Annual recurring price of the current quantity."""
        return round(self.quantity * self.unit_price, 2)


class Commerce:
    """Writes sn_install_base_sold_product, service_entitlement and usage rows."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.churned: list[dict] = []
        self.expansions: list[dict] = []

    def run(self, account: Account) -> None:
        """Simulate the account's contract terms up to ``as_of``."""
        rng = self.w.rng
        h = account.h
        self._umax = min(0.98, max(0.05, 0.12 + 0.85 * h + rng.gauss(0.0, 0.12)))
        self._tau = (0.5 + 7.0 * (1.0 - h) ** 1.5) * rng.uniform(0.7, 1.3)
        self._planned_churn: int | None = None
        # Most contracts run a year; bigger deals are often signed for two or three.
        self._term = rng.choices((12, 24, 36), (0.6, 0.25, 0.15))[0]
        holdings = self._initial_holdings(account)
        p_churn = min(0.9, max(0.01, 0.03 + 0.6 * (1 - h) ** 1.7 + rng.gauss(0, 0.04)))
        self._terms(account, holdings, p_churn)

    def _initial_holdings(self, account: Account) -> list[Holding]:
        rng = self.w.rng
        first = rng.randrange(len(PRODUCTS))
        chosen = [first]
        if rng.random() < 0.45:
            chosen.append((first + rng.randrange(1, len(PRODUCTS))) % len(PRODUCTS))
        return [self._holding(account, p, account.start_month) for p in chosen]

    def _holding(self, account: Account, product: int, month: int) -> Holding:
        rng = self.w.rng
        _, price, share = PRODUCTS[product]
        unit = price * _TIER_DISCOUNT[account.tier] * rng.uniform(0.95, 1.05)
        quantity = max(1, round(account.seats * share * rng.uniform(0.8, 1.2)))
        account.products.append((month_start(month), PRODUCT_IDS[product]))
        return Holding(product, quantity, round(unit, 2), month)

    def _terms(self, account: Account, holdings: list[Holding], p_churn: float) -> None:
        """Walk term by term: write rows, cross-sell, then renew or churn."""
        w, rng = self.w, self.w.rng
        term, created = account.start_month, account.created + rng.randrange(60, 3600)
        while True:
            end_month = term + self._term
            if rng.random() < p_churn:
                self._planned_churn = end_month
            for holding in holdings:
                self._write_term(account, holding, term, end_month, created)
            self._maybe_cross_sell(account, holdings, term, end_month)
            renewal_day = month_start(end_month)
            if self._planned_churn == end_month:
                self._churn(account, holdings, renewal_day)
                return
            created = w.work_time(renewal_day - rng.randint(20, 60))
            if created > w.end:
                return
            self._renew(account, holdings, renewal_day)
            term = end_month

    def _churn(self, account: Account, holdings: list[Holding], day: int) -> None:
        if day <= self.w.last_day:
            account.churn_day = day
            self.churned.append(
                {
                    "account": account.sys_id,
                    "date": self.w.clock.date(day),
                    "arr_lost": round(sum(x.arr for x in holdings), 2),
                }
            )

    def _renew(self, account: Account, holdings: list[Holding], day: int) -> None:
        """Renewal: healthy accounts often add seats (an expansion)."""
        rng = self.w.rng
        gained = 0.0
        for holding in holdings:
            if rng.random() < 0.08 + 0.5 * account.h**2:
                before = holding.arr
                holding.quantity = math.ceil(holding.quantity * rng.uniform(1.1, 1.5))
                gained += holding.arr - before
        if gained > 0 and day <= self.w.last_day:
            self._expansion(account, day, gained)

    def _maybe_cross_sell(
        self, account: Account, holdings: list[Holding], term: int, end_month: int
    ) -> None:
        w, rng = self.w, self.w.rng
        if (
            len(holdings) >= _MAX_PRODUCTS
            or self._planned_churn == end_month
            or rng.random() > (0.04 + 0.4 * account.h**1.5) * self._term / 12
        ):
            return
        owned = {x.product for x in holdings}
        product = rng.choice([p for p in range(len(PRODUCTS)) if p not in owned])
        month = term + rng.randint(2, self._term - 3)
        start = month_start(month)
        created = w.work_time(start - rng.randint(5, 30))
        if created > w.end:
            return
        holding = self._holding(account, product, month)
        holdings.append(holding)
        self._write_term(account, holding, month, end_month, created)
        if start <= w.last_day:
            self._expansion(account, start, holding.arr)

    def _expansion(self, account: Account, day: int, gained: float) -> None:
        self.expansions.append(
            {
                "account": account.sys_id,
                "date": self.w.clock.date(day),
                "arr_gained": round(gained, 2),
            }
        )

    def _lifecycle(self, created: int, start: int, end: int) -> tuple[str, int, int]:
        """State, last update and update count from the nightly contract job."""
        w = self.w
        state, updated, mods = "active", created, 0
        if created < start * DAY:
            state = "draft"
            activate = w.bursts.at(start * DAY + 2 * HOUR, _JOB_RATE)
            if activate <= w.end:
                state, updated, mods = "active", activate, 1
        expire = (end + 1) * DAY + 2 * HOUR
        if state == "active" and expire <= w.end:
            updated, mods = w.bursts.at(expire, _JOB_RATE), mods + 1
            state = "expired"
        return state, updated, mods

    def _write_term(
        self,
        account: Account,
        holding: Holding,
        month: int,
        end_month: int,
        created: int,
    ) -> None:
        """One sold product row, its entitlement and the entitlement's usage."""
        w = self.w
        start, end = month_start(month), month_start(end_month) - 1
        name = PRODUCTS[holding.product][0]
        product_id = PRODUCT_IDS[holding.product]
        sold_id = w.sink.new_id()
        state, updated, mods = self._lifecycle(created, start, end)
        dates = {
            "start_date": w.clock.date(start),
            "end_date": w.clock.date(end),
            "state": state,
            "account": account.sys_id,
            "product": product_id,
        }
        w.sink.add(
            "sn_install_base_sold_product",
            sold_id,
            (w.stamp(created), w.stamp(updated)),
            ("admin", "system" if mods else "admin"),
            mods,
            {
                "name": name,
                "quantity": str(holding.quantity),
                "annual_recurring_price": f"{holding.arr:.2f}",
                **dates,
            },
        )
        ent_id = w.sink.new_id()
        state, updated, mods = self._lifecycle(created + 1, start, end)
        w.sink.add(
            "service_entitlement",
            ent_id,
            (w.stamp(created + 1), w.stamp(updated)),
            ("admin", "system" if mods else "admin"),
            mods,
            {
                "entitlement_name": f"{name} Subscription",
                "sold_product": sold_id,
                **dates,
                "state": state,
            },
        )
        self._write_usage(ent_id, holding, month, end_month)

    def _write_usage(
        self, ent_id: str, holding: Holding, month: int, end_month: int
    ) -> None:
        """Monthly usage, loaded on the 1st of the next month in one burst."""
        w, rng = self.w, self.w.rng
        for m in range(month, end_month):
            load_day = month_start(m + 1)
            if load_day > w.last_day:
                return
            used = holding.quantity * self._utilisation(m, holding.first_month)
            used = min(holding.quantity, max(0, round(used * rng.gauss(1.0, 0.06))))
            stamp = w.stamp(w.bursts.at(load_day * DAY + 3 * HOUR, _USAGE_RATE))
            w.sink.add(
                "sn_pss_core_entitlement_usage",
                w.sink.new_id(),
                (stamp, stamp),
                ("usage.import", "usage.import"),
                0,
                {
                    "entitlement": ent_id,
                    "period_start": w.clock.date(month_start(m)),
                    "period_end": w.clock.date(load_day - 1),
                    "total_units": str(holding.quantity),
                    "used_units": str(used),
                },
            )

    def _utilisation(self, month: int, first_month: int) -> float:
        """Share of seats in use: ramps to a plateau set by health, sags pre-churn."""
        age = month - first_month + 1
        util = self._umax * (1.0 - math.exp(-age / self._tau))
        if self._planned_churn is not None:
            left = self._planned_churn - month
            if 0 < left <= 5:
                util *= 1.0 - 0.12 * (6 - left)
        return util
