"""The upsert's own value encoding stores exactly what SQLAlchemy would.

``upsert_rows`` hands the driver values it encoded itself (date-time text on
SQLite, JSON text, ...). Each example writes the same rows once through it and
once through a plain SQLAlchemy insert, on SQLite and PostgreSQL, and compares
both what the database holds (raw driver values) and what SQLModel reads back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Boolean, Date, Numeric, insert, select
from sqlalchemy.types import JSON
from sqlmodel.sql.sqltypes import UTCDateTime

from connector.store.engine import Store, open_store
from connector.store.models import (
    Account,
    Case,
    SoldProduct,
    SurveyAnswerOption,
    SyncedRecord,
    TeamMember,
)
from connector.store.upsert import upsert_rows

# Every column type; 'case', 'user' and 'value' are reserved words somewhere.
MODELS = (Case, SoldProduct, Account, TeamMember, SurveyAnswerOption)
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)


def value_of(column: Any) -> st.SearchStrategy[Any]:
    """Values of the kinds the row mapper produces for this column type."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return st.datetimes(
            min_value=datetime(1900, 1, 2),
            max_value=datetime(2200, 1, 1),
            timezones=st.sampled_from(ZONES),
        )
    if isinstance(kind, JSON):
        return st.dictionaries(TEXT, st.none() | TEXT, max_size=3)
    if isinstance(kind, Date):
        return st.dates()
    if isinstance(kind, Numeric):
        places = kind.scale or 0
        return st.decimals(
            min_value=-(10**9), max_value=10**9, places=places, allow_nan=False
        )
    if isinstance(kind, BigInteger):
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if isinstance(kind, Boolean):
        return st.booleans()
    return TEXT


@st.composite
def batches(draw: st.DrawFn, model: type[SyncedRecord]) -> list[dict[str, Any]]:
    table = model.__table__  # type: ignore[attr-defined]
    optional = [c.name for c in table.columns if c.name != "sys_id"]
    chosen = draw(st.lists(st.sampled_from(optional), unique=True, min_size=1))
    columns = [c for c in table.columns if c.name in chosen]
    keys = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=8, unique=True))
    return [
        {"sys_id": f"{key:031x}"}
        | {c.name: draw(st.none() | value_of(c)) for c in columns}
        for key in keys
    ]


def stored(store: Store, model: type[SyncedRecord], prefix: str) -> tuple[dict, dict]:
    """(raw driver rows, SQLModel-typed rows) of ``prefix`` keys, by key sans prefix."""
    table = model.__table__  # type: ignore[attr-defined]
    name = store.engine.dialect.identifier_preparer.quote(table.name)
    with store.engine.connect() as conn:
        raw = conn.exec_driver_sql(f"SELECT * FROM {name}").all()
        typed = conn.execute(select(table)).all()
    return (
        {r[0][1:]: tuple(r[1:]) for r in raw if r[0].startswith(prefix)},
        {r[0][1:]: tuple(r[1:]) for r in typed if r[0].startswith(prefix)},
    )


def check_model(store: Store, model: type[SyncedRecord]) -> None:
    table = model.__table__  # type: ignore[attr-defined]

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(rows=batches(model))
    def check(rows: list[dict[str, Any]]) -> None:
        fast = [row | {"sys_id": "a" + row["sys_id"]} for row in rows]
        reference = [row | {"sys_id": "b" + row["sys_id"]} for row in rows]
        with store.write() as conn:
            conn.execute(table.delete())
            first = upsert_rows(conn, model, fast)
            conn.execute(insert(table), reference)
        with store.write() as conn:
            again = upsert_rows(conn, model, fast)

        raw_fast, typed_fast = stored(store, model, "a")
        raw_ref, typed_ref = stored(store, model, "b")
        assert raw_fast == raw_ref
        assert typed_fast == typed_ref
        assert (first.inserted, again.unchanged) == (len(rows), len(rows))

    check()


def test_fast_encoding_stores_what_sqlalchemy_stores(store_url: str) -> None:
    store = open_store(store_url)
    try:
        for model in MODELS:
            check_model(store, model)
    finally:
        store.dispose()


def test_same_instant_in_another_zone_is_unchanged_and_older_is_stale(
    store_url: str,
) -> None:
    store = open_store(store_url)
    t0 = datetime(2026, 1, 2, 10, 0, 0, 123456, tzinfo=UTC)
    row = {"sys_id": "c" * 32, "sys_updated_on": t0, "extra": {"k": "v"}}
    shifted = row | {"sys_updated_on": t0.astimezone(ZONES[1])}
    older = row | {"sys_updated_on": t0 - timedelta(seconds=1), "extra": {"k": "w"}}
    newer = row | {"sys_updated_on": t0 + timedelta(seconds=1), "extra": None}
    try:
        with store.write() as conn:
            upsert_rows(conn, Case, [row])
        counts = []
        for rows in ([shifted], [older], [newer]):
            with store.write() as conn:
                got = upsert_rows(conn, Case, rows)
            counts.append((got.inserted, got.updated, got.unchanged))
        with store.engine.connect() as conn:
            back = conn.execute(select(Case.sys_updated_on, Case.extra)).one()
    finally:
        store.dispose()

    assert counts == [(0, 0, 1), (0, 0, 1), (0, 1, 0)]
    assert back == (t0 + timedelta(seconds=1), None)
