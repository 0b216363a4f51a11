"""Assemble the HTML report from a :class:`KpiResult` and the stored snapshots.

One file, nothing fetched: CSS is inline, charts are inline SVG built in
:mod:`connector.report.charts`, and every value from the data is escaped.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from html import escape
from pathlib import Path

from sqlalchemy import Engine

from connector.kpi.engine import AccountKpis, KpiResult
from connector.kpi.output import trend_text
from connector.kpi.sql import fetch
from connector.report import charts
from connector.report.charts import BAND_COLOURS, Bar

log = logging.getLogger(__name__)

HISTORY_DAYS = 365
AT_RISK = 10
MAX_CSMS = 25
WIDE = frozenset({"Active customers most at risk"})
"""Sections spanning the whole grid row (chart and table side by side)."""
WIDE_CLASS = ' class="wide"'
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;
color:#1d2733;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}
.sub{color:#5b6672;margin-bottom:18px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:18px}
.tile{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;
min-width:120px}.tile b{display:block;font-size:20px}
.tile span{color:#5b6672;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px}
svg.chart{display:block;width:100%;height:auto}
section.wide{grid-column:1/-1}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px;
align-items:start}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px}
table{border-collapse:collapse;font-size:13px;width:100%}
td,th{border-bottom:1px solid #e6e9ed;padding:4px 6px;text-align:left}
.note{color:#5b6672;font-size:12px}svg text{fill:#1d2733}
"""


def _pct(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, pattern: str = "{:.1f}") -> str:
    return "—" if value is None else pattern.format(value)


def _tiles(result: KpiResult) -> str:
    o = result.overall
    ret = o.retention
    ci = o.nps.ci95
    tiles = [
        (
            "NPS",
            _num(o.nps.value),
            f"n={o.nps.n}" + (f", 95% CI {ci[0]:.0f} to {ci[1]:.0f}" if ci else ""),
        ),
        ("CSAT", _num(o.csat.value), f"n={o.csat.n}"),
        (
            "First contact resolution",
            _pct(o.fcr.value),
            f"{o.fcr.numerator:.0f} of {o.fcr.denominator:.0f} cases",
        ),
        ("NRR", _pct(ret.nrr), f"cohort of {ret.cohort}"),
        ("GRR", _pct(ret.grr), f"churned ARR {ret.churn:,.0f}"),
        ("Active accounts", str(o.active_accounts), f"ARR {o.arr:,.0f}"),
        ("Licence utilisation", _pct(o.license_utilisation), "latest periods"),
        (
            "Time to value",
            _num(o.ttv.median_days, "{:.0f} d"),
            f"P75 {_num(o.ttv.p75_days, '{:.0f}')} d, not yet {o.ttv.not_yet}",
        ),
    ]
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><span>{escape(name)}</span><b>{escape(value)}</b>'
            f"<span>{escape(note)}</span></div>"
            for name, value, note in tiles
        )
        + "</div>"
    )


def _history(engine: Engine, as_of: date) -> dict[str, list[tuple[str, float]]]:
    since = as_of - timedelta(days=HISTORY_DAYS)
    with engine.connect() as conn:
        nps = fetch(
            conn,
            "SELECT as_of, value FROM kpi_snapshot WHERE scope = 'overall'"
            " AND kpi = 'nps' AND value IS NOT NULL AND as_of >= :since"
            " AND as_of <= :as_of ORDER BY as_of",
            {"since": since, "as_of": as_of},
        )
        health = fetch(
            conn,
            "SELECT as_of, AVG(score) AS score FROM health_history"
            " WHERE score IS NOT NULL AND as_of >= :since AND as_of <= :as_of"
            " GROUP BY as_of ORDER BY as_of",
            {"since": since, "as_of": as_of},
        )
    return {
        "NPS": [(str(row[0])[:10], float(row[1])) for row in nps],
        "Average health": [(str(row[0])[:10], float(row[1])) for row in health],
    }


def _bands_chart(result: KpiResult) -> str:
    bars = [
        Bar(band if band != "none" else "too little data", count, BAND_COLOURS[band])
        for band, count in result.overall.bands.items()
    ]
    return charts.column_chart("health-bands", "Active accounts by health band", bars)


def _bands_note(result: KpiResult) -> str:
    inactive = result.overall.inactive_accounts
    return (
        f'<p class="note">Active customers only (an active sold product or '
        f"entitlement on {result.as_of}). {inactive} stored account"
        f"{'' if inactive == 1 else 's'} not active on that date "
        f"{'has' if inactive == 1 else 'have'} no health score.</p>"
    )


def _at_risk(result: KpiResult) -> list[AccountKpis]:
    # Churned accounts are already lost: "at risk" means active customers.
    scored = [a for a in result.accounts if a.active and a.health.score is not None]
    return sorted(scored, key=lambda a: (a.health.score, -a.arr, a.sys_id))[:AT_RISK]


