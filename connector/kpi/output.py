"""Render a :class:`KpiResult`: the issue-4 JSON contract, CSV, a rich table."""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.kpi.engine import AccountKpis, CsmKpis, KpiResult

TREND_ARROW = 5
CSV_COLUMNS = (
    "sys_id",
    "name",
    "segment",
    "active",
    "health_score",
    "health_band",
    "health_trend",
    "health_reason",
    "nps",
    "nps_n",
    "csat",
    "csat_n",
    "fcr_rate",
    "arr",
    "cltv",
    "license_utilisation",
    "seat_utilisation",
    "time_to_value_days",
    "days_since_interaction",
)


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _account(a: AccountKpis) -> dict[str, Any]:
    return {
        "sys_id": a.sys_id,
        "name": a.name,
        "segment": a.segment,
        "active": a.active,
        "health_score": a.health.score,
        "health_band": a.health.band,
        "health_trend": a.trend,
        "health_reason": a.health.reason,
        "nps": {"value": _r(a.nps_value), "n": a.nps.n},
        "csat": {"value": _r(a.csat.value), "n": a.csat.n},
        "fcr_rate": {
            "value": _r(a.fcr.value, 4),
            "numerator": int(a.fcr.numerator),
            "denominator": int(a.fcr.denominator),
        },
        "arr": _r(a.arr, 2),
        "cltv": _r(a.cltv, 2),
        "license_utilisation": _r(a.usage.utilisation, 4),
        "seat_utilisation": _r(a.usage.seat_utilisation, 4),
        "time_to_value_days": a.ttv_days,
        "days_since_interaction": a.days_since_interaction,
        "components": dict(a.health.components),
        "csms": list(a.csms),
    }


def _csm(c: CsmKpis) -> dict[str, Any]:
    return {
        "sys_id": c.sys_id,
        "name": c.name,
        "accounts": c.book,
        "active_accounts": _r(c.active_accounts, 3),
        "productivity": _r(c.productivity),
        "arr": _r(c.arr, 2),
        "components": {k: _r(v) for k, v in c.components.items()},
        "nrr": _r(c.retention.nrr, 4),
        "grr": _r(c.retention.grr, 4),
        "nps": {"value": _r(c.nps.value), "n": c.nps.n},
    }


def to_contract(result: KpiResult) -> dict[str, Any]:
    """The JSON shape of issue 4 (extra keys beside the contract ones)."""
    o = result.overall
    ret = o.retention
    ci = o.nps.ci95
    return {
        "as_of": result.as_of.isoformat(),
        "overall": {
            "nps": {
                "value": _r(o.nps.value),
                "n": o.nps.n,
                "ci95": None if ci is None else [_r(ci[0]), _r(ci[1])],
            },
            "csat": {"value": _r(o.csat.value), "n": o.csat.n},
            "fcr_rate": {
                "value": _r(o.fcr.value, 4),
                "numerator": int(o.fcr.numerator),
                "denominator": int(o.fcr.denominator),
            },
            "fcr_by_channel": {
                ch: {
                    "value": _r(r.value, 4),
                    "numerator": int(r.numerator),
                    "denominator": int(r.denominator),
                }
                for ch, r in sorted(o.fcr_by_channel.items())
            },
            "nrr": _r(ret.nrr, 4),
            "grr": _r(ret.grr, 4),
            "expansion_revenue": _r(ret.expansion, 2),
            "contraction": _r(ret.contraction, 2),
            "churn": _r(ret.churn, 2),
            "start_arr": _r(ret.start_arr, 2),
            "arr": _r(o.arr, 2),
            "active_accounts": o.active_accounts,
            "inactive_accounts": o.inactive_accounts,
            "license_utilisation": _r(o.license_utilisation, 4),
            "seat_utilisation": _r(o.seat_utilisation, 4),
            "time_to_value": {
                "median_days": _r(o.ttv.median_days),
                "p75_days": _r(o.ttv.p75_days),
                "not_yet": o.ttv.not_yet,
                "reached": o.ttv.reached,
            },
            "health_bands": dict(o.bands),
            "segments": {
                seg: {
                    "monthly_logo_churn": _r(sum(e["rates"]) / len(e["rates"]), 4)
                    if e["rates"]
                    else None,
                    "lifetime_months": _r(e.get("lifetime_months"), 2),
                }
                for seg, e in sorted(o.segments.items())
            },
        },
        "accounts": [_account(a) for a in result.accounts],
        "csms": [_csm(c) for c in result.csms],
    }


