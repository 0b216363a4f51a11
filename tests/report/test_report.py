"""``csm-sync report``: one self-contained file, one inline SVG per chart."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from kpi.seed import HOSTILE_NAME

CHARTS = (
    "health-bands",
    "at-risk",
    "trend",
    "fcr-channel",
    "nrr-waterfall",
    "accounts-per-csm",
)
EXTERNAL = (
    "<script",
    "src=",
    "href=",
    "http://",
    "https://",
    "url(",
    "@import",
    "<link",
    "<iframe",
    "<img",
)


def _charts(html: str) -> dict[str, str]:
    return dict(
        re.findall(r'(?s)<svg class="chart" data-chart="([^"]+)"(.*?)</svg>', html)
    )


def _bar_heights(svg: str) -> list[float]:
    return [
        float(h) for h in re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', svg)
    ]


def test_one_svg_per_chart_and_nothing_external(report_html: Path) -> None:
    html = report_html.read_text(encoding="utf-8")

    assert html.count("<svg") == len(CHARTS)
    assert set(_charts(html)) == set(CHARTS)
    lowered = html.lower()
    assert [token for token in EXTERNAL if token in lowered] == []


def test_data_text_is_escaped(report_html: Path) -> None:
    html = report_html.read_text(encoding="utf-8")

    assert HOSTILE_NAME not in html
    assert escape(HOSTILE_NAME) in html
    assert "Una <i>CSM</i>" not in html and escape("Una <i>CSM</i>") in html


def test_charts_have_nonzero_marks(report_html: Path) -> None:
    charts = _charts(report_html.read_text(encoding="utf-8"))

    for name in (
        "health-bands",
        "at-risk",
        "fcr-channel",
        "nrr-waterfall",
        "accounts-per-csm",
    ):
        assert any(h > 0 for h in _bar_heights(charts[name])), name
    # three stored days + today; on 2026-10-06 no account had enough data to score
    assert charts["trend"].count("<title>NPS 2026-") == 4
    assert charts["trend"].count("<title>Average health 2026-") == 3
    assert "42,000" in charts["nrr-waterfall"] and "-6,000" in charts["nrr-waterfall"]


def test_at_risk_lists_the_weakest_components(report_html: Path) -> None:
    html = report_html.read_text(encoding="utf-8")

    assert "weakest: support 33, adoption 50" in html
    assert "NRR 85.7%" in html


def test_health_bands_count_active_customers_only(report_html: Path) -> None:
    html = report_html.read_text(encoding="utf-8")
    bands = _charts(html)["health-bands"]

    # Acme 63 and the hostile account 40 are active; Gone Ltd's product ended
    # 2026-08-31, so it is counted apart instead of as "no score".
    tips = re.findall(r"<title>([a-z ]+: \d+)</title>", bands)
    assert tips == ["green: 0", "yellow: 2", "red: 0", "too little data: 0"]
    assert "1 stored account not active on that date has no health score" in html
    assert "2 active customers of 3 accounts" in html
    assert "Gone Ltd" not in html
