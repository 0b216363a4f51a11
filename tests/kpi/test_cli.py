"""``csm-sync kpis`` driven through the real Typer app on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from connector.cli import app
from connector.kpi.models import KpiSnapshot
from connector.kpi.output import trend_text
from connector.store.engine import open_store
from connector.store.models import Account

from .seed import HOSTILE_NAME, Seed, seed_portfolio, write_config

CONTRACT_OVERALL = {
    "nps",
    "csat",
    "fcr_rate",
    "nrr",
    "grr",
    "expansion_revenue",
    "active_accounts",
    "license_utilisation",
    "time_to_value",
}
CONTRACT_ACCOUNT = {
    "sys_id",
    "name",
    "health_score",
    "health_band",
    "health_trend",
    "nps",
    "arr",
    "cltv",
    "license_utilisation",
    "components",
}
CONTRACT_CSM = {"sys_id", "name", "active_accounts", "productivity", "arr"}


@pytest.fixture
def portfolio(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    return _portfolio(tmp_path, f"sqlite:///{tmp_path / 'csm.db'}")


def _portfolio(tmp_path: Path, url: str) -> tuple[Path, dict[str, str]]:
    store = open_store(url)
    ids = seed_portfolio(Seed(store.engine))
    store.dispose()
    return write_config(tmp_path / "config.yaml", url), ids


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_json_output_follows_the_contract(portfolio) -> None:
    config, ids = portfolio

    result = _run(
        "kpis", "--as-of", "2026-12-01", "--format", "json", "-c", str(config)
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["as_of"] == "2026-12-01"
    overall = data["overall"]
    assert set(overall) >= CONTRACT_OVERALL
    # P 3, D 1, N 5 → adjusted p = 3.75/8, d = 1.75/8: 25 ± 1.96·√(0.625/64)
    assert overall["nps"] == {"value": 40.0, "n": 5, "ci95": [-29.8, 79.8]}
    # Acme's three same-day cases (no channel) + phone 1/2 + email 1/1
    assert overall["fcr_rate"] == {"value": 0.8333, "numerator": 5, "denominator": 6}
    assert overall["fcr_by_channel"]["unknown"]["denominator"] == 3
    assert set(overall["time_to_value"]) >= {"median_days", "p75_days", "not_yet"}
    assert overall["active_accounts"] == 2
    assert overall["nrr"] == pytest.approx(36000 / 42000, abs=1e-4)
    accounts = {a["sys_id"]: a for a in data["accounts"]}
    assert all(set(a) >= CONTRACT_ACCOUNT for a in accounts.values())
    acme = accounts[ids["acme"]]
    assert (acme["health_score"], acme["health_band"]) == (63, "yellow")
    assert acme["nps"] == {"value": 40.0, "n": 5}
    assert acme["components"]["support"] == 33
    assert accounts[ids["hostile"]]["name"] == HOSTILE_NAME
    csms = {c["sys_id"]: c for c in data["csms"]}
    assert all(set(c) >= CONTRACT_CSM for c in csms.values())
    assert csms[ids["una"]]["active_accounts"] == 1.5
    assert csms[ids["una"]]["arr"] == 12000 + 24000 / 2


def test_json_on_postgresql(tmp_path: Path, fresh_pg_url: str) -> None:
    config, ids = _portfolio(tmp_path, fresh_pg_url)

    result = _run(
        "kpis", "--as-of", "2026-12-01", "--format", "json", "-c", str(config)
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["overall"]["nps"] == {"value": 40.0, "n": 5, "ci95": [-29.8, 79.8]}
    acme = next(a for a in data["accounts"] if a["sys_id"] == ids["acme"])
    assert (acme["health_score"], acme["health_band"]) == (63, "yellow")


def test_the_run_is_stored_as_a_snapshot(portfolio, tmp_path: Path) -> None:
    config, _ = portfolio

    first = _run("kpis", "--as-of", "2026-12-01", "--format", "json", "-c", str(config))
    second = _run("kpis", "--as-of", "2026-12-01", "--format", "csv", "-c", str(config))

    assert first.exit_code == second.exit_code == 0
    store = open_store(f"sqlite:///{tmp_path / 'csm.db'}")
    with store.engine.connect() as conn:
        dates = conn.execute(
            select(KpiSnapshot.as_of, func.count()).group_by(KpiSnapshot.as_of)
        ).all()
    store.dispose()
    assert len(dates) == 1 and str(dates[0][0]) == "2026-12-01"


def test_csv_has_one_row_per_account(portfolio) -> None:
    config, ids = portfolio

    result = _run("kpis", "--as-of", "2026-12-01", "--format", "csv", "-c", str(config))

    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("sys_id,name,segment,active,health_score")
    assert len(lines) == 1 + 3
    acme_line = next(line for line in lines if line.startswith(ids["acme"]))
    assert ",63,yellow," in acme_line


def test_one_account(portfolio) -> None:
    config, ids = portfolio

    result = _run(
        "kpis",
        "--as-of",
        "2026-12-01",
        "--account",
        ids["acme"],
        "--format",
        "json",
        "-c",
        str(config),
    )

    data = json.loads(result.stdout)
    assert [a["sys_id"] for a in data["accounts"]] == [ids["acme"]]
    assert [c["sys_id"] for c in data["csms"]] == [ids["una"]]


def test_one_account_by_its_number(portfolio, tmp_path: Path) -> None:
    config, ids = portfolio
    store = open_store(f"sqlite:///{tmp_path / 'csm.db'}")
    with store.engine.begin() as conn:
        conn.execute(
            update(Account)
            .where(Account.sys_id == ids["acme"])
            .values(number="ACCT0001041")
        )
    store.dispose()

    result = _run(
        "kpis",
        "--as-of",
        "2026-12-01",
        "--account",
        "ACCT0001041",
        "--format",
        "json",
        "-c",
        str(config),
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [a["sys_id"] for a in data["accounts"]] == [ids["acme"]]


def test_table_output_for_humans(portfolio) -> None:
    config, _ = portfolio

    result = CliRunner().invoke(
        app,
        ["kpis", "--as-of", "2026-12-01", "-c", str(config)],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0
    assert "KPIs as of 2026-12-01" in result.stdout
    assert "Acme <b>&</b>" in result.stdout  # printed literally, not as markup
    # Acme: started 2025-03-01, first period at 50 % usage 2026-11-01 → 610 days
    # (the only account there); the cell carries its unit.
    assert "Time to value (median/P75) │ 610.0 / 610.0 days" in result.stdout
    # Gone Ltd's product ended 2026-08-31: no score, not in the at-risk table.
    assert "Gone Ltd" not in result.stdout
    assert "1 account(s) not active customers on 2026-12-01" in result.stdout


def test_help_says_what_csv_holds() -> None:
    result = CliRunner().invoke(app, ["kpis", "--help"], env={"COLUMNS": "200"})

    text = " ".join(result.stdout.split())
    assert (
        "csv has one row per account only; the overall and per-CSM figures are in json"
        in text
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "yesterday"], "is not a date"),
        (["--account", "nope"], "matches no stored account by sys_id or by number"),
        (["--format", "xml"], "xml"),
    ],
)
def test_bad_usage_exits_2(portfolio, args: list[str], message: str) -> None:
    config, _ = portfolio

    result = _run("kpis", *args, "-c", str(config))

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_config_exits_2(tmp_path: Path) -> None:
    result = _run("kpis", "-c", str(tmp_path / "absent.yaml"))

    assert result.exit_code == 2
    assert "config file not found" in result.output


@pytest.mark.parametrize(
    ("trend", "text"),
    [(6, "+6 ↑"), (5, "+5 ↑"), (4, "+4 →"), (0, "+0 →"), (-5, "-5 ↓"), (None, "—")],
)
def test_trend_arrow_moves_at_five_points(trend: int | None, text: str) -> None:
    assert trend_text(trend) == text


def test_kpis_and_report_read_the_store_without_the_instance_secret(
    portfolio, tmp_path: Path
) -> None:
    config, ids = portfolio
    text = config.read_text().replace("${KPI_TEST_PW:-x}", "${KPI_TEST_PW}")
    config.write_text(text, encoding="utf-8")
    no_secret = {"KPI_TEST_PW": None}
    out = tmp_path / "report.html"

    kpis = CliRunner().invoke(
        app,
        ["kpis", "--as-of", "2026-12-01", "--format", "json", "-c", str(config)],
        env=no_secret,
    )
    report = CliRunner().invoke(
        app,
        ["report", "-o", str(out), "--as-of", "2026-12-01", "-c", str(config)],
        env=no_secret,
    )

    assert "${KPI_TEST_PW}" in text
    assert kpis.exit_code == 0, kpis.output
    assert ids["acme"] in {a["sys_id"] for a in json.loads(kpis.stdout)["accounts"]}
    assert report.exit_code == 0, report.output
    assert out.read_text(encoding="utf-8").startswith("<!")
