"""Snapshot tables of the KPI engine.

Every figure is stored with its inputs so a number written to ServiceNow can be
explained later: ``kpi_snapshot`` holds one row per (as-of date, scope, scope id,
KPI); ``health_history`` one row per account and day, the source of health trends.
Both are keyed on their natural key, so re-running a date replaces its rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

SCOPES = ("overall", "account", "csm", "channel", "segment")
"""Scopes a snapshot row can have; ``overall`` rows use an empty scope id."""


class KpiSnapshot(SQLModel, table=True):
    """One KPI figure for one scope on one as-of date, with its inputs."""

    __tablename__ = "kpi_snapshot"
    as_of: date = Field(primary_key=True)
    scope: str = Field(primary_key=True, max_length=16)
    scope_id: str = Field(primary_key=True, max_length=64)
    kpi: str = Field(primary_key=True, max_length=48)
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    n: int | None = None
    detail: dict | None = Field(default=None, sa_column=Column(JSON))
    computed_at: datetime | None = None


class HealthHistory(SQLModel, table=True):
    """An account's health score on one day (the trend reads it back)."""

    __tablename__ = "health_history"
    account: str = Field(primary_key=True, max_length=32)
    as_of: date = Field(primary_key=True, index=True)
    score: int | None = None
    band: str | None = Field(default=None, max_length=8)
    trend: int | None = None
    weight_share: float | None = None
    nps_value: float | None = None
    nps_n: int | None = None
    reason: str | None = None
    components: dict | None = Field(default=None, sa_column=Column(JSON))
    computed_at: datetime | None = None


KPI_TABLES = (KpiSnapshot.__table__, HealthHistory.__table__)
