"""Small server-side SVG charts: bars, horizontal bars, lines and a waterfall.

Every chart is one ``<svg>`` element with inline attributes only (no scripts, no
external references, no ``xmlns`` URL: inline SVG in HTML5 does not need it).
Every piece of text goes through :func:`html.escape`, since labels come from data
(account names may hold HTML).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
BAR_HEIGHT = 22
PALETTE = ("#2f6db5", "#e08a2c", "#3a9d5d", "#b5443b", "#7b5ea7", "#5b8c99")
BAND_COLOURS = {
    "green": "#3a9d5d",
    "yellow": "#e0b32c",
    "red": "#c8443b",
    "none": "#9aa3ad",
}


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value, colour and the text shown beside it."""

    label: str
    value: float
    colour: str = PALETTE[0]
    note: str | None = None


def _svg(name: str, width: int, height: int, body: list[str], title: str) -> str:
    # Drawn on a WIDTH-wide canvas and scaled to the card: width 100% with the
    # viewBox keeps the aspect ratio (the browser derives the height from it).
    return (
        f'<svg class="chart" data-chart="{escape(name)}" role="img"'
        f' viewBox="0 0 {width} {height}" width="100%"'
        f' preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def amount_text(value: float, fmt: str = "{:,.0f}") -> str:
    """``fmt`` applied to ``value``, never showing a negative zero ("-0")."""
    text = fmt.format(value)
    if text.startswith("-") and not any(c in "123456789" for c in text):
        return text[1:]
    return text


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    size: int = 12,
    cls: str = "label",
) -> str:
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"'
        f' font-size="{size}">{escape(content)}</text>'
    )


def _rect(
    x: float, y: float, w: float, h: float, colour: str, cls: str = "bar", tip: str = ""
) -> str:
    tooltip = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}"'
        f' height="{max(h, 0):.1f}" fill="{colour}">{tooltip}</rect>'
    )


def empty_chart(name: str, title: str, message: str = "No data yet") -> str:
    """A placeholder chart that says why it is empty."""
    return _svg(
        name, WIDTH, 60, [_text(WIDTH / 2, 35, message, anchor="middle")], title
    )


def column_chart(
    name: str, title: str, bars: Sequence[Bar], *, height: int = 220, fmt: str = "{:g}"
) -> str:
    """Vertical bars with the value above each and the label below."""
    if not bars:
        return empty_chart(name, title)
    top = max(max(b.value for b in bars), 1e-9)
    plot = height - 50
    slot = WIDTH / len(bars)
    body = []
    for i, bar in enumerate(bars):
        h = plot * max(bar.value, 0) / top
        x = i * slot + slot * 0.2
        y = 20 + plot - h
        body.append(
            _rect(
                x,
                y,
                slot * 0.6,
                h,
                bar.colour,
                tip=f"{bar.label}: " + fmt.format(bar.value),
            )
        )
        body.append(
            _text(
                x + slot * 0.3,
                y - 4,
                bar.note or fmt.format(bar.value),
                anchor="middle",
                cls="value",
            )
        )
        body.append(_text(x + slot * 0.3, height - 12, bar.label, anchor="middle"))
    return _svg(name, WIDTH, height, body, title)


def bar_chart(
    name: str,
    title: str,
    bars: Sequence[Bar],
    *,
    label_width: int = 200,
    maximum: float | None = None,
    fmt: str = "{:g}",
) -> str:
    """Horizontal bars, one row each, label on the left and value on the right."""
    if not bars:
        return empty_chart(name, title)
    top = maximum or max(max(b.value for b in bars), 1e-9)
    span = WIDTH - label_width - 190  # room for the note right of the longest bar
    height = len(bars) * (BAR_HEIGHT + 6) + 10
    body = []
    for i, bar in enumerate(bars):
        y = 5 + i * (BAR_HEIGHT + 6)
        w = span * max(bar.value, 0) / top
        label = bar.label if len(bar.label) <= 30 else bar.label[:29] + "…"
        body.append(_text(label_width - 8, y + 15, label, anchor="end"))
        body.append(
            _rect(
                label_width,
                y,
                w,
                BAR_HEIGHT,
                bar.colour,
                tip=f"{bar.label}: {fmt.format(bar.value)}",
            )
        )
        body.append(
            _text(
                label_width + w + 6,
                y + 15,
                bar.note or fmt.format(bar.value),
                cls="value",
            )
        )
    return _svg(name, WIDTH, height, body, title)


