"""Test helpers: fresh stores (real SQLite file, real PostgreSQL schema) and a seeder.

The seeder inserts canonical rows directly, the way the sync would leave them,
so each KPI test can state its input tables in a few readable lines.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, inspect, text
from sqlmodel import SQLModel

import connector.kpi.models  # noqa: F401  (registers the snapshot tables)
from connector.store import models as m
from connector.store.engine import create_store_engine

BACKENDS = ["sqlite", "postgres"]


def pg_base_url() -> str:
    """The test PostgreSQL URL; skip (or fail when CSM_SYNC_REQUIRE_PG=1) without it."""
    url = os.environ.get("CSM_SYNC_TEST_PG_URL")
    if not url:
        if os.environ.get("CSM_SYNC_REQUIRE_PG") == "1":
            pytest.fail("CSM_SYNC_REQUIRE_PG=1 but CSM_SYNC_TEST_PG_URL is not set")
        pytest.skip("CSM_SYNC_TEST_PG_URL is not set")
    return url


def sqlite_store(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """A fresh SQLite file with every table; yields (engine, url)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(url)
    SQLModel.metadata.create_all(engine)
    yield engine, url
    engine.dispose()


def pg_schema() -> Iterator[tuple[Engine, str]]:
    """A private PostgreSQL schema with every table, dropped afterwards."""
    base = pg_base_url()
    schema = f"kpi_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    engine = create_engine(
        url,
        connect_args={
            "options": f"-c search_path={schema} -c timezone=UTC"
            " -c synchronous_commit=off"
        },
    )
    SQLModel.metadata.create_all(engine)
    try:
        yield engine, url
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def empty_tables(engine: Engine) -> None:
    """Remove every row of every table (cheaper than a new schema per test)."""
    # Only the tables that exist: other modules may register models later.
    # DELETE beats TRUNCATE on tables this small (no new files, no table locks).
    with engine.begin() as conn:
        for name in inspect(conn).get_table_names():
            conn.execute(text(f'DELETE FROM "{name}"'))


