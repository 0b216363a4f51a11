"""run_writeback and `csm-sync writeback` against the emulator and a real store."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from connector.cli import app
from connector.store.engine import open_store
from connector.store.models import Account
from connector.writeback.install import install_fields
from connector.writeback.models import WritebackState
from connector.writeback.preflight import FieldsNotReadyError
from connector.writeback.runner import run_writeback

from .conftest import account_values, health, log_rows, mod_counts

runner = CliRunner()
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


@pytest.fixture
def installed(emu, make_settings):
    install_fields(make_settings())
    return emu


def test_writes_every_score_and_reads_back_equal(
    installed, accounts, make_settings, seed_health
):
    seed_health([health(a, 40 + 10 * i) for i, a in enumerate(accounts)])

    result = run_writeback(make_settings(), now=NOW)

    assert result.failed == 0
    assert result.written == 6 * len(accounts)
    for i, sys_id in enumerate(accounts):
        stored = account_values(installed, sys_id)
        assert stored["u_health_score"] == str(40 + 10 * i)
        assert stored["u_health_band"] == ("green" if 40 + 10 * i >= 70 else "yellow")
        assert stored["u_health_trend"] == "2"
        assert stored["u_nps"] == "30"
        assert stored["u_health_reason"] == "weakest: support 20, adoption 35"
        assert stored["u_health_updated"] == "2026-12-03 06:00:00"


def test_second_run_sends_no_write(installed, accounts, make_settings, seed_health):
    seed_health([health(a, 55) for a in accounts])
    run_writeback(make_settings(), now=NOW)
    before = mod_counts(installed)

    again = run_writeback(make_settings(), now=NOW.replace(day=4))

    assert again.sent_accounts == 0
    assert again.results == []
    assert mod_counts(installed) == before


def test_first_run_trusts_values_already_on_the_instance(
    installed, accounts, make_settings, seed_health
):
    target = accounts[0]
    installed.instance.update(
        "customer_account", target,
        {"u_health_score": "61", "u_health_band": "yellow", "u_health_trend": "2",
         "u_nps": "30.0", "u_health_reason": " weakest: support 20, adoption 35 "},
    )  # fmt: skip
    seed_health([health(target, 61)])
    before = mod_counts(installed)[target]

    result = run_writeback(make_settings(), now=NOW)

    assert result.sent_accounts == 0
    assert mod_counts(installed)[target] == before


def test_only_changed_accounts_are_sent_after_a_kpi_change(
    installed, accounts, make_settings, seed_health, tmp_sqlite_url
):
    seed_health([health(a, 50) for a in accounts])
    run_writeback(make_settings(), now=NOW)
    before = mod_counts(installed)
    changed = accounts[1]
    seed_health([health(changed, 81)])
    later = NOW.replace(hour=7)

    result = run_writeback(make_settings(), now=later)

    assert result.sent_accounts == 1
    assert {r.write.account for r in result.results} == {changed}
    after = mod_counts(installed)
    assert [a for a in accounts if after[a] != before[a]] == [changed]
    stored = account_values(installed, changed)
    assert (stored["u_health_score"], stored["u_health_band"]) == ("81", "green")
    assert stored["u_health_updated"] == "2026-12-03 07:00:00"
    sent = {r.field for r in log_rows(tmp_sqlite_url) if r.run_id == result.run_id}
    assert sent == {"u_health_score", "u_health_band", "u_health_updated"}


def test_dry_run_prints_the_diff_and_sends_no_write(
    installed, accounts, write_config, seed_health, tmp_sqlite_url
):
    seed_health([health(a, 72) for a in accounts])
    store = open_store(tmp_sqlite_url)
    with Session(store.engine) as session:
        session.add(Account(sys_id=accounts[0], number="ACCT0000042", name="Acme"))
        session.commit()
    store.dispose()
    config = write_config()
    before = mod_counts(installed)

    result = runner.invoke(app, ["writeback", "--dry-run", "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert mod_counts(installed) == before
    assert "u_health_score" in result.output
    assert "ACCT0000042" in result.output
    assert "Dry run: 5 accounts, 5 would change" in result.output


def test_account_option_writes_one_account(
    installed, accounts, write_config, seed_health
):
    seed_health([health(a, 72) for a in accounts])
    config = write_config()
    before = mod_counts(installed)

    result = runner.invoke(
        app, ["writeback", "--account", accounts[2], "-c", str(config)]
    )

    assert result.exit_code == 0, result.output
    after = mod_counts(installed)
    assert [a for a in accounts if after[a] != before[a]] == [accounts[2]]


def test_small_nps_sample_clears_the_field(
    installed, accounts, make_settings, seed_health
):
    seed_health([health(accounts[0], 66, nps_value=None, nps_n=3)])

    run_writeback(make_settings(), now=NOW)

    assert account_values(installed, accounts[0])["u_nps"] == ""


# --- failures are failures (C09) ---------------------------------------------------


def _assert_failed(result, store_url: str, field: str, text: str) -> None:
    failed = [r for r in result.results if not r.ok and r.write.spec.element == field]
    assert failed, f"no failed write of {field}"
    assert all(text in r.message for r in failed)
    assert not any(r.ok for r in result.results if r.write.spec.element == field)
    logged = [r for r in log_rows(store_url) if r.field == field]
    assert logged and {r.outcome for r in logged} == {"failed"}


def test_renamed_field_that_does_not_exist_stops_the_run(
    installed, accounts, make_settings, seed_health, tmp_sqlite_url
):
    seed_health([health(a, 50) for a in accounts])
    settings = make_settings(fields={"score": "u_health_scor"})
    before = mod_counts(installed)

    with pytest.raises(FieldsNotReadyError) as stopped:
        run_writeback(settings, now=NOW)

    assert stopped.value.missing == ["u_health_scor"]
    assert "correct the names under writeback.fields" in str(stopped.value)
    assert mod_counts(installed) == before
    logged = log_rows(tmp_sqlite_url)
    assert [(r.field, r.account, r.outcome) for r in logged] == [
        ("u_health_scor", "", "failed")
    ]


def test_business_rule_that_overwrites_is_failed_every_run(
    installed, accounts, make_settings, seed_health, tmp_sqlite_url
):
    installed.instance.add_business_rule(
        "customer_account", "u_health_score", lambda v: "0"
    )
    seed_health([health(accounts[0], 77)])

    first = run_writeback(make_settings(), now=NOW)
    second = run_writeback(make_settings(), now=NOW)

    for result in (first, second):
        _assert_failed(
            result, tmp_sqlite_url, "u_health_score", "a business rule or ACL changed"
        )
    assert "stored as '0' instead of '77'" in first.results[0].message


def test_sanitising_rule_causes_one_write_not_one_per_run(
    installed, accounts, make_settings, seed_health, tmp_sqlite_url
):
    installed.instance.add_business_rule(
        "customer_account", "u_health_reason", lambda v: " " + html.escape(v) + "  "
    )
    seed_health([health(accounts[0], 45, reason="weakest: support & csat <20>")])

    first = run_writeback(make_settings(), now=NOW)
    before = mod_counts(installed)
    second = run_writeback(make_settings(), now=NOW)

    assert first.failed == 0
    stored = account_values(installed, accounts[0])["u_health_reason"]
    assert "&amp;" in stored
    assert second.sent_accounts == 0
    assert mod_counts(installed) == before
    store = open_store(tmp_sqlite_url)
    with Session(store.engine) as session:
        state = session.get(WritebackState, (accounts[0], "u_health_reason"))
    store.dispose()
    assert state.returned == stored


# --- hostile config ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writeback", "key"),
    [
        ({"fields": {"score": "name"}}, "writeback.fields.score"),
        ({"fields": {"reason": "sys_id"}}, "writeback.fields.reason"),
        ({"fields": {"band": "u_x", "nps": "u_x"}}, "writeback.fields.nps"),
        ({"table": "sys_user"}, "writeback.table"),
    ],
)
def test_hostile_config_is_refused_before_any_request(
    installed, accounts, write_config, seed_health, writeback, key
):
    seed_health([health(a, 50) for a in accounts])
    config = write_config(**writeback)
    before = installed.instance.request_count

    result = runner.invoke(app, ["writeback", "-c", str(config)])

    assert result.exit_code == 2
    assert key in result.output
    assert installed.instance.request_count == before


def test_unknown_account_option_is_a_usage_error(
    installed, accounts, write_config, seed_health
):
    seed_health([health(accounts[0], 50)])
    config = write_config()

    result = runner.invoke(app, ["writeback", "--account", "f" * 32, "-c", str(config)])

    assert result.exit_code == 2
    assert "has no health snapshot" in result.output


def test_disabled_writeback_sends_nothing(
    installed, accounts, write_config, seed_health
):
    seed_health([health(a, 50) for a in accounts])
    config = write_config(enabled=False)
    before = installed.instance.request_count

    result = runner.invoke(app, ["writeback", "-c", str(config)])

    assert result.exit_code == 0
    assert "disabled" in result.output
    assert installed.instance.request_count == before


def test_value_outside_the_choice_list_is_failed_with_the_choice_fix(
    installed, accounts, make_settings, seed_health, tmp_sqlite_url
):
    green = next(
        r for r in installed.instance.rows("sys_choice")
        if r["element"] == "u_health_band" and r["value"] == "green"
    )  # fmt: skip
    installed.instance.delete("sys_choice", green["sys_id"])
    seed_health([health(accounts[0], 90)])

    result = run_writeback(make_settings(), now=NOW)

    _assert_failed(result, tmp_sqlite_url, "u_health_band", "choice list")
    assert account_values(installed, accounts[0])["u_health_score"] == "90"


def test_wrong_password_ends_the_run_with_one_clear_error(
    installed, accounts, write_config, seed_health, tmp_path
):
    seed_health([health(a, 50) for a in accounts])
    config = write_config()
    config.write_text(config.read_text().replace("password: admin", "password: nope"))

    result = runner.invoke(app, ["writeback", "-c", str(config)])

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.count("error:") == 1
    assert "did not accept the credentials" in result.output
    assert "nope" not in result.output


def test_account_deleted_on_the_instance_fails_alone(
    installed, accounts, make_settings, seed_health
):
    seed_health([health(a, 50) for a in accounts])
    installed.instance.delete("customer_account", accounts[3])

    result = run_writeback(make_settings(), now=NOW)

    failed = {r.write.account for r in result.results if not r.ok}
    assert failed == {accounts[3]}
    assert all("(404)" in r.message for r in result.results if not r.ok)
    assert account_values(installed, accounts[0])["u_health_score"] == "50"
