"""Write-back before (or without) install-fields: stop before sending anything."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from connector.cli import app
from connector.writeback.install import install_fields

from .conftest import account_values, health, log_rows, mod_counts

runner = CliRunner()
ALL_FIELDS = [
    "u_health_score", "u_health_band", "u_health_trend", "u_nps",
    "u_health_reason", "u_health_updated",
]  # fmt: skip


def dictionary_row(emu, element: str) -> dict[str, str]:
    return next(
        r for r in emu.instance.rows("sys_dictionary")
        if r["name"] == "customer_account" and r["element"] == element
    )  # fmt: skip


def no_kpi_trend_or_nps(accounts: list[str]) -> list:
    """Health rows whose trend and NPS are empty, as on a first KPI run."""
    return [health(a, 50, trend=None, nps_value=None, nps_n=0) for a in accounts]


def test_dry_run_before_install_names_the_fields_and_install_fields(
    emu, accounts, write_config, seed_health
):
    seed_health(no_kpi_trend_or_nps(accounts))
    config = write_config()
    before = mod_counts(emu)

    result = runner.invoke(app, ["writeback", "--dry-run", "-c", str(config)])

    assert result.exit_code == 1
    for name in ALL_FIELDS:
        assert repr(name) in result.stderr
    assert "not installed on 'customer_account'" in result.stderr
    assert "run `csm-sync install-fields` first" in result.stderr
    assert "Dry run:" not in result.stdout
    assert "u_health_trend" not in result.stdout
    assert mod_counts(emu) == before


def test_real_run_before_install_sends_no_update_and_exits_1(
    emu, accounts, write_config, seed_health, tmp_sqlite_url
):
    seed_health([health(a, 50) for a in accounts])
    config = write_config()
    before = mod_counts(emu)

    result = runner.invoke(app, ["writeback", "-c", str(config)])

    assert result.exit_code == 1
    assert mod_counts(emu) == before
    assert "csm-sync install-fields" in result.stderr
    assert "Nothing was sent." in result.stderr
    assert result.stderr.count("error:") == 1
    assert "sent" not in result.stdout  # no summary of a run that did not happen
    logged = log_rows(tmp_sqlite_url)
    assert sorted(r.field for r in logged) == sorted(ALL_FIELDS)
    assert {(r.account, r.outcome) for r in logged} == {("", "failed")}


def test_running_install_fields_as_told_makes_the_next_run_write(
    emu, accounts, write_config, seed_health
):
    seed_health([health(a, 50) for a in accounts])
    config = write_config()
    refused = runner.invoke(app, ["writeback", "-c", str(config)])
    assert refused.exit_code == 1

    installed = runner.invoke(app, ["install-fields", "-c", str(config)])
    again = runner.invoke(app, ["writeback", "-c", str(config)])

    assert installed.exit_code == 0, installed.output
    assert again.exit_code == 0, again.output
    assert "30 fields written, 0 fields failed" in again.stdout
    assert account_values(emu, accounts[0])["u_health_score"] == "50"


def test_one_deleted_field_stops_the_run_and_reinstall_rewrites_it(
    emu, accounts, write_config, make_settings, seed_health
):
    install_fields(make_settings())
    seed_health([health(a, 50) for a in accounts])
    config = write_config()
    first = runner.invoke(app, ["writeback", "-c", str(config)])
    assert first.exit_code == 0, first.output
    emu.instance.delete(
        "sys_dictionary", dictionary_row(emu, "u_health_score")["sys_id"]
    )
    for sys_id in accounts:  # the column's values go with its dictionary entry
        emu.instance.update(
            "customer_account", sys_id, {"u_health_score": ""}, raw=True
        )
    before = mod_counts(emu)

    stopped = runner.invoke(app, ["writeback", "-c", str(config)])
    install_fields(make_settings())
    again = runner.invoke(app, ["writeback", "-c", str(config)])

    assert stopped.exit_code == 1
    assert "field 'u_health_score' is not installed" in stopped.stderr
    assert "u_health_band" not in stopped.stderr
    assert mod_counts(emu) != before  # the second run wrote
    assert again.exit_code == 0, again.output
    assert {account_values(emu, a)["u_health_score"] for a in accounts} == {"50"}


def test_one_deleted_field_sends_nothing(
    emu, accounts, make_settings, write_config, seed_health
):
    install_fields(make_settings())
    emu.instance.delete("sys_dictionary", dictionary_row(emu, "u_nps")["sys_id"])
    seed_health([health(a, 50) for a in accounts])
    before = mod_counts(emu)

    result = runner.invoke(app, ["writeback", "-c", str(write_config())])

    assert result.exit_code == 1
    assert "field 'u_nps' is not installed" in result.stderr
    assert mod_counts(emu) == before
    assert account_values(emu, accounts[0])["u_health_score"] == ""


def test_read_only_field_stops_the_run_with_its_fix(
    emu, accounts, make_settings, write_config, seed_health
):
    install_fields(make_settings())
    row = dictionary_row(emu, "u_health_reason")
    emu.instance.update("sys_dictionary", row["sys_id"], {"read_only": "true"})
    seed_health([health(a, 50) for a in accounts])
    before = mod_counts(emu)

    result = runner.invoke(app, ["writeback", "-c", str(write_config())])

    assert result.exit_code == 1
    assert "field 'u_health_reason' is read-only" in result.stderr
    assert "clear the flag or remove the field from writeback.fields" in result.stderr
    assert "not installed" not in result.stderr
    assert mod_counts(emu) == before


def test_hidden_dictionary_dry_run_lists_no_empty_to_empty_change(
    emu, accounts, write_config, seed_health
):
    # The restricted user reads no dictionary rows (so nothing stops the dry
    # run) and the fields are absent from its reads: empty trend and NPS
    # values have nothing to change.
    seed_health(no_kpi_trend_or_nps(accounts))
    config = write_config(user="restricted")

    result = runner.invoke(app, ["writeback", "--dry-run", "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert "u_health_trend" not in result.stdout
    assert "u_nps" not in result.stdout
    assert "u_health_score" in result.stdout
    assert "Dry run: 5 accounts, 5 would change (20 fields)" in result.stdout


def test_summary_counts_fields_apart_from_run_problems(
    emu, accounts, make_settings, write_config, seed_health
):
    install_fields(make_settings())  # no history table: one run problem
    emu.instance.add_business_rule("customer_account", "u_health_score", lambda v: "0")
    seed_health([health(a, 77) for a in accounts])
    config = write_config(history=True)

    dry = runner.invoke(app, ["writeback", "--dry-run", "-c", str(config)])
    result = runner.invoke(app, ["writeback", "-c", str(config)])

    assert "(30 fields)" in dry.stdout
    assert result.exit_code == 1
    summary = re.search(r"(\d+) fields written, (\d+) fields failed", result.stdout)
    assert summary is not None, result.stdout
    assert (int(summary[1]), int(summary[2])) == (25, 5)
    assert re.search(r", [1-9]\d* run problems, ", result.stdout)
