"""A ServiceNow user sees the written-back health on the account form (Chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from connector.writeback.install import install_fields
from connector.writeback.runner import run_writeback

from .conftest import health

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def dump_dom(url: str, profile: Path) -> str:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CSM_SYNC_REQUIRE_BROWSER") == "1":
            pytest.fail("CSM_SYNC_REQUIRE_BROWSER=1 but chromium is not installed")
        pytest.skip("chromium is not installed")
    done = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.browser
def test_account_form_shows_score_and_band_label(
    emu, accounts, make_settings, seed_health, tmp_path
):
    settings = make_settings()
    install_fields(settings)
    seed_health([health(accounts[0], 83)])
    assert run_writeback(settings).failed == 0
    host = emu.url.replace("http://", f"http://{emu.admin_user}:{emu.admin_password}@")

    dom = dump_dom(f"{host}/customer_account.do?sys_id={accounts[0]}", tmp_path / "p")

    assert '<label for="customer_account.u_health_score">Health score</label>' in dom
    assert '<span class="value" id="customer_account.u_health_score">83</span>' in dom
    # The band shows its choice label, as on a real form.
    assert '<span class="value" id="customer_account.u_health_band">Green</span>' in dom


@pytest.mark.browser
def test_account_list_has_the_health_columns(
    emu, accounts, make_settings, seed_health, tmp_path
):
    settings = make_settings()
    install_fields(settings)
    seed_health([health(a, 35) for a in accounts])
    run_writeback(settings)
    host = emu.url.replace("http://", f"http://{emu.admin_user}:{emu.admin_password}@")

    dom = dump_dom(f"{host}/customer_account_list.do", tmp_path / "p")

    assert "<th>Health score</th><th>Health band</th>" in dom
    assert dom.count("<td>Red</td>") == len(accounts)
