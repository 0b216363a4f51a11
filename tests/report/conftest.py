"""Fixtures of the report tests: a seeded store with a month of snapshots."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from kpi.seed import Seed, seed_portfolio, write_config
from typer.testing import CliRunner

from connector.cli import app
from connector.config import KpiSettings
from connector.kpi import compute_kpis, store_snapshot
from connector.store.engine import open_store

AS_OF = "2026-12-01"
HISTORY = (date(2026, 10, 6), date(2026, 11, 3), date(2026, 11, 17))


@pytest.fixture(scope="session")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report written by ``csm-sync report`` over the seeded portfolio.

    Built once per test process: every report test only reads the file.
    """
    tmp_path = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{tmp_path / 'csm.db'}"
    store = open_store(url)
    seed_portfolio(Seed(store.engine))
    settings = KpiSettings(nps_metric="M_NPS", csat_metric="M_CSAT")
    for day in HISTORY:
        store_snapshot(store.engine, compute_kpis(store.engine, settings, as_of=day))
    store.dispose()
    config = write_config(tmp_path / "config.yaml", url)
    out = tmp_path / "out" / "report.html"

    result = CliRunner().invoke(
        app, ["report", "-o", str(out), "--as-of", AS_OF, "-c", str(config)]
    )

    assert result.exit_code == 0, result.output
    return out
