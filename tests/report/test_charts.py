"""The SVG charts themselves: scaling, the one-snapshot trend, signs, legend keys."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from connector.report import charts
from connector.report.charts import PALETTE, Bar

WATERFALL = "nrr-waterfall"


def _texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


@given(st.floats(min_value=-0.4999, max_value=0.4999, allow_nan=False))
def test_a_change_that_rounds_to_zero_never_reads_minus_zero(value: float) -> None:
    steps = [("Start", 1000.0), ("Contraction", value), ("End", 1000.0 + value)]

    svg = charts.waterfall_chart(WATERFALL, "ARR", steps)

    assert _texts(svg)[2:4] == ["0", "Contraction"]
    assert "-0" not in svg


def test_real_negative_changes_keep_their_sign() -> None:
    svg = charts.waterfall_chart(
        WATERFALL, "ARR", [("Start", 1000.0), ("Churn", -400.0), ("End", 600.0)]
    )

    assert "-400" in _texts(svg)


def test_every_chart_scales_to_its_card() -> None:
    svgs = [
        charts.column_chart("c", "t", [Bar("a", 1)]),
        charts.bar_chart("b", "t", [Bar("a", 1)]),
        charts.line_chart("l", "t", {"NPS": [("2026-12-01", 5.0)]}, low=0, high=9),
        charts.waterfall_chart(WATERFALL, "t", [("Start", 1.0), ("End", 1.0)]),
        charts.empty_chart("e", "t"),
    ]

    for svg in svgs:
        opening = svg[: svg.index(">")]
        assert 'width="100%"' in opening
        assert re.search(r'viewBox="0 0 \d+ \d+"', opening)
        assert "height=" not in opening  # the browser derives it from the viewBox


def test_one_snapshot_is_centred_and_says_so() -> None:
    svg = charts.line_chart(
        "trend",
        "t",
        {"NPS": [("2026-12-03", 10.0)], "Average health": [("2026-12-03", 60.0)]},
        low=-100,
        high=100,
    )

    texts = _texts(svg)
    assert texts.count("2026-12-03") == 1  # not at both ends of the axis
    assert any(t.startswith("one snapshot so far") for t in texts)
    centre = (48 + charts.WIDTH - 20) / 2
    assert set(re.findall(r'<circle[^>]*cx="([\d.]+)"', svg)) == {f"{centre:.1f}"}


def test_two_snapshots_span_the_axis_without_the_note() -> None:
    svg = charts.line_chart(
        "trend", "t", {"NPS": [("2026-11-03", 1.0), ("2026-12-03", 2.0)]}, low=0, high=9
    )

    texts = _texts(svg)
    assert "2026-11-03" in texts and "2026-12-03" in texts
    assert not any(t.startswith("one snapshot") for t in texts)


def test_legend_keys_have_their_series_colour() -> None:
    svg = charts.line_chart(
        "trend",
        "t",
        {"NPS": [("2026-12-03", 1.0)], "Average health": [("2026-12-03", 2.0)]},
        low=0,
        high=9,
    )

    keys = re.findall(r'<rect class="key"[^>]*style="fill:(#[0-9a-f]{6})"', svg)
    assert keys == list(PALETTE[:2])
