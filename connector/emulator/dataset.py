"""Deterministic CSM dataset for the emulated instance, with a known truth.

``DatasetGenerator(seed=..., accounts=..., as_of=...)`` simulates about three
years of a customer-service book ending at ``as_of``: staff, accounts,
contacts, account teams, products, contracts and usage, cases with their state
history, interactions and surveys. Every account has a hidden health ``h`` in
[0, 1] that drives NPS, CSAT, usage, case volume and severity, churn and
expansion; ``truth`` records it so KPI results can be checked.

Rows are dicts of strings exactly as an instance stores them (sys_ids, UTC
``YYYY-MM-DD HH:MM:SS``, 'true'/'false', '' for empty, durations as 1970
datetimes). The same inputs give byte-identical rows in the same order.

``truth`` (complete once ``batches()`` is exhausted) holds ``seed``,
``accounts``, ``as_of``, the NPS and CSAT question sys_ids, ``account_health``
({account sys_id: h}), ``churned`` ([{account, date, arr_lost}] where ``date``
is the first day with no active sold product and ``arr_lost`` the ARR of the
day before), ``expansions`` ([{account, date, arr_gained}]: seats added on a
renewal or a product cross-sold to an existing customer, dated the day the
higher ARR starts; new logos are not expansions and there is no contraction)
and ``counts`` ({table: rows}). Only events on or before ``as_of`` appear.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from connector.emulator.dataset_cases import Cases
from connector.emulator.dataset_commerce import Commerce
from connector.emulator.dataset_people import People
from connector.emulator.dataset_reference import (
    ACCOUNT_MANAGER_RESPONSIBILITY_ID,
    COMMENT_METRIC_ID,
    CSAT_METRIC_ID,
    NPS_METRIC_ID,
    PRODUCT_IDS,
    SURVEY_TYPE_ID,
    emit_reference,
)
from connector.emulator.dataset_support import DAY, World
from connector.emulator.dataset_surveys import Surveys

__all__ = [
    "ACCOUNT_MANAGER_RESPONSIBILITY_ID",
    "BATCH_SIZE",
    "COMMENT_METRIC_ID",
    "CSAT_METRIC_ID",
    "NPS_METRIC_ID",
    "PRODUCT_IDS",
    "SURVEY_TYPE_ID",
    "TABLE_ORDER",
    "DatasetGenerator",
]

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000

# Referenced tables come before the tables that reference them.
TABLE_ORDER = (
    "sys_user",
    "sn_customerservice_responsibility",
    "cmdb_model",
    "asmt_metric_type",
    "asmt_metric",
    "asmt_metric_definition",
    "customer_account",
    "customer_contact",
    "sn_customerservice_team_member",
    "sn_install_base_sold_product",
    "service_entitlement",
    "sn_pss_core_entitlement_usage",
    "sn_customerservice_case",
    "sys_audit",
    "interaction",
    "interaction_related_record",
    "asmt_assessment_instance",
    "asmt_metric_result",
)

# Tables whose ``number`` is assigned in creation order, as an instance does.
_NUMBERS = {
    "customer_account": ("ACCT", 1001),
    "sn_install_base_sold_product": ("SP", 1001),
    "sn_customerservice_case": ("CS", 1001),
    "interaction": ("IMS", 1001),
    "asmt_assessment_instance": ("AINST", 1001),
}


class DatasetGenerator:
    """Generates the emulated instance's rows table by table, in batches."""

    def __init__(self, *, seed: int, accounts: int, as_of: dt.date) -> None:
        if accounts < 0:
            raise ValueError(f"accounts must be >= 0, got {accounts}")
        self.seed = seed
        self.accounts = accounts
        # A datetime is accepted too; only its (UTC) date matters.
        self.as_of = as_of.date() if isinstance(as_of, dt.datetime) else as_of
        self.truth: dict = {}

    def batches(self) -> Iterator[tuple[str, list[dict[str, str]]]]:
        """Yield ``(table, rows)`` in reference order, at most ``BATCH_SIZE`` rows."""
        world = self._simulate()
        for table in TABLE_ORDER:
            rows = world.sink.rows.pop(table, [])
            if table in _NUMBERS:
                _number(rows, *_NUMBERS[table])
            for start in range(0, len(rows), BATCH_SIZE):
                yield table, rows[start : start + BATCH_SIZE]

    def _simulate(self) -> World:
        """Run the whole simulation into memory and fill ``truth``."""
        world = World(seed=self.seed, as_of=self.as_of)
        people, commerce = People(world), Commerce(world)
        surveys_module = Surveys(world)
        cases = Cases(world, surveys_module.case_closed)
        setup = world.stamp(people.import_start - 30 * DAY)
        emit_reference(world.sink, setup)
        people.emit_staff(self.accounts)
        health: dict[str, float] = {}
        for _ in range(self.accounts):
            account = people.new_account()
            commerce.run(account)
            people.emit_account(account)
            cases.run(account)
            surveys_module.campaigns(account)
            health[account.sys_id] = round(account.h, 4)
        self.truth = self._truth(world, health, commerce)
        logger.info(
            "Generated dataset seed=%s accounts=%s rows=%s",
            self.seed,
            self.accounts,
            sum(self.truth["counts"].values()),
        )
        return world

    def _truth(
        self, world: World, health: dict[str, float], commerce: Commerce
    ) -> dict:
        return {
            "seed": self.seed,
            "accounts": self.accounts,
            "as_of": self.as_of.isoformat(),
            "nps_metric": NPS_METRIC_ID,
            "csat_metric": CSAT_METRIC_ID,
            "account_health": health,
            "churned": commerce.churned,
            "expansions": commerce.expansions,
            "counts": {t: len(world.sink.rows.get(t, ())) for t in TABLE_ORDER},
        }


def _number(rows: list[dict[str, str]], prefix: str, first: int) -> None:
    """Sort by creation (stable) and number consecutively, e.g. ``CS0001001``."""
    rows.sort(key=lambda row: row["sys_created_on"])
    for n, row in enumerate(rows, start=first):
        row["number"] = f"{prefix}{n:07d}"
