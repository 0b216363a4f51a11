"""The report renders in a real headless Chromium, offline (Debian ``chromium``)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

pytestmark = pytest.mark.browser


def _chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found:
        return found
    if os.environ.get("CSM_SYNC_REQUIRE_BROWSER") == "1":
        pytest.fail("CSM_SYNC_REQUIRE_BROWSER=1 but chromium is not installed")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and raw (filtered) scanline bytes of a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_dom_has_every_chart_with_marks(report_html: Path, tmp_path: Path) -> None:
    result = _run(tmp_path, "--dump-dom", report_html.as_uri())

    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert dom.count("<svg") == 6
    heights = [
        float(h) for h in re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', dom)
    ]
    assert len(heights) >= 10 and max(heights) > 20
    assert "Customer success KPIs" in dom


def test_screenshot_is_not_blank(report_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"

    result = _run(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1400,1800",
        report_html.as_uri(),
    )

    assert shot.exists(), result.stderr[-2000:]
    width, height, raw = _png_pixels(shot)
    assert (width, height) == (1400, 1800)
    # a blank page decompresses to one repeated byte; charts give many colours
    assert len(set(raw)) > 50


# Appended to a copy of the report only: the shipped file holds no script.
MEASURE = """<script>
const cards = [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.parentElement;
  const cs = getComputedStyle(box);
  const inner = box.clientWidth - parseFloat(cs.paddingLeft)
    - parseFloat(cs.paddingRight);
  return svg.dataset.chart + ':' + svg.getBoundingClientRect().width.toFixed(0)
    + ':' + inner.toFixed(0);
});
const keys = [...document.querySelectorAll('rect.key')]
  .map(r => getComputedStyle(r).fill);
document.body.setAttribute('data-cards', cards.join(' '));
document.body.setAttribute('data-keys', keys.join('|'));
</script></body>"""


def test_charts_fill_their_cards_and_legend_keys_are_coloured(
    report_html: Path, tmp_path: Path
) -> None:
    probe = tmp_path / "measured.html"
    html = report_html.read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", MEASURE), encoding="utf-8")

    result = _run(tmp_path, "--dump-dom", "--window-size=1280,2000", probe.as_uri())

    assert result.returncode == 0, result.stderr[-2000:]
    cards = re.search(r'data-cards="([^"]*)"', result.stdout).group(1).split()
    widths = {
        name: (int(w), int(inner)) for name, w, inner in (c.split(":") for c in cards)
    }
    assert len(widths) == 6
    for name, (width, inner) in widths.items():
        assert abs(width - inner) <= 1, (name, width, inner)
    keys = re.search(r'data-keys="([^"]*)"', result.stdout).group(1).split("|")
    assert keys == ["rgb(47, 109, 181)", "rgb(224, 138, 44)"]