class Seed:
    """Insert canonical rows with generated sys_ids and sensible defaults."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ids = itertools.count(1)

    def _insert(self, model: type[SQLModel], prefix: str, values: dict) -> str:
        sys_id = values.pop("sys_id", None) or f"{prefix}{next(self._ids):04d}"
        row: dict[str, Any] = {"sys_id": sys_id, **values}
        for key, value in row.items():
            if isinstance(value, datetime) and value.tzinfo is None:
                row[key] = value.replace(tzinfo=UTC)
        with self.engine.begin() as conn:
            conn.execute(insert(model.__table__), [row])
        return sys_id

    def account(self, name: str = "Acme", **values: Any) -> str:
        values.setdefault("customer", True)
        return self._insert(m.Account, "acc", {"name": name, **values})

    def contact(self, account: str, **values: Any) -> str:
        return self._insert(m.Contact, "con", {"account": account, **values})

    def user(self, name: str, **values: Any) -> str:
        return self._insert(m.User, "usr", {"name": name, **values})

    def csm(self, account: str, user: str, role: str = "Account Manager") -> str:
        return self._insert(
            m.TeamMember,
            "tm",
            {"account": account, "user": user, "responsibility_name": role},
        )

    def case(self, account: str | None, **values: Any) -> str:
        values.setdefault("state", "6")
        values.setdefault("opened_at", datetime(2026, 11, 1, 9))
        return self._insert(m.Case, "cs", {"account": account, **values})

    def state_change(
        self, case: str, old: str, new: str, at: datetime, **kw: Any
    ) -> str:
        return self._insert(
            m.CaseStateChange,
            "sc",
            {"case": case, "old_state": old, "new_state": new, "changed_at": at, **kw},
        )

    def interaction(self, account: str | None, opened_at: datetime, **kw: Any) -> str:
        return self._insert(
            m.Interaction, "int", {"account": account, "opened_at": opened_at, **kw}
        )

    def link(self, interaction: str, case: str, **kw: Any) -> str:
        return self._insert(
            m.InteractionLink,
            "lnk",
            {
                "interaction": interaction,
                "document_table": "sn_customerservice_case",
                "document_id": case,
                **kw,
            },
        )

    def question(self, sys_id: str, **values: Any) -> str:
        return self._insert(m.SurveyQuestion, "q", {"sys_id": sys_id, **values})

    def option(self, metric: str, value: float, display: str) -> str:
        return self._insert(
            m.SurveyAnswerOption,
            "opt",
            {"metric": metric, "value": value, "display": display},
        )

    def instance(self, user: str | None, taken_on: datetime, **values: Any) -> str:
        values.setdefault("state", "complete")
        return self._insert(
            m.SurveyInstance, "ins", {"user": user, "taken_on": taken_on, **values}
        )

    def result(
        self,
        instance: str,
        metric: str,
        actual: float | None,
        string: str | None = None,
        **values: Any,
    ) -> str:
        values.setdefault("sys_updated_on", datetime(2026, 11, 1))
        return self._insert(
            m.SurveyResult,
            "res",
            {
                "instance": instance,
                "metric": metric,
                "actual_value": actual,
                "string_value": string,
                **values,
            },
        )

    def answer(
        self,
        account: str,
        metric: str,
        score: float,
        taken_on: datetime = datetime(2026, 10, 1),
    ) -> str:
        """One respondent (a new contact of ``account``) answering ``score``."""
        instance = self.instance(self.contact(account), taken_on)
        self.result(instance, metric, score)
        return instance

    def product(
        self,
        account: str,
        price: float | None,
        start: date,
        end: date | None = None,
        **values: Any,
    ) -> str:
        return self._insert(
            m.SoldProduct,
            "sp",
            {
                "account": account,
                "annual_price": price,
                "start_date": start,
                "end_date": end,
                **values,
            },
        )

    def entitlement(
        self, account: str, start: date, end: date | None = None, **values: Any
    ) -> str:
        values.setdefault("state", "active")
        return self._insert(
            m.Entitlement,
            "ent",
            {"account": account, "start_date": start, "end_date": end, **values},
        )

    def usage(
        self,
        account: str | None,
        period_start: date,
        used: int,
        total: int,
        **values: Any,
    ) -> str:
        return self._insert(
            m.EntitlementUsage,
            "use",
            {
                "account": account,
                "period_start": period_start,
                "used_units": used,
                "total_units": total,
                **values,
            },
        )


def seed_acme(seed: Seed) -> str:
    """The hand-computed "Acme" account of test_health (health 63, yellow)."""
    acme = seed.account("Acme <b>&</b>")
    seed.product(acme, 12000, date(2025, 3, 1), date(2027, 2, 28))
    seed.usage(acme, date(2026, 11, 1), 5, 10)
    seed.case(acme, state="10", priority=1, opened_at=datetime(2026, 6, 1))
    for day in (1, 2, 3):
        seed.case(
            acme,
            priority=3,
            opened_at=datetime(2026, 11, day),
            resolved_at=datetime(2026, 11, day, 12),
        )
    for score in (10, 10, 10, 8, 3):
        seed.answer(acme, "M_NPS", score)
    seed.question("M_CSAT", scale_min=1, scale_max=5)
    seed.answer(acme, "M_CSAT", 4, taken_on=datetime(2026, 11, 20))
    seed.interaction(acme, datetime(2026, 11, 3, 10))
    return acme


HOSTILE_NAME = '<script>alert("x")</script> & Co'


def seed_portfolio(seed: Seed) -> dict[str, str]:
    """Acme plus a small portfolio: two CSMs, a churn, FCR cases on two channels."""
    acme = seed_acme(seed)
    hostile = seed.account(HOSTILE_NAME, rank_tier="valued")
    seed.product(hostile, 24000, date(2025, 1, 1))
    seed.usage(hostile, date(2026, 11, 1), 1, 10)
    seed.interaction(hostile, datetime(2026, 6, 1))
    gone = seed.account("Gone Ltd", rank_tier="valued")
    seed.product(gone, 6000, date(2025, 1, 1), date(2026, 8, 31))
    una, udo = seed.user("Una <i>CSM</i>"), seed.user("Udo")
    seed.csm(acme, una)
    seed.csm(hostile, una)
    seed.csm(hostile, udo)
    seed.csm(gone, udo)
    for channel, reassigned in (("phone", 0), ("phone", 1), ("email", 0)):
        seed.case(
            hostile,
            channel=channel,
            reassignment_count=reassigned,
            resolved_at=datetime(2026, 11, 20),
        )
    return {"acme": acme, "hostile": hostile, "gone": gone, "una": una, "udo": udo}


def write_config(path: Path, url: str) -> Path:
    """A config file for the CLI pointing at ``url`` (no secret in the file)."""
    path.write_text(
        "instance:\n"
        "  url: http://127.0.0.1:9\n"
        "  auth:\n    method: basic\n    username: kpi\n"
        "    password: ${KPI_TEST_PW:-x}\n"
        f"store:\n  url: '{url}'\n"
        "kpi:\n  nps_metric: M_NPS\n  csat_metric: M_CSAT\n",
        encoding="utf-8",
    )
    return path