def _at_risk_chart(accounts: list[AccountKpis]) -> str:
    bars = [
        Bar(
            a.name or a.sys_id,
            a.health.score,
            BAND_COLOURS[a.health.band or "none"],
            f"{a.health.score} · {a.health.reason.removeprefix('weakest: ')}",
        )
        for a in accounts
    ]
    return charts.bar_chart(
        "at-risk", "Ten active customers most at risk", bars, maximum=100
    )


def _at_risk_table(accounts: list[AccountKpis]) -> str:
    rows = "".join(
        f"<tr><td>{escape(a.name or a.sys_id)}</td><td>{a.health.score}</td>"
        f"<td>{escape(a.health.band or '')}</td><td>{trend_text(a.trend)}</td>"
        f"<td>{escape(a.health.reason)}</td><td>{a.arr:,.0f}</td></tr>"
        for a in accounts
    )
    return (
        "<table><tr><th>Account</th><th>Health</th><th>Band</th><th>Trend</th>"
        f"<th>Weakest components</th><th>ARR</th></tr>{rows}</table>"
    )


def _fcr_chart(result: KpiResult) -> str:
    channels = sorted(result.overall.fcr_by_channel.items())
    bars = [
        Bar(
            channel,
            100 * (ratio.value or 0),
            charts.PALETTE[i % 6],
            f"{100 * (ratio.value or 0):.0f}% ({ratio.numerator:.0f}/"
            f"{ratio.denominator:.0f})",
        )
        for i, (channel, ratio) in enumerate(channels)
    ]
    return charts.column_chart(
        "fcr-channel", "First contact resolution by channel", bars, fmt="{:.0f}%"
    )


def _waterfall(result: KpiResult) -> str:
    ret = result.overall.retention
    steps = [
        ("Start ARR", ret.start_arr),
        ("Expansion", ret.expansion),
        ("Contraction", -ret.contraction),
        ("Churn", -ret.churn),
        ("End ARR", ret.end_arr),
    ]
    return charts.waterfall_chart("nrr-waterfall", "ARR movement of the cohort", steps)


def _csm_chart(result: KpiResult) -> str:
    ranked = sorted(result.csms, key=lambda c: (-c.active_accounts, c.sys_id))
    bars = [
        Bar(
            c.name or c.sys_id,
            c.active_accounts,
            charts.PALETTE[0],
            f"{c.active_accounts:.1f} · productivity {_num(c.productivity, '{:.0f}')}",
        )
        for c in ranked[:MAX_CSMS]
    ]
    return charts.bar_chart("accounts-per-csm", "Active accounts per CSM", bars)


def render_report(engine: Engine, result: KpiResult) -> str:
    """The whole report as one HTML document (a string)."""
    history = _history(engine, result.as_of)
    at_risk = _at_risk(result)
    ret = result.overall.retention
    sections = [
        ("Health distribution", _bands_chart(result), _bands_note(result)),
        (
            "NPS and average health over time",
            charts.line_chart(
                "trend", "NPS and average health over time", history, low=-100, high=100
            ),
            '<p class="note">From stored daily snapshots; health on the same −100…100 '
            "axis as NPS.</p>",
        ),
        (
            "Active customers most at risk",
            f'<div class="pair"><div>{_at_risk_chart(at_risk)}</div>'
            f"<div>{_at_risk_table(at_risk)}</div></div>",
            "",
        ),
        ("First contact resolution by channel", _fcr_chart(result), ""),
        (
            "Net and gross revenue retention",
            _waterfall(result),
            f'<p class="note">NRR {_pct(ret.nrr, 1)}, GRR {_pct(ret.grr, 1)} over the '
            "expansion window.</p>",
        ),
        ("Accounts per CSM", _csm_chart(result), ""),
    ]
    body = "".join(
        f"<section{WIDE_CLASS if title in WIDE else ''}>"
        f"<h2>{escape(title)}</h2>{chart}{extra}</section>"
        for title, chart, extra in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>csm-sync KPI report {result.as_of}</title><style>{STYLE}</style>"
        f"</head><body><h1>Customer success KPIs</h1>"
        f'<div class="sub">As of {result.as_of} · {result.overall.active_accounts}'
        f" active customers of {len(result.accounts)} accounts · "
        f"{len(result.csms)} CSMs</div>{_tiles(result)}"
        f'<div class="grid">{body}</div></body></html>'
    )


def write_report(engine: Engine, result: KpiResult, path: Path) -> Path:
    """Render the report and write it to ``path`` (UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(engine, result), encoding="utf-8")
    log.info("Wrote the KPI report to %s", path)
    return path
