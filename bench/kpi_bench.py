"""Time ``compute_kpis`` on a synthetic 10k-account canonical store.

Usage::

    .venv/bin/python bench/kpi_bench.py [--accounts 10000] [--repeat 3]
        [--pg postgresql+psycopg://csm:csm@127.0.0.1:5432/csm_test]

Generates the canonical tables directly (no sync): per account ~3 contacts,
10 cases with state changes and interaction links, 10 interactions, 5 survey
answers, 2 sold products, 2 entitlements with 12 monthly usage periods, a CSM.
Loads them into a fresh SQLite file (and a fresh PostgreSQL schema with
``--pg``), then prints the median ``compute_kpis`` and ``store_snapshot`` time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, insert, text
from sqlmodel import SQLModel

import connector.kpi.models  # noqa: F401  (snapshot tables)
from connector.config import KpiSettings
from connector.kpi import compute_kpis, store_snapshot
from connector.store import models as m
from connector.store.engine import create_store_engine

AS_OF = date(2026, 12, 1)
NPS, CSAT = "M_NPS", "M_CSAT"
CHANNELS = ("phone", "email", "web", "chat", "social")
TIERS = ("strategic", "valued", "tactical", "other")


def _ts(rng: random.Random, days_back: int) -> datetime:
    moment = datetime(2026, 12, 1, tzinfo=UTC) - timedelta(
        days=rng.uniform(0, days_back)
    )
    return moment.replace(microsecond=0)


def generate(accounts: int, seed: int = 7) -> dict[type, list[dict]]:
    """Every canonical table's rows for ``accounts`` accounts."""
    rng = random.Random(seed)
    rows: dict[type, list[dict]] = {
        model: []
        for model in (
            m.Account,
            m.Contact,
            m.User,
            m.TeamMember,
            m.Case,
            m.CaseStateChange,
            m.Interaction,
            m.InteractionLink,
            m.SurveyQuestion,
            m.SurveyAnswerOption,
            m.SurveyInstance,
            m.SurveyResult,
            m.SoldProduct,
            m.Entitlement,
            m.EntitlementUsage,
        )
    }
    csms = [f"usr{i:05d}" for i in range(max(accounts // 100, 1))]
    rows[m.User] = [{"sys_id": u, "name": f"CSM {u}"} for u in csms]
    rows[m.SurveyQuestion] = [
        {"sys_id": NPS, "scale_min": 0, "scale_max": 10},
        {"sys_id": CSAT, "scale_min": 1, "scale_max": 5},
    ]
    rows[m.SurveyAnswerOption] = [
        {"sys_id": f"opt{v}", "metric": NPS, "value": v + 1, "display": str(v)}
        for v in range(11)
    ]
    for a in range(accounts):
        _account(rng, rows, f"acc{a:06d}", rng.choice(csms))
    return rows


def _account(rng: random.Random, rows: dict, acc: str, csm: str) -> None:
    health = rng.random()
    rows[m.Account].append(
        {
            "sys_id": acc,
            "name": f"Account {acc}",
            "customer": True,
            "rank_tier": rng.choice(TIERS),
        }
    )
    rows[m.TeamMember].append(
        {
            "sys_id": f"tm{acc}",
            "account": acc,
            "user": csm,
            "responsibility_name": "Account Manager",
        }
    )
    contacts = [f"con{acc}{i}" for i in range(3)]
    rows[m.Contact].extend({"sys_id": c, "account": acc} for c in contacts)
    for i in range(10):
        _case(rng, rows, acc, f"cs{acc}{i}", health)
    for i in range(5):
        inst = f"ins{acc}{i}"
        metric = NPS if i < 2 else CSAT
        score = min(10, max(0, round(health * 10 + rng.gauss(0, 2))))
        value = score + 1 if metric == NPS else 1 + round(score * 0.4)
        rows[m.SurveyInstance].append(
            {
                "sys_id": inst,
                "user": rng.choice(contacts),
                "state": "complete",
                "taken_on": _ts(rng, 300),
            }
        )
        rows[m.SurveyResult].append(
            {
                "sys_id": f"res{acc}{i}",
                "instance": inst,
                "metric": metric,
                "actual_value": value,
                "sys_updated_on": _ts(rng, 300),
            }
        )
    for i in range(2):
        start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 800))
        end = (
            None
            if rng.random() < 0.7
            else start + timedelta(days=rng.randint(300, 900))
        )
        sp = f"sp{acc}{i}"
        rows[m.SoldProduct].append(
            {
                "sys_id": sp,
                "account": acc,
                "start_date": start,
                "end_date": end,
                "quantity": rng.randint(5, 100),
                "annual_price": rng.randint(5, 200) * 1000,
            }
        )
        ent = f"ent{acc}{i}"
        rows[m.Entitlement].append(
            {
                "sys_id": ent,
                "account": acc,
                "sold_product": sp,
                "state": "active",
                "start_date": start,
                "end_date": end,
            }
        )
        for month in range(12):
            period = date(2025 + (month + 12) // 12 - 1, (month + 12) % 12 + 1, 1)
            total = rng.randint(10, 100)
            rows[m.EntitlementUsage].append(
                {
                    "sys_id": f"use{ent}{month}",
                    "entitlement": ent,
                    "account": acc,
                    "period_start": period,
                    "total_units": total,
                    "used_units": int(total * min(1, health * rng.uniform(0.5, 1.5))),
                }
            )


def _case(rng: random.Random, rows: dict, acc: str, case: str, health: float) -> None:
    opened = _ts(rng, 400)
    state = rng.choice(("6", "3", "3", "10", "18", "7"))
    resolved = opened + timedelta(hours=rng.uniform(1, 200)) if state in "63" else None
    rows[m.Case].append(
        {
            "sys_id": case,
            "account": acc,
            "state": state,
            "priority": rng.randint(1, 4),
            "channel": rng.choice(CHANNELS),
            "opened_at": opened,
            "resolved_at": resolved,
            "reassignment_count": int(rng.random() > health),
            "made_sla": rng.random() > 0.1,
        }
    )
    rows[m.CaseStateChange].append(
        {
            "sys_id": f"sc{case}",
            "case": case,
            "old_state": "1",
            "new_state": "10",
            "changed_at": opened,
        }
    )
    if rng.random() < 0.2:
        rows[m.CaseStateChange].append(
            {
                "sys_id": f"sd{case}",
                "case": case,
                "old_state": "10",
                "new_state": "18",
                "changed_at": opened + timedelta(hours=1),
            }
        )
    interaction = f"int{case}"
    rows[m.Interaction].append(
        {"sys_id": interaction, "account": acc, "opened_at": opened, "type": "phone"}
    )
    rows[m.InteractionLink].append(
        {
            "sys_id": f"lnk{case}",
            "interaction": interaction,
            "document_table": "sn_customerservice_case",
            "document_id": case,
        }
    )


def load(engine: Engine, rows: dict[type, list[dict]], batch: int = 5000) -> float:
    """Insert every row; return seconds."""
    SQLModel.metadata.create_all(engine)
    started = time.perf_counter()
    for model, items in rows.items():
        for chunk in _chunks(items, batch):
            with engine.begin() as conn:
                conn.execute(insert(model.__table__), chunk)
    return time.perf_counter() - started


def _chunks(items: list[dict], size: int) -> Iterator[list[dict]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def measure(name: str, engine: Engine, repeat: int) -> None:
    settings = KpiSettings(nps_metric=NPS, csat_metric=CSAT)
    compute, store, cpu = [], [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = compute_kpis(engine, settings, as_of=AS_OF)
        compute.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        started = time.perf_counter()
        written = store_snapshot(engine, result)
        store.append(time.perf_counter() - started)
    # CPU time of this process: on SQLite that is the query work too, and it does
    # not grow when other processes compete for the cores (a shared CI box).
    print(
        f"  compute_kpis CPU time in this process: median "
        f"{statistics.median(cpu):.2f}s; load average {os.getloadavg()[0]:.1f}"
    )
    o = result.overall
    print(
        f"{name}: compute_kpis median {statistics.median(compute):.2f}s "
        f"(runs {', '.join(f'{s:.2f}' for s in compute)}); store_snapshot median "
        f"{statistics.median(store):.2f}s for {written} figures + "
        f"{len(result.accounts)} health rows"
    )
    print(
        f"  accounts {len(result.accounts)}, CSMs {len(result.csms)}, "
        f"NPS {o.nps.value:.1f} (n={o.nps.n}), FCR {o.fcr.value:.3f}, "
        f"NRR {o.retention.nrr:.3f}, active {o.active_accounts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", help="PostgreSQL URL (a fresh schema is used)")
    args = parser.parse_args()

    rows = generate(args.accounts)
    total = sum(len(items) for items in rows.values())
    print(f"Generated {total:,} canonical rows for {args.accounts:,} accounts")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        print(f"sqlite: loaded in {load(engine, rows):.1f}s")
        measure("sqlite", engine, args.repeat)
        engine.dispose()
    if args.pg:
        _bench_pg(args.pg, rows, args.repeat)


def _bench_pg(url: str, rows: dict, repeat: int) -> None:
    schema = f"kpi_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(
        url, connect_args={"options": f"-c search_path={schema} -c timezone=UTC"}
    )
    try:
        print(f"postgresql: loaded in {load(engine, rows):.1f}s")
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        measure("postgresql", engine, repeat)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