def to_csv(result: KpiResult) -> str:
    """One row per account."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for a in result.accounts:
        row = _account(a)
        row.update(
            nps=row["nps"]["value"],
            nps_n=a.nps.n,
            csat=row["csat"]["value"],
            csat_n=a.csat.n,
            fcr_rate=row["fcr_rate"]["value"],
        )
        writer.writerow({key: row.get(key) for key in CSV_COLUMNS})
    return buffer.getvalue()


def trend_text(trend: int | None) -> str:
    """``+6 ↑``, ``-2 →``: the arrow only moves at 5 points or more (B1)."""
    if trend is None:
        return "—"
    arrow = "↑" if trend >= TREND_ARROW else "↓" if trend <= -TREND_ARROW else "→"
    return f"{trend:+d} {arrow}"


def _fmt(value: Any, pattern: str = "{:.1f}") -> str:
    return "—" if value is None else pattern.format(value)


def print_table(result: KpiResult, console: Console, *, limit: int = 25) -> None:
    """Overall figures, the accounts most at risk and the CSMs, for humans."""
    o = result.overall
    summary = Table(title=f"KPIs as of {result.as_of}")
    summary.add_column("KPI")
    summary.add_column("value", justify="right")
    summary.add_column("inputs")
    ci = o.nps.ci95
    summary.add_row(
        "NPS",
        _fmt(o.nps.value),
        f"n={o.nps.n}" + (f", 95% CI {ci[0]:.1f}…{ci[1]:.1f}" if ci else ""),
    )
    summary.add_row("CSAT", _fmt(o.csat.value), f"n={o.csat.n}")
    summary.add_row(
        "FCR",
        _fmt(o.fcr.value, "{:.1%}"),
        f"{o.fcr.numerator:.0f}/{o.fcr.denominator:.0f}",
    )
    ret = o.retention
    summary.add_row("NRR", _fmt(ret.nrr, "{:.1%}"), f"cohort {ret.cohort}")
    summary.add_row("GRR", _fmt(ret.grr, "{:.1%}"), f"churn {ret.churn:,.0f}")
    summary.add_row(
        "Expansion", f"{ret.expansion:,.0f}", f"contraction {ret.contraction:,.0f}"
    )
    summary.add_row(
        "Active accounts",
        str(o.active_accounts),
        f"ARR {o.arr:,.0f}; {o.inactive_accounts} not active (no health score)",
    )
    summary.add_row("Licence utilisation", _fmt(o.license_utilisation, "{:.1%}"), "")
    summary.add_row(
        "Time to value (median/P75)",
        f"{_fmt(o.ttv.median_days)} / {_fmt(o.ttv.p75_days)} days",
        f"not yet {o.ttv.not_yet}",
    )
    console.print(summary)
    _print_accounts(result, console, limit)
    _print_csms(result, console)


def _print_accounts(result: KpiResult, console: Console, limit: int) -> None:
    table = Table(title="Active accounts, lowest health first")
    for column in ("account", "health", "band", "trend", "NPS (n)", "ARR", "reason"):
        table.add_column(column)
    active = [a for a in result.accounts if a.active]
    ranked = sorted(
        active,
        key=lambda a: (a.health.score is None, a.health.score or 0, -a.arr, a.sys_id),
    )
    for a in ranked[:limit]:
        table.add_row(
            escape(a.name or a.sys_id),
            _fmt(a.health.score, "{}"),
            a.health.band or "—",
            trend_text(a.trend),
            f"{_fmt(a.nps_value)} ({a.nps.n})",
            f"{a.arr:,.0f}",
            escape(a.health.reason),
        )
    console.print(table)
    inactive = len(result.accounts) - len(active)
    if inactive:
        console.print(
            f"{inactive} account(s) not active customers on {result.as_of} have no "
            "health score (listed in --format json/csv with active=false)."
        )


def _print_csms(result: KpiResult, console: Console) -> None:
    table = Table(title="CSMs")
    for column in ("CSM", "active accounts", "ARR", "productivity"):
        table.add_column(column)
    for c in result.csms:
        table.add_row(
            escape(c.name or c.sys_id),
            f"{c.active_accounts:.1f}",
            f"{c.arr:,.0f}",
            _fmt(c.productivity),
        )
    console.print(table)
