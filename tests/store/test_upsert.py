"""Upserts by sys_id on SQLite and PostgreSQL: counts, staleness, types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connector.store.engine import open_store
from connector.store.models import Case, SoldProduct
from connector.store.upsert import upsert_rows

T0 = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)


def case(n: int, *, state: str = "1", updated: datetime = T0) -> dict:
    return {
        "sys_id": f"{n:032x}",
        "sys_updated_on": updated,
        "deleted_at": None,
        "state": state,
        "business_duration": 1892781,
    }


def test_counts_inserted_updated_unchanged_and_ignores_stale(store_url: str) -> None:
    store = open_store(store_url)

    with store.write() as conn:
        first = upsert_rows(conn, Case, [case(1), case(2), case(3)])
    with store.write() as conn:
        again = upsert_rows(conn, Case, [case(1), case(2), case(3)])
    with store.write() as conn:
        changed = upsert_rows(
            conn,
            Case,
            [
                case(1, state="6", updated=T0 + timedelta(seconds=1)),
                case(2, state="7", updated=T0 - timedelta(days=1)),  # older: stale
                case(4),
            ],
        )
    with store.engine.connect() as conn:
        rows = {r.sys_id: r for r in conn.execute(select(Case.__table__))}
    store.dispose()

    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert (changed.inserted, changed.updated, changed.unchanged) == (1, 1, 1)
    assert rows[f"{1:032x}"].state == "6"
    assert rows[f"{2:032x}"].state == "1"
    assert rows[f"{1:032x}"].sys_updated_on == T0 + timedelta(seconds=1)
    assert rows[f"{1:032x}"].sys_updated_on.tzinfo is not None
    assert len(rows) == 4


def test_a_key_twice_in_one_batch_keeps_the_last(store_url: str) -> None:
    store = open_store(store_url)

    with store.write() as conn:
        counts = upsert_rows(conn, Case, [case(1, state="1"), case(1, state="10")])
    with store.engine.connect() as conn:
        (row,) = conn.execute(select(Case.__table__)).all()
    store.dispose()

    assert counts.inserted == 1
    assert row.state == "10"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    prices=st.lists(
        st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
        min_size=1,
        max_size=20,
    )
)
def test_money_round_trips_exactly_and_repeats_are_unchanged(
    tmp_sqlite_url: str, prices: list[Decimal]
) -> None:
    store = open_store(tmp_sqlite_url)
    rows = [
        {"sys_id": f"{i:032x}", "annual_price": price, "sys_updated_on": T0}
        for i, price in enumerate(prices)
    ]

    with store.write() as conn:
        upsert_rows(conn, SoldProduct, rows)
    with store.write() as conn:
        repeat = upsert_rows(conn, SoldProduct, rows)
    with store.engine.connect() as conn:
        back = dict(
            conn.execute(select(SoldProduct.sys_id, SoldProduct.annual_price)).all()
        )
    with store.write() as conn:
        conn.execute(SoldProduct.__table__.delete())
    store.dispose()

    assert repeat.unchanged == len(prices)
    assert back == {f"{i:032x}": price for i, price in enumerate(prices)}