def line_chart(
    name: str,
    title: str,
    series: dict[str, list[tuple[str, float]]],
    *,
    low: float,
    high: float,
    height: int = 240,
) -> str:
    """Lines over time on a shared y range; x = the union of dates, in order."""
    dates = sorted({d for points in series.values() for d, _ in points})
    if not dates:
        return empty_chart(name, title)
    left, right, top, bottom = 48, WIDTH - 20, 20, height - 40
    if len(dates) == 1:  # one point: centre it rather than pin it to an axis end
        xs = {dates[0]: (left + right) / 2}
    else:
        step = (right - left) / (len(dates) - 1)
        xs = {d: left + i * step for i, d in enumerate(dates)}

    def y(value: float) -> float:
        return bottom - (bottom - top) * (value - low) / (high - low or 1)

    body = [
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"'
        ' stroke="#888"/>'
    ]
    for tick in (low, (low + high) / 2, high):
        body.append(_text(left - 6, y(tick) + 4, f"{tick:g}", anchor="end", size=10))
    if len(dates) == 1:
        body.append(
            _text(xs[dates[0]], height - 18, dates[0], anchor="middle", size=10)
        )
        body.append(
            _text(
                (left + right) / 2,
                bottom - 8,
                "one snapshot so far: the lines grow with each daily run",
                anchor="middle",
                size=11,
                cls="note",
            )
        )
    else:
        body.append(_text(left, height - 18, dates[0], size=10))
        body.append(_text(right, height - 18, dates[-1], anchor="end", size=10))
    for i, (label, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{xs[d]:.1f},{y(v):.1f}" for d, v in points)
        body.append(
            f'<polyline class="series" points="{coords}" fill="none"'
            f' stroke="{colour}" stroke-width="2"/>'
        )
        body.extend(
            f'<circle class="point" cx="{xs[d]:.1f}" cy="{y(v):.1f}" r="3"'
            f' fill="{colour}"><title>{escape(f"{label} {d}: {v:.1f}")}</title>'
            "</circle>"
            for d, v in points
        )
        key_x = left + 10 + i * 160
        body.append(
            f'<rect class="key" x="{key_x}" y="{height - 13}" width="10"'
            f' height="10" fill="{colour}" style="fill:{colour}"/>'
        )
        body.append(_text(key_x + 14, height - 4, label, size=11, cls="legend"))
    return _svg(name, WIDTH, height, body, title)


def waterfall_chart(
    name: str,
    title: str,
    steps: Sequence[tuple[str, float]],
    *,
    height: int = 240,
    fmt: str = "{:,.0f}",
) -> str:
    """Start, signed changes, end: each change floats from the running total."""
    if not steps or not steps[0][1]:
        return empty_chart(name, title, "No cohort with ARR at the start")
    totals, running = [], 0.0
    for i, (label, value) in enumerate(steps):
        is_total = i in (0, len(steps) - 1)
        start = 0.0 if is_total else running
        end = value if is_total else running + value
        totals.append((label, value, min(start, end), max(start, end), is_total))
        running = end
    top = max(t[3] for t in totals) or 1.0
    plot, slot = height - 60, WIDTH / len(totals)
    body = []
    for i, (label, value, low, high, is_total) in enumerate(totals):
        colour = "#2f6db5" if is_total else ("#3a9d5d" if value >= 0 else "#c8443b")
        y0 = 25 + plot * (1 - high / top)
        h = plot * (high - low) / top
        x = i * slot + slot * 0.15
        body.append(
            _rect(
                x,
                y0,
                slot * 0.7,
                max(h, 1.0),
                colour,
                tip=f"{label}: {amount_text(value, fmt)}",
            )
        )
        body.append(
            _text(
                x + slot * 0.35,
                y0 - 5,
                amount_text(value, fmt),
                anchor="middle",
                cls="value",
                size=11,
            )
        )
        body.append(_text(x + slot * 0.35, height - 15, label, anchor="middle"))
    return _svg(name, WIDTH, height, body, title)
